"""The README's commands do what it says: every `facelora ...` command it shows is either run here
on the tiny model, in the README's order (PROJECT a fresh project, sd15.safetensors the tiny
model, plus the parameters that make a run short), or named with the test that runs it."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from conftest import ASTRONAUT_CROPS, astronaut_rgb
from typer.testing import CliRunner

from facelora.cli import app
from facelora.project import Project

README = Path(__file__).resolve().parents[1] / "README.md"
runner = CliRunner()
SHORT = ["--resolution", "64", "--max_train_epochs", "1", "--optimizer_type", "AdamW", "--mixed_precision", "no",
         "--network_alpha", "32"]
GRID_SHORT = ["--size", "64x64", "--steps", "2"]

# Run below, in this order (README spelling -> what its README section says it prints).
RUN = [
    ("facelora --version", ("facelora ",)),
    ("facelora params", ("--network_dim 128", "--optimizer_args", "--max_train_epochs 10")),
    ("facelora init PROJECT --trigger ohwx --class-word woman", ("Created project",)),
    ("facelora config set PROJECT network_dim 64", ("Saved network_dim = 64",)),
    ("facelora config show PROJECT", ("network_dim = 64   (face default 128)", "network_alpha = 64.0")),
    ("facelora plan --images 32 --epochs 10 --max-train-steps 4800",
     ("repeats", "15", "steps per epoch", "total steps", "4800", "NAME-000001.safetensors", "NAME.safetensors")),
    ("facelora train PROJECT --base-model sd15.safetensors",
     ("Saved into", "pretrained_model_name_or_path", "model saved:", "Training finished")),
    ("facelora train PROJECT", ("earlier run of 'ohwx'", "--overwrite", "--output_name NAME", "--resume",
                                "Nothing was changed")),
    ("facelora train PROJECT --resume", ("Nothing to resume",)),
    ("facelora grid PROJECT --weights 0.4,0.6,0.8,1.0", ("Grid:", "eval/grid.png", "eval/cells", "eval/grid.json")),
    ("facelora score PROJECT", ("Scores:", "eval/likeness.json", "eval/heatmap.png")),
    ("facelora config export PROJECT kohya.toml", ("accelerate launch train_network.py",)),
    ("facelora config import PROJECT kohya.toml", ("Imported kohya.toml",)),
    ("facelora plan PROJECT --num_processes 2", ("steps per epoch",)),
    ("facelora plan PROJECT --epochs 10 --max-train-steps 4800 --yes", ("Renamed to 240_ohwx woman",)),
]
# Shown in the README, run elsewhere (or spelled there only as a pattern).
ELSEWHERE = {
    "facelora demo [DIR]": "test_demo.py", "facelora demo": "test_demo.py", "facelora gui": "test_gui.py",
    "facelora gui PROJECT": "test_gui.py", "facelora gui --workspace FOLDER_OF_PROJECTS": "test_gui_browser.py",
    "facelora prepare": "test_prepare.py", "facelora prepare PHOTOS PROJECT": "test_prepare.py",
    "facelora run PHOTOS PROJECT --trigger ohwx --base-model sd15.safetensors": "test_demo.py",
    "facelora run PHOTOS PROJECT --trigger ohwx --class-word woman --base-model sd15.safetensors "
    "[--preset static\\|dynamic]": "test_demo.py",
    "facelora score --reference PHOTOS --images OUTPUTS": "test_evaluate_likeness.py",
    "facelora score PROJECT --install-to .../models/Lora": "test_evaluate_likeness.py",
    "facelora grid PROJECT --score": "test_evaluate_grid.py",
    "facelora train PROJECT --num_processes 2": "test_train.py",
    "facelora config import PROJECT FILE": "test_kohya_import.py",
    "facelora grid PROJECT --probes": "test_evaluate_probes.py",
    "facelora plan PROJECT --vram 8": "test_plan_vram.py",
    "facelora prepare PHOTOS PROJECT --head-mask": "test_masks.py",
    "facelora reg generate PROJECT -n 200": "test_face_training.py",
    "facelora plan --images 32 --epochs 10 --max-train-steps 4800 --num_processes 2": "test_plan.py",
    # patterns: the commands above, spelled out
    "facelora config set": "", "facelora config set PROJECT KEY VALUE...": "", "facelora grid PROJECT": "",
    "facelora plan": "", "facelora plan PROJECT ... --yes": "", "facelora train PROJECT": "",
    "facelora train PROJECT ... --save": "", "facelora run": "", "facelora config import": "",
    "facelora train --output_name": "", "facelora train": "", "facelora score": "",
}


def readme_commands() -> set[str]:
    """Every `facelora ...` in backticks, and every facelora command of a ```bash block."""
    text = README.read_text(encoding="utf-8")
    found = {" ".join(m.split()) for m in re.findall(r"`(facelora [^`]*)`", text)}
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in block.splitlines():
            for part in re.split(r"&&|#\s*or:|#", line):
                if part.strip().startswith("facelora "):
                    found.add(" ".join(part.split()))
    return found


def test_every_readme_command_is_run_or_named():
    known = {c for c, _ in RUN} | set(ELSEWHERE)
    assert readme_commands() - known == set(), "a README command no test runs"
    tests = Path(__file__).parent
    assert all((tests / f).is_file() for f in ELSEWHERE.values() if f)


def test_readme_commands_run_on_the_tiny_model(tmp_path):
    from PIL import Image

    project = tmp_path / "我的 project"  # a space and Chinese characters, as users name folders
    for command, expected in RUN:
        args = shlex.split(command.replace("sd15.safetensors", "tiny"))[1:]
        args = [str(project) if a == "PROJECT" else str(tmp_path / a) if a == "kohya.toml" else a for a in args]
        if args[0] == "train" and "--resume" not in args:
            args += SHORT + (["--save"] if "--base-model" in args else [])
        if args[0] == "grid":
            args += GRID_SHORT
        res = runner.invoke(app, args)
        text = " ".join(res.output.split())
        assert all(" ".join(e.split()) in text for e in expected), f"{command}:\n{res.output}"
        assert "Traceback" not in res.output
        if args[0] == "init":  # the photos, as prepare leaves them: crops with captions
            folder, _ = Project.open(project).concept_dir()
            for i, (top, left) in enumerate(ASTRONAUT_CROPS[:2]):
                crop = Image.fromarray(astronaut_rgb()[top:top + 256, left:left + 256])  # big enough for dlib to find the face
                crop.save(folder / f"{i}.png")
                (folder / f"{i}.txt").write_text(f"ohwx woman, photo {i}")
    assert (project / "models" / "ohwx.safetensors").is_file() and (project / "eval" / "grid.png").is_file()
