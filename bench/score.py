"""How long likeness scoring takes per grid cell on this CPU.

    python bench/score.py [--rounds 3] [--cells 200]

A cell is one 512 x 512 image, the size SD1.5 makes. Two kinds, because they cost differently:
- `face_cell`: an image with a face (variants of scikit-image's astronaut, scaled to 512 x 512):
  dlib's HOG detector finds it (faces.detect quick: without upsampling, then the upsampled pass
  on the part of the image up to a face height right of and below it), then the 5-point
  alignment, the 128-d descriptor, and the copy check's 68 landmarks and perceptual hash;
- `no_face_cell`: an image without one (smooth noise): HOG finds nothing (without upsampling,
  then upsampled once over the whole image), so dlib's CNN
  detector runs on a copy no larger than likeness.CNN_MAX_SIDE; `no_face_cell_full_cnn` is the
  earlier path (faces.embed: the CNN on the whole 512 x 512 image) for comparison;
plus `reference_photo`: embedding one training crop (done once per project, then cached), and
`grid_cells`: a whole 5 files x 4 weights x 10 probe prompts grid (200 cells, 4 in 5 with a face)
through score_images, as `facelora score` runs it, on --workers processes (default: FACELORA_WORKERS, else the cores;
its CPU figure counts the workers too).
Each per-image figure is the median over rounds of the mean seconds per image, single process.
Prints one JSON object: the command, the machine, the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from machine import cpu_seconds, machine as _machine

from facelora import parallel

import numpy as np
from PIL import Image


def machine() -> dict:
    import dlib

    return _machine(dlib=dlib.__version__)

def cells(folder: Path) -> tuple[list[Path], list[Path], list[Path]]:
    from facelora import demo_photos

    variants = demo_photos.variants()
    faces, noise, refs = [], [], []
    for i, (name, im) in enumerate(variants[:8]):
        p = folder / f"face-{i}.png"
        im.resize((512, 512), Image.Resampling.LANCZOS).save(p)
        faces.append(p)
    rng = np.random.default_rng(0)
    for i in range(4):
        small = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)  # smooth, like an untrained model's blur
        p = folder / f"noise-{i}.png"
        Image.fromarray(small).resize((512, 512), Image.Resampling.BICUBIC).save(p)
        noise.append(p)
    for i, (name, im) in enumerate(variants[8:12]):
        p = folder / f"ref-{i}.png"
        im.save(p)
        refs.append(p)
    return faces, noise, refs


def per_image(fn, paths: list[Path], rounds: int) -> tuple[float, float]:
    """(wall, CPU) seconds per image, medians over rounds. Scoring runs on one thread, so its CPU
    time is what the wall time would be on an idle machine; the wall time grows with the load."""
    walls, cpus = [], []
    for _ in range(rounds):
        t, c = time.perf_counter(), time.process_time()
        for p in paths:
            fn(p)
        walls.append((time.perf_counter() - t) / len(paths))
        cpus.append((time.process_time() - c) / len(paths))
    return statistics.median(walls), statistics.median(cpus)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--cells", type=int, default=200, help="cells of the whole-grid figure (0: leave it out)")
    ap.add_argument("--workers", type=int, default=None, help="processes for the whole grid (default: FACELORA_WORKERS, else the cores this process may use)")
    args = ap.parse_args()
    load_at_start = round(os.getloadavg()[0], 2)

    from facelora import faces as dlib_faces
    from facelora.evaluate.board import GroupKey, score_images
    from facelora.evaluate.likeness import build_reference, load_rgb, score_image

    with tempfile.TemporaryDirectory() as tmp:
        faces, noise, refs = cells(Path(tmp))
        t = time.perf_counter()
        ref = build_reference(refs)
        reference_photo = (time.perf_counter() - t) / len(refs)
        centroid = ref.centroid
        found = [score_image(load_rgb(p), ref, centroid=centroid).face for p in faces + noise]
        face_cell = per_image(lambda p: score_image(load_rgb(p), ref, centroid=centroid), faces, args.rounds)
        no_face_cell = per_image(lambda p: score_image(load_rgb(p), ref, centroid=centroid), noise, args.rounds)
        full_cnn = per_image(lambda p: dlib_faces.embed(load_rgb(p)), noise[:2], 1)
        grid = None
        if args.cells:
            pool = faces * 4 + noise  # 4 in 5 cells with a face
            items = [(pool[i % len(pool)], GroupKey(f"file{i // 40}", 0.4 + 0.2 * (i // 10 % 4), i // 40, str(i // 10)),
                      ("likeness", "flexibility", "bleed")[i % 10 * 3 // 10]) for i in range(args.cells)]
            t, c = time.perf_counter(), cpu_seconds()
            score_images(items, ref, workers=args.workers)
            grid = time.perf_counter() - t, cpu_seconds() - c
    print(json.dumps({
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": {**machine(), "load_average_1min_at_start": load_at_start,
                    "load_average_1min_at_end": round(os.getloadavg()[0], 2)},
        "figures": {
            "face_cell_seconds": round(face_cell[0], 3), "face_cell_cpu_seconds": round(face_cell[1], 3),
            "no_face_cell_seconds": round(no_face_cell[0], 3), "no_face_cell_cpu_seconds": round(no_face_cell[1], 3),
            "no_face_cell_full_cnn_seconds": round(full_cnn[0], 3),
            "no_face_cell_full_cnn_cpu_seconds": round(full_cnn[1], 3),
            "reference_photo_seconds": round(reference_photo, 3),
            "cells_per_minute_with_faces": round(60 / face_cell[0], 1),
            "grid_cells": args.cells or None, "grid_workers": parallel.worker_count(args.workers),
            "grid_seconds": round(grid[0], 1) if grid else None, "grid_cpu_seconds": round(grid[1], 1) if grid else None,
            "grid_seconds_per_cell": round(grid[0] / args.cells, 3) if grid else None,
            "grid_cpu_seconds_per_cell": round(grid[1] / args.cells, 3) if grid else None,
            "faces_found": {"face_cells": sum(found[:len(faces)]), "of": len(faces),
                            "noise_cells": sum(found[len(faces):]), "of_noise": len(noise)},
            "image_size": "512x512", "rounds": args.rounds,
        },
    }))


if __name__ == "__main__":
    main()
