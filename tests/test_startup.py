"""Commands that need no model start without torch (about a second and a half of imports saved):
each runs in a fresh interpreter, which reports whether torch was loaded."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from facelora.project import init_project

KOHYA_SS = Path(__file__).resolve().parents[1] / ".." / "shared" / "kohya_ss"
# the command runs as `facelora ...` would; the GPU driver's device files are hidden, so the
# machine's card (if any) cannot make torch load; atexit reports after typer's SystemExit
RUN = ("import atexit, sys\n"
       "import facelora.vram\n"
       "facelora.vram.GPU_DEVICE_FILES = ()\n"
       "atexit.register(lambda: print('torch loaded:', 'torch' in sys.modules))\n"
       "from facelora.cli import app\n"
       "app(sys.argv[1:], prog_name='facelora')\n")


def loads_torch(*args) -> bool:
    out = subprocess.run([sys.executable, "-c", RUN, *map(str, args)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout.strip().splitlines()[-1] == "torch loaded: True"


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    p = init_project(tmp_path_factory.mktemp("startup") / "p", "ohwx", "woman")
    folder, _ = p.concept_dir()
    for i in range(3):  # for `plan PROJECT`, which scans the training images
        Image.new("RGB", (512, 512), (40 * i, 80, 90)).save(folder / f"{i}.png")
    return p


def test_config_import_of_a_kohya_ss_file_loads_no_torch(project):
    assert not loads_torch("config", "import", project.root, KOHYA_SS / "sd15 - EDG_LoConOptiSettings.json")
    assert project.settings().train.network_module == "lycoris.kohya"  # it did import


@pytest.mark.parametrize("args", [
    ("--version",), ("--help",), ("params",), ("config", "show"), ("config", "set", "network_dim", "32"),
    ("plan", "--images", "20", "--epochs", "10", "--max-train-steps", "2000"), ("plan",),
    ("plan", "--images", "20", "--epochs", "10", "--max-train-steps", "2000", "--vram", "8"),
])
def test_commands_that_need_no_model_load_no_torch(project, args):
    if args[0] == "config":  # config show / set take the project after the subcommand
        args = (args[0], args[1], project.root, *args[2:])
    elif args == ("plan",):
        args = ("plan", project.root)
    assert not loads_torch(*args)


def test_the_probe_sees_torch_where_it_is_loaded():
    # the checks above would pass for a probe that never saw torch
    code = RUN.replace("from facelora.cli import app", "import torch\nfrom facelora.cli import app")
    out = subprocess.run([sys.executable, "-c", code, "--version"], capture_output=True, text=True, timeout=300)
    assert out.stdout.strip().splitlines()[-1] == "torch loaded: True"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the GPU driver's device files are Linux's")
def test_torch_is_asked_for_a_card_only_where_a_gpu_driver_is(tmp_path):
    driver = tmp_path / "nvidiactl"
    driver.touch()
    code = ("import sys, facelora.vram as v\n"
            "v.GPU_DEVICE_FILES = ('/nonexistent/nvidiactl',); print(v.cuda_available(), 'torch' in sys.modules)\n"
            "v.GPU_DEVICE_FILES = (sys.argv[1],); import torch\n"
            "print(v.cuda_available() == torch.cuda.is_available())\n")
    out = subprocess.run([sys.executable, "-c", code, str(driver)], capture_output=True, text=True, timeout=300)
    assert out.stdout.split() == ["False", "False", "True"], out.stderr
