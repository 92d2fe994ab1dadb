"""The per-photo face analysis on worker processes gives exactly what the serial path gives:
prepare's report, numbers and crops, and score's numbers, with 1 and with 2 workers."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import astronaut_rgb, grace_hopper_rgb
from facelora import demo_photos, parallel
from facelora.evaluate.board import GroupKey, score_images
from facelora.evaluate.likeness import build_reference
from facelora.prepare.pipeline import open_or_create, prepare


def test_worker_count(monkeypatch):
    monkeypatch.delenv(parallel.ENV, raising=False)
    monkeypatch.setattr(parallel, "cores", lambda: 2)
    assert parallel.worker_count() == 2 and parallel.worker_count(1) == 1  # both cores unless told
    monkeypatch.setenv(parallel.ENV, "1")
    assert parallel.worker_count() == 1 and parallel.worker_count(2) == 2
    monkeypatch.setenv(parallel.ENV, "auto")
    assert parallel.worker_count() == 2
    monkeypatch.setattr(parallel, "cores", lambda: 1)
    assert parallel.worker_count() == 1
    monkeypatch.setenv(parallel.ENV, "3")
    assert parallel.worker_count() == 3 and parallel.worker_count(1) == 1
    monkeypatch.setenv(parallel.ENV, "two")
    with pytest.raises(ValueError, match=parallel.ENV):
        parallel.worker_count()


def _square(x: int) -> int:
    return x * x


@pytest.fixture(autouse=True)
def small_jobs_on_workers(monkeypatch):
    """Seven photos are worth a pool in these tests (a real run needs parallel.MIN_ITEMS)."""
    monkeypatch.setattr(parallel, "MIN_ITEMS", 3)


def test_ordered_keeps_the_order_on_workers():
    assert list(parallel.ordered(_square, range(7), workers=2)) == [x * x for x in range(7)]
    assert list(parallel.ordered(_square, range(7), workers=2, beside=True)) == [x * x for x in range(7)]
    assert list(parallel.ordered(_square, range(2), workers=2)) == [0, 1]  # small: done here


def _square_or_die(x: int) -> int:
    if x == 3 and parallel.multiprocessing.parent_process() is not None:
        parallel.os._exit(1)  # a worker that dies mid-job
    return x * x


def test_a_broken_pool_finishes_the_job_here():
    assert list(parallel.ordered(_square_or_die, range(7), workers=2)) == [x * x for x in range(7)]


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("photos")
    for name, im in demo_photos.variants()[:5]:
        im.save(d / f"{name}.png")
    Image.fromarray(grace_hopper_rgb()).save(d / "grace.jpg", quality=95)
    (d / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return d


def test_prepare_with_two_workers_is_the_serial_prepare(tmp_path, photos):
    reports, crops = [], []
    for workers in (1, 2):
        project = open_or_create(tmp_path / f"p{workers}", trigger="ohwx", class_word="woman")
        report = prepare(photos, project, workers=workers)
        reports.append([it.model_dump() for it in report.items])
        folder, _ = project.concept_dir()
        crops.append({p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())})
    assert reports[0] == reports[1]
    assert crops[0] == crops[1]
    statuses = [it["status"] for it in reports[0]]
    assert statuses.count("accepted") >= 5 and statuses.count("rejected") >= 1
    assert all(it["descriptor"] for it in reports[0] if it["status"] == "accepted")


@pytest.fixture
def scoring(tmp_path):
    """A reference of three astronaut crops, and seven images to score: four of her, Grace Hopper,
    noise and a cut-off file."""
    ref_dir = tmp_path / "ref"
    ref_dir.mkdir()
    a = astronaut_rgb()
    for i, (t, l) in enumerate([(0, 100), (20, 140), (60, 80)]):
        Image.fromarray(a[t:t + 256, l:l + 256]).save(ref_dir / f"{i}.png")
    ref = build_reference(sorted(ref_dir.iterdir()))
    items = []
    for name, im in demo_photos.variants()[:4]:
        im.save(tmp_path / f"{name}.png")
        items.append((tmp_path / f"{name}.png", GroupKey("astronaut", 1.0, 0, "astronaut")))
    Image.fromarray(grace_hopper_rgb()).save(tmp_path / "grace.png")
    noise = np.random.default_rng(0).integers(0, 256, (128, 128, 3), dtype=np.uint8)
    Image.fromarray(noise).save(tmp_path / "noise.png")
    (tmp_path / "cut.png").write_bytes((tmp_path / "grace.png").read_bytes()[:300])
    items += [(tmp_path / n, GroupKey(n, 1.0, 1, n)) for n in ("grace.png", "noise.png", "cut.png")]
    return items, ref


def score_numbers(items, ref, workers):
    r = score_images(items, ref, workers=workers)
    return ([(s.path, s.face, s.distance, s.match, s.nearest, s.box, s.copy_of) for s in r.images],
            [(g.label, g.mean_distance, g.match_rate, g.detection_rate) for g in r.groups],
            [s.line() for s in r.skipped], r.verdict)


def test_score_with_two_workers_is_the_serial_score(scoring):
    serial, pooled = score_numbers(*scoring, 1), score_numbers(*scoring, 2)
    assert serial == pooled
    assert sum(1 for s in serial[0] if s[1]) == 5 and len(serial[2]) == 1


def _pid(_) -> int:
    return os.getpid()


def test_jobs_in_a_shared_block_run_on_one_pool(monkeypatch):
    started = []
    new_pool = parallel._new_pool
    monkeypatch.setattr(parallel, "_new_pool", lambda n: started.append(n) or new_pool(n))
    with parallel.shared(2):
        assert not started  # started by the first job that needs it, not before
        first = set(parallel.ordered(_pid, range(7), workers=2))
        second = set(parallel.ordered(_pid, range(7), workers=2, beside=True))
        workers = set(parallel._shared.executor._processes)
        assert started == [2] and os.getpid() not in first | second and first | second <= workers
        with parallel.shared(3):  # inside another: the outer pool serves
            assert set(parallel.ordered(_pid, range(7), workers=2)) <= workers
    assert parallel._shared is None and started == [2]
    list(parallel.ordered(_pid, range(7), workers=2))  # outside: a pool of its own again
    assert started == [2, 2]


def test_prepare_and_score_on_one_shared_pool_are_the_serial_ones(tmp_path, photos, scoring):
    def both(workers):
        project = open_or_create(tmp_path / f"p{workers}", trigger="ohwx", class_word="woman")
        report = prepare(photos, project, workers=workers)
        return [it.model_dump() for it in report.items], score_numbers(*scoring, workers)

    serial = both(1)
    with parallel.shared(2):
        pooled = both(2)
        assert parallel._shared.executor is not None  # the jobs did run on the pool
    assert pooled == serial


def test_run_holds_one_pool_from_prepare_to_score(tmp_path, monkeypatch):
    from facelora import run as run_mod

    seen = []
    monkeypatch.setattr(run_mod, "_prepare_to_report", lambda *a: seen.append(parallel._shared is not None))
    run_mod.run(run_mod.RunOptions(photos=tmp_path, project=tmp_path / "p", trigger="ohwx", base_model="tiny"),
                say=lambda _: None)
    assert seen == [True] and parallel._shared is None
