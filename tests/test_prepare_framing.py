"""The framing on real photos: the astronaut and Grace Hopper (installed packages) and the variants
demo_photos.framing_variants makes of them (small on a large canvas, at each edge, cut by an edge,
tilted 8 and 15 degrees, upscaled close-ups, a small second face beside or far away, a crowd).
Every check is geometric: the landmarks found again in each output against the crop."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facelora import demo_photos, faces
from facelora.prepare.pipeline import PrepareOptions, open_or_create, prepare

TILTED = ("tilted 8", "tilted 15", "grace tilted 15")


def _prepare(root: Path, names: tuple[str, ...] | None, options: PrepareOptions):
    photos = root / "photos 照片"
    photos.mkdir()
    wanted, sizes = {}, {}
    for name, im, want in demo_photos.framing_variants():
        if names is None or name in names:
            im.save(photos / f"{name}.png")
            wanted[name], sizes[name] = want, im.size
    project = open_or_create(root / "project", "ohwx", "woman")
    return photos, project, prepare(photos, project, options), wanted, sizes


@pytest.fixture(scope="module")
def variants(tmp_path_factory):
    return _prepare(tmp_path_factory.mktemp("framing"), None, PrepareOptions())


@pytest.fixture(scope="module")
def levelled(tmp_path_factory):
    return _prepare(tmp_path_factory.mktemp("level"), TILTED, PrepareOptions(level=True))


def _output_head(project, item) -> faces.Head:
    with Image.open(project.root / item.output) as im:
        rgb = np.asarray(im.convert("RGB"))
    found = faces.detect(rgb)
    assert len(found) == 1, (item.source, len(found))
    return faces.head(rgb, found[0])


def _check_whole_head(project, item, size: tuple[int, int]) -> faces.Head:
    head = _output_head(project, item)
    side = 512
    hl, ht, hr, hb = head.head_box()
    # the whole head, crown estimate to chin, ear to ear, lies inside the output square
    slack = 0.1 * head.length  # the crown estimate's spread (0.8-0.9 L) and margin: see crop.py
    assert ht >= -slack and hb <= side + 2 and hl >= -2 and hr <= side + 2, (item.source, head.head_box())
    assert 0 < head.crown[1] < head.eyes[1] < head.chin[1] < side
    # with room below the chin for the neck: the framing's 0.67 lengths, less where the photo ends
    assert head.chin[1] + 0.2 * head.length < side or item.crop_box[3] == size[1], item.source
    # never padded: the square lies inside the photo
    l, t, r, b = item.crop_box
    assert r - l == b - t
    corners = np.array(item.crop_corners if item.levelled is not None else [(l, t), (r, t), (r, b), (l, b)])
    assert (corners >= -0.5).all() and (corners <= np.array(size) + 0.5).all(), (item.source, corners)
    return head


def test_accepted_crops_hold_the_whole_head(variants):
    photos, project, report, wanted, sizes = variants
    for name, want in wanted.items():
        if want != "whole head":
            continue
        item = report.item(photos / f"{name}.png")
        assert item.status == "accepted", (name, item.reason)
        assert item.whole_head and not item.missing and item.framing.startswith("whole head")
        head = _check_whole_head(project, item, sizes[name])
        l, t, r, b = item.crop_box
        if l > 0 and r < sizes[name][0]:  # not pushed by an edge: the face is centred across
            assert abs(head.centre[0] - 256) < 0.06 * 512, (name, head.centre)
        if t > 0 and b < sizes[name][1]:  # nor by the top or bottom: the eyes at 0.45 of the height
            assert abs(head.eyes[1] - 0.45 * 512) < 0.05 * 512, (name, head.eyes)


def test_output_landmarks_are_the_source_landmarks_moved_by_the_crop(variants):
    photos, project, report, *_ = variants
    item = report.item(photos / "at the left edge.png")
    with Image.open(photos / "at the left edge.png") as im:
        rgb = np.asarray(im.convert("RGB"))
    source = faces.head(rgb, faces.detect(rgb)[0])
    l, t, *_ = item.crop_box
    expected = (source.points - (l, t)) * item.scale
    found = _output_head(project, item).points
    assert np.abs(found - expected).mean() < 0.03 * 512
    assert item.face_px == round(source.length)


def test_tilted_heads_are_accepted_and_said_to_be_tilted(variants):
    photos, project, report, *_ = variants
    for name in TILTED:
        item = report.item(photos / f"{name}.png")
        assert item.status == "accepted", (name, item.reason)
        assert abs(item.roll) >= 4.5 and "tilted" in item.framing and item.levelled is None
        assert item.faces == 1  # no false detection on the suit


def test_close_ups_are_accepted_tight_with_what_they_lack(variants):
    photos, project, report, *_ = variants
    astro = report.item(photos / "close-up.png")
    grace = report.item(photos / "grace close-up.png")
    for item in (astro, grace):
        assert item.status == "accepted" and not item.whole_head
        assert "hair" in item.missing and item.framing.startswith("tight: no hair")
        assert any(w.startswith("tighter than the head framing") for w in item.warnings)
        # the crop is as large as the photo allows: nothing more is cut than the photo lacks
        l, t, r, b = item.crop_box
        assert r - l == 600 if item is astro else r - l == 700
        head = _output_head(project, item)
        assert head.features_box()[1] > 0 and head.features_box()[3] < 512
    assert "chin" in grace.missing and "chin" not in astro.missing
    assert report.framings["tight"] == 2 and report.framings["whole head"] >= 11


def test_each_rejection_has_its_reason(variants):
    photos, _, report, wanted, _ = variants
    for name, want in wanted.items():
        if want in ("whole head", "tight"):
            continue
        item = report.item(photos / f"{name}.png")
        assert item.status == "rejected" and want in item.reason, (name, item.reason)
        assert item.output is None
    assert "inside the crop" in report.item(photos / "small face beside.png").reason
    assert report.item(photos / "crowd.png").faces == 4
    far = report.item(photos / "small face far away.png")
    assert far.status == "accepted" and far.faces == 2  # seen, but outside the crop


def test_report_and_contact_sheet_show_the_verdicts(variants):
    photos, project, report, *_ = variants
    raw = json.loads(project.prepare_report.read_text(encoding="utf-8"))
    assert raw["framings"] == report.framings and raw["framings"]["tilted"] == 3
    for it in raw["items"]:
        assert (it["framing"] is not None) == (it["status"] == "accepted")
    with Image.open(project.root / "prepare-contact-sheet.png") as sheet:
        assert sheet.width > 5 * 160


def test_level_turns_the_eyes_level_without_filling_corners(levelled):
    photos, project, report, _, sizes = levelled
    done = []
    for name in TILTED:
        item = report.item(photos / f"{name}.png")
        assert item.status == "accepted" and item.whole_head, (name, item.reason)
        _check_whole_head(project, item, sizes[name])  # corners inside the photo: nothing filled
        if item.levelled is None:  # the turned square would leave the photo: said, and cut as it is
            assert any(w.startswith("not levelled") for w in item.warnings) and "tilted" in item.framing
            continue
        done.append(name)
        assert item.levelled == pytest.approx(item.roll, abs=0.05) and "levelled" in item.framing
        assert abs(_output_head(project, item).roll) < 2.0, name
        (x0, y0), (x1, y1) = item.crop_corners[:2]  # the square, turned by the roll
        assert np.degrees(np.arctan2(y1 - y0, x1 - x0)) == pytest.approx(item.roll, abs=0.5)
    assert "tilted 8" in done, report.items
    assert report.framings["levelled"] == len(done)


def test_level_never_keeps_part_of_another_face(tmp_path):
    # Levelled, the astronaut's square is smaller and the small face beside her is only partly in it.
    _, _, report, *_ = _prepare(tmp_path, ("small face beside",), PrepareOptions(level=True))
    item = report.items[0]
    assert item.status == "rejected" and "inside the crop" in item.reason
