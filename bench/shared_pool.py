"""What one worker pool for a run's prepare and score saves: prepare the demo photos, then score
their crops against them, once with a pool for each step and once inside parallel.shared() (as
`facelora run` does), in CPU seconds (this process and its workers) and wall seconds.

    python bench/shared_pool.py [--rounds 2] [--workers 2]

Prints one JSON object: the command, the machine, the figures (medians over the rounds).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from machine import cpu_seconds, machine

from facelora import parallel


def prepare_then_score(folder: Path, workers: int) -> None:
    from facelora.demo_photos import write_demo_photos
    from facelora.evaluate.board import GroupKey, score_images
    from facelora.evaluate.likeness import build_reference
    from facelora.prepare.pipeline import open_or_create, prepare

    photos = folder / "photos"
    write_demo_photos(photos)
    project = open_or_create(folder / "project", trigger="ohwx", class_word="woman")
    report = prepare(photos, project, workers=workers)
    crops = [project.root / it.output for it in report.accepted]
    score_images([(p, GroupKey("crop", 1.0, 0, "crop")) for p in crops], build_reference(sorted(photos.iterdir())),
                 workers=workers)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2)
    a = ap.parse_args()
    figures: dict[str, dict[str, float]] = {}
    for name, block in (("a pool each", contextlib.nullcontext), ("one shared pool", parallel.shared)):
        walls, cpus = [], []
        for _ in range(a.rounds):
            with tempfile.TemporaryDirectory() as tmp:
                t, c = time.perf_counter(), cpu_seconds()
                with block(a.workers) if block is parallel.shared else block():
                    prepare_then_score(Path(tmp), a.workers)
                walls.append(time.perf_counter() - t)
                cpus.append(cpu_seconds() - c)
        figures[name] = {"wall_s": round(statistics.median(walls), 2), "cpu_s": round(statistics.median(cpus), 2)}
    print(json.dumps({"command": "python bench/" + " ".join(sys.argv), "machine": machine(), "figures": figures}))


if __name__ == "__main__":
    main()
