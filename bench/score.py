"""How long likeness scoring takes per grid cell on this CPU.

    python bench/score.py [--rounds 3]

A cell is one 512 x 512 image, the size SD1.5 makes. Two kinds, because they cost differently:
- `face_cell`: an image with a face (variants of scikit-image's astronaut, scaled to 512 x 512):
  dlib's HOG detector finds it, then the 5-point alignment and the 128-d descriptor;
- `no_face_cell`: an image without one (smooth noise): HOG finds nothing, so dlib's CNN
  detector runs as well, the expensive path;
plus `reference_photo`: embedding one training crop (done once per project, then cached).
Each figure is the median over rounds of the mean seconds per image, single process, as
`facelora score` runs. Prints one JSON object: the command, the machine, the figures.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from machine import machine as _machine

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


def per_image(fn, paths: list[Path], rounds: int) -> float:
    means = []
    for _ in range(rounds):
        t = time.perf_counter()
        for p in paths:
            fn(p)
        means.append((time.perf_counter() - t) / len(paths))
    return statistics.median(means)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()

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
    print(json.dumps({
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": machine(),
        "figures": {
            "face_cell_seconds": round(face_cell, 3),
            "no_face_cell_seconds": round(no_face_cell, 3),
            "reference_photo_seconds": round(reference_photo, 3),
            "cells_per_minute_with_faces": round(60 / face_cell, 1),
            "faces_found": {"face_cells": sum(found[:len(faces)]), "of": len(faces),
                            "noise_cells": sum(found[len(faces):]), "of_noise": len(noise)},
            "image_size": "512x512", "rounds": args.rounds,
        },
    }))


if __name__ == "__main__":
    main()
