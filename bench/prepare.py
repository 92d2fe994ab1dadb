"""How fast prepare goes on this CPU, in photos per second.

    python bench/prepare.py [--rounds 3] [--realesrgan]

Two figures over the demo set (twelve variants of scikit-image's astronaut, 512 x 512) plus
matplotlib's Grace Hopper (512 x 600):
- `detect_frame_lanczos`: dlib face detection, the 68 landmarks, the head framing, the search
  for other faces in the crop, and Lanczos to 512, on decoded photos; printed beside the figure
  of the old crop (face box only, no landmarks), measured with this script before the change;
- `full_prepare`: the whole `prepare` run from files (decode, detect, landmarks, framing,
  Lanczos, identity descriptors before and after, blur, pHash, PNG and caption writing, report,
  contact sheet), also as CPU seconds a photo: what one idle core gives, whatever the load.
With --realesrgan, also Real-ESRGAN x4plus (ncnn, CPU) on one 117 px crop.
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

def photos() -> list[tuple[str, np.ndarray]]:
    import matplotlib.cbook as cbook

    from facelora import demo_photos

    out = [(name, demo_photos.as_array(im)) for name, im in demo_photos.variants()]
    with Image.open(cbook.get_sample_data("grace_hopper.jpg")) as im:
        out.append(("grace_hopper", np.asarray(im.convert("RGB"))))
    return out


# The old crop (face box x 2.6, no landmarks), bench/RESULTS.md "Prepare and scoring", 21:05.
OLD_DETECT_CROP_LANCZOS = {"photos_per_s": 11.6, "cpu_s_per_photo": 0.086}
# This script on the head framing before HOG ran on grey and the pose plot left matplotlib
# (bench/RESULTS.md, "Prepare and scoring: the speed targets", 12:33, load average 1.9 -> 5.6).
BEFORE_SPEED_WORK = {"detect_frame_lanczos_cpu_s_per_photo": 0.198, "full_prepare_cpu_s_per_photo": 0.638}


def detect_frame_lanczos(images: list[tuple[str, np.ndarray]], size: int = 512) -> int:
    from facelora import faces
    from facelora.prepare import crop, people, upscale

    done = 0
    for _, rgb in images:
        person, others = people.subject(faces.detect(rgb))
        framed, _ = crop.frame(faces.head(rgb, person), rgb.shape[1], rgb.shape[0])
        people.in_crop(rgb, person, others, framed)
        upscale.lanczos(framed.cut(Image.fromarray(rgb)), size)
        done += 1
    return done


def warm_up(rgb: np.ndarray) -> None:
    """Load what every run loads once (dlib's five models, scipy's FFT for the pHash) outside the
    timing: the figures are per photo."""
    from facelora import faces
    from facelora.prepare import quality

    detect_frame_lanczos([("warm-up", rgb)])
    faces.descriptor(rgb, faces.detect(rgb)[0])
    quality.phash(Image.fromarray(rgb))


def full_prepare(images: list[tuple[str, np.ndarray]], workers: int | None = None) -> tuple[int, float, float]:
    from facelora.prepare.pipeline import PrepareOptions, open_or_create, prepare

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "photos"
        folder.mkdir()
        for i, (name, rgb) in enumerate(images):
            Image.fromarray(rgb).save(folder / f"{i:02d} {name}.{'jpg' if i % 2 else 'png'}", quality=92)
        project = open_or_create(Path(tmp) / "project", "ohwx", "woman")
        t, c = time.perf_counter(), cpu_seconds()
        report = prepare(folder, project, PrepareOptions(), workers=workers)
        return len(report.accepted), time.perf_counter() - t, cpu_seconds() - c


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--realesrgan", action="store_true")
    ap.add_argument("--workers", type=int, default=None, help="processes for the whole prepare (default: FACELORA_WORKERS, else the cores this process may use)")
    args = ap.parse_args()

    info = machine()
    info["load_average_1min_at_start"] = round(os.getloadavg()[0], 2)
    images = photos()
    warm_up(images[0][1])
    rates, cpu = [], []
    for _ in range(args.rounds):
        t, c = time.perf_counter(), time.process_time()
        n = detect_frame_lanczos(images)
        rates.append(n / (time.perf_counter() - t))
        cpu.append((time.process_time() - c) / n)
    full = [full_prepare(images, args.workers) for _ in range(args.rounds)]
    figures = {
        "photos": len(images),
        "detect_frame_lanczos_photos_per_s": round(statistics.median(rates), 2),
        "detect_frame_lanczos_photos_per_s_best": round(max(rates), 2),
        # CPU seconds per photo (this process and its workers): what one idle core would take (dlib's HOG runs on one thread), whatever the load
        "detect_frame_lanczos_cpu_s_per_photo": round(min(cpu), 3),
        "old_detect_crop_lanczos": OLD_DETECT_CROP_LANCZOS,
        "before_speed_work": BEFORE_SPEED_WORK,
        "full_prepare_workers": parallel.worker_count(args.workers),
        "full_prepare_photos_per_s": round(statistics.median(n / s for n, s, _ in full), 2),
        "full_prepare_wall_s_per_photo": round(statistics.median(s / len(images) for _, s, _ in full), 3),
        "full_prepare_cpu_s_per_photo": round(min(c / len(images) for _, _, c in full), 3),
        "full_prepare_accepted": full[0][0],
        "rounds": args.rounds,
    }
    if args.realesrgan:
        from facelora.prepare import upscale

        model = upscale.get_upscaler("realesrgan")
        small = Image.fromarray(images[0][1]).resize((256, 256), Image.Resampling.LANCZOS).crop((50, 20, 167, 137))
        t = time.perf_counter()
        model(small, 512)
        figures["realesrgan_x4plus_117px_crop_s"] = round(time.perf_counter() - t, 2)
    info["load_average_1min_at_end"] = round(os.getloadavg()[0], 2)
    print(json.dumps({"command": " ".join([Path(sys.executable).name, *sys.argv]), "machine": info,
                      "figures": figures}, ensure_ascii=False))


if __name__ == "__main__":
    main()
