"""Shared fixtures. Tests run torch on one thread: on these 2 shared cores a second thread makes
steps 3-7x slower whenever another process takes a core."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

try:
    import torch

    torch.set_num_threads(1)
except ImportError:  # pragma: no cover
    pass


def astronaut_rgb() -> np.ndarray:
    """scikit-image's astronaut (Eileen Collins, public domain), read from the installed package."""
    from skimage import data

    return data.astronaut()


def grace_hopper_rgb() -> np.ndarray:
    """matplotlib's grace_hopper.jpg (public domain), read from the installed package."""
    import matplotlib.cbook as cbook
    from PIL import Image

    with Image.open(cbook.get_sample_data("grace_hopper.jpg")) as im:
        return np.asarray(im.convert("RGB"))


@pytest.fixture
def astronaut() -> np.ndarray:
    return astronaut_rgb()


@pytest.fixture
def grace_hopper() -> np.ndarray:
    return grace_hopper_rgb()


@pytest.fixture
def photo_dir(tmp_path: Path) -> Path:
    """A folder (with a space and Chinese characters in its name) holding the two package photos."""
    from PIL import Image

    d = tmp_path / "照片 photos"
    d.mkdir()
    Image.fromarray(astronaut_rgb()).save(d / "astronaut.png")
    Image.fromarray(grace_hopper_rgb()).save(d / "grace hopper.jpg", quality=95)
    return d


# (top, left) of 256 px squares of the astronaut around her face: small, distinct training images
ASTRONAUT_CROPS = [(0, 100), (20, 140), (60, 80), (0, 0)]


def tiny_training_project(root: Path, images: int = 2, repeats: int = 2):
    """A project holding `images` 64 px crops of the astronaut with captions, for training tests
    on the tiny model."""
    from PIL import Image

    from facelora.project import init_project

    project = init_project(root, "ohwx", "woman", repeats=repeats)
    folder, _ = project.concept_dir()
    photo = astronaut_rgb()
    for i in range(images):
        top, left = ASTRONAUT_CROPS[i]
        crop = Image.fromarray(photo[top:top + 256, left:left + 256]).resize((64, 64), Image.Resampling.LANCZOS)
        crop.save(folder / f"{i}.png")
        (folder / f"{i}.txt").write_text(f"ohwx woman, smiling, photo {i}")
    return project


@contextmanager
def gui_server(args: list[str], cwd: Path, log_path: Path, wait_s: float) -> Iterator[str]:
    """`facelora gui ARGS --port P` on a free localhost port, as its own process, until it answers
    (failing with its log when it exits or stays silent for `wait_s`); yields its URL and stops it
    as Ctrl-C does."""
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    env.pop("GRADIO_TEMP_DIR", None)
    with log_path.open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "facelora", "gui", *args, "--port", str(port)],
                                stdout=log, stderr=subprocess.STDOUT, env=env, cwd=cwd, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + wait_s
    while True:
        if proc.poll() is not None:
            pytest.fail("the GUI server exited:\n" + log_path.read_text(errors="replace"))
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"the GUI server did not answer in {wait_s:.0f} s:\n" + log_path.read_text(errors="replace"))
        time.sleep(0.3)
    try:
        yield url
    finally:
        proc.send_signal(2)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
