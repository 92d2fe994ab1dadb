"""The plan is what training runs: for a grid of batch size, gradient accumulation, processes,
max_train_steps vs max_train_epochs, save_every_n_epochs, save_last_n_epochs and buckets, the
tiny model (random weights: a test device) trains at 64 px (128 with buckets) for a few steps,
and `facelora plan PROJECT --json` must give the steps, epochs and file names that were trained
(events.jsonl) and saved (models/). Each case also states Kohya's numbers worked out by hand
(train_network.py: steps per epoch = ceil(batches / processes / accumulation)), so a plan and a
loop that agreed on a wrong count would still fail."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image
from rich.console import Console
from typer.testing import CliRunner

from conftest import astronaut_rgb, tiny_training_project
from facelora.cli import app
from facelora.config import apply
from facelora.dataset import scan_for
from facelora.plan import plan_for
from facelora.project import Project
from facelora.train.loop import train

BASE = dict(pretrained_model_name_or_path="tiny", resolution="64", network_dim=2, network_alpha=1,
            optimizer_type="AdamW", lr_scheduler="constant", unet_lr=1e-3, text_encoder_lr=1e-4,
            save_state=False, mixed_precision="no", output_name="x")
runner = CliRunner()


def make_project(root: Path, images: int, repeats: int, tall: int = 0, **updates) -> tuple[Project, object]:
    """`images` square crops (and `tall` images three times as high as wide: a second bucket);
    the settings in facelora.toml, and the run's config (with the values TOML cannot hold: None)."""
    project = tiny_training_project(root, images, repeats)
    folder, _ = project.concept_dir()
    for i in range(tall):
        Image.fromarray(astronaut_rgb()[:300, 100 * i:100 * i + 100]).save(folder / f"tall{i}.png")
    settings = project.settings()
    settings.train = apply(settings.train, {**BASE, **updates})
    project.save_settings(settings)
    return project, apply(project.train_config(), updates)


def plan_json(*args: str) -> dict:
    result = runner.invoke(app, ["plan", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def trained(project: Project) -> tuple[int, int, Counter, list[str]]:
    """(steps, epochs, steps per epoch, LoRA files) of the run, from events.jsonl and models/."""
    events = [json.loads(line) for line in project.events_path.read_text().splitlines()]
    assert events[-1]["event"] == "end" and not events[-1]["interrupted"]
    steps = [e for e in events if e["event"] == "step"]
    assert [e["step"] for e in steps] == list(range(1, len(steps) + 1))
    per_epoch = Counter(e["epoch"] for e in steps)
    epochs = [e["epoch"] for e in events if e["event"] == "epoch"]
    assert epochs == sorted(per_epoch) == list(range(1, len(epochs) + 1))
    return len(steps), len(epochs), per_epoch, sorted(p.name for p in project.models_dir.glob("*.safetensors"))


def assert_plan_was_trained(plan: dict, project: Project, steps: int, epochs: int, files: list[str]) -> None:
    total, n_epochs, per_epoch, saved = trained(project)
    assert (plan["total_steps"], plan["epochs"], sorted(plan["saved_files"])) == (total, n_epochs, saved)
    assert all(per_epoch[e] == plan["steps_per_epoch"] for e in range(1, n_epochs))  # every full epoch
    assert 1 <= per_epoch[n_epochs] <= plan["steps_per_epoch"]  # max_train_steps may end the last early
    assert (total, n_epochs, saved) == (steps, epochs, sorted(files))  # Kohya's numbers, by hand


# (images, repeats, tall images, settings, Kohya's total steps, epochs, files)
CASES = {
    # 3 samples, batch 2: 2 batches an epoch (the second one short); the newest epoch file kept
    "batch-save-last-n": (3, 1, 0, dict(train_batch_size=2, max_train_epochs=3, save_last_n_epochs=1),
                          6, 3, ["x-000002.safetensors", "x.safetensors"]),
    # 4 batches / 3 accumulated = 2 steps an epoch; max_train_steps 3 stops 1 step into epoch 2
    "accumulation-max-steps": (2, 2, 0, dict(gradient_accumulation_steps=3, max_train_epochs=None,
                                             max_train_steps=3, save_every_n_epochs=None),
                               3, 2, ["x.safetensors"]),
    # buckets: 3 squares -> 2 batches of 2, 1 tall -> 1 batch: 3 batches (not ceil(4 / 2) = 2), 2 steps
    "buckets-accumulation": (3, 1, 1, dict(enable_bucket=True, resolution="128", min_bucket_reso=64,
                                           max_bucket_reso=256, bucket_reso_steps=64, train_batch_size=2,
                                           gradient_accumulation_steps=2, max_train_epochs=1),
                             2, 1, ["x.safetensors"]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_the_plan_is_what_training_runs(tmp_path, name):
    images, repeats, tall, settings, steps, epochs, files = CASES[name]
    project, cfg = make_project(tmp_path / "p", images, repeats, tall, **settings)
    plan = plan_for(cfg, scan_for(cfg)).to_dict()  # what `facelora plan` shows for these settings
    train(project, cfg, console=Console(file=io.StringIO()))
    assert_plan_was_trained(plan, project, steps, epochs, files)


def test_a_step_budget_with_accumulation_is_what_training_runs(tmp_path):
    """Issue 15's bug: `facelora plan --epochs --max-train-steps --yes` solved the repeats as if
    every batch were a step, so with gradient_accumulation_steps 2 training ran half the steps
    it showed (32 images, 10 epochs: 4800 shown, 2400 run). Here 2 images, 2 epochs, a budget of
    4 steps: 2 repeats (4 batches, 2 steps an epoch), not 1 (2 batches: 1 step, 2 in all)."""
    project, _ = make_project(tmp_path / "p", 2, 5, gradient_accumulation_steps=2, save_last_n_epochs=1)
    plan = plan_json(str(project.root), "--epochs", "2", "--max-train-steps", "4", "--yes")
    assert (plan["repeats"], plan["steps_per_epoch"], plan["total_steps"]) == (2, 2, 4)
    assert project.concept_dir()[0].name.startswith("2_") and plan_json(str(project.root)) == plan
    train(project, project.train_config(), console=Console(file=io.StringIO()))
    assert_plan_was_trained(plan, project, 4, 2, ["x-000001.safetensors", "x.safetensors"])


@pytest.mark.slow
def test_two_processes_train_what_the_plan_says(tmp_path):
    """Two CPU processes (gloo, through accelerate): 3 batches shared by 2 processes, the short
    one padded as accelerate does: 2 steps an epoch, not 3 (one process) nor 1.5."""
    project, _ = make_project(tmp_path / "p", 3, 1, max_train_epochs=2)
    plan = plan_json(str(project.root), "--num-processes", "2")
    assert plan_json(str(project.root))["steps_per_epoch"] == 3
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run([sys.executable, "-m", "facelora", "train", str(project.root), "--num_processes", "2"],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert_plan_was_trained(plan, project, 4, 2, ["x-000001.safetensors", "x.safetensors"])
