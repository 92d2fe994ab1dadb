"""One options model per step, shared by the CLI, the GUI and the jobs the GUI starts; one
name -> builder table each for optimizers, schedulers and upscalers."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from conftest import tiny_training_project
from facelora.cli import app
from facelora.cli.app import help_of, options_from_file
from facelora.config import ConfigError, TrainConfig
from facelora.evaluate.grid import GridOptions
from facelora.evaluate.scoring import ScoreOptions
from facelora.gui import jobs
from facelora.gui.fields import CHOICES, PREPARE_COMBOS
from facelora.prepare.options import PrepareOptions
from facelora.prepare.upscale import UPSCALERS, Lanczos, get_upscaler, identity_name
from facelora.project import init_project
from facelora.run import RunOptions
from facelora.train.optim import OPTIMIZERS, SCHEDULERS, make_optimizer, make_scheduler
from facelora.train.options import TrainOptions

# --- the tables --------------------------------------------------------------------------------


def test_config_and_gui_take_their_names_from_the_tables():
    for name in OPTIMIZERS:
        assert TrainConfig(optimizer_type=name.lower()).optimizer_type == name
    for name in SCHEDULERS:
        assert TrainConfig(lr_scheduler=name).lr_scheduler == name
    with pytest.raises(ValueError) as bad:
        TrainConfig(optimizer_type="Adam9")
    assert all(name in str(bad.value) for name in OPTIMIZERS)
    with pytest.raises(ValueError) as bad:
        TrainConfig(lr_scheduler="cosine_forever")
    assert all(name in str(bad.value) for name in SCHEDULERS)
    assert CHOICES == {"optimizer_type": tuple(OPTIMIZERS), "lr_scheduler": tuple(SCHEDULERS)}
    assert PREPARE_COMBOS["upscaler"] == tuple(UPSCALERS)
    described = TrainConfig.model_fields
    assert all(n in described["optimizer_type"].description for n in OPTIMIZERS)
    assert all(n in described["lr_scheduler"].description for n in SCHEDULERS)


def test_every_scheduler_of_the_table_builds_and_steps():
    import torch

    param = torch.nn.Parameter(torch.zeros(4))
    for name in SCHEDULERS:
        optimizer = "Adafactor" if name == "adafactor" else "AdamW"
        cfg = TrainConfig(optimizer_type=optimizer, lr_scheduler=name, lr_warmup_steps=0 if name == "constant" else 2,
                          unet_lr=1e-3, text_encoder_lr=1e-3)
        optim = make_optimizer(cfg, [param], [])
        scheduler = make_scheduler(cfg, optim, total_steps=10)
        optim.optimizer.step()
        scheduler.step()
        assert scheduler.get_last_lr(), name


def test_optimizer_builders_set_kohyas_arguments():
    import torch

    param = torch.nn.Parameter(torch.zeros(4))
    sgd = make_optimizer(TrainConfig(optimizer_type="SGDNesterov", lr_scheduler="constant"), [param], [])
    group = sgd.optimizer.param_groups[0]
    assert isinstance(sgd.optimizer, torch.optim.SGD) and group["nesterov"] and group["momentum"] == 0.9
    ada = make_optimizer(TrainConfig(optimizer_type="Adafactor", lr_scheduler="adafactor"), [param], [])
    assert ada.relative_step and "Adafactor" in ada.description
    with pytest.raises(ConfigError, match="do not fit AdamW"):
        make_optimizer(TrainConfig(optimizer_type="AdamW", optimizer_args=["nesterov=True"]), [param], [])


def test_upscalers_by_name_from_the_table():
    assert isinstance(get_upscaler(" LANCZOS "), Lanczos)
    assert identity_name("Lanczos") == "lanczos" and set(UPSCALERS) >= {"lanczos", "realesrgan"}


# --- the CLI reads defaults and help from the models -----------------------------------------

STEPS = {"prepare": PrepareOptions, "train": TrainOptions, "grid": GridOptions, "score": ScoreOptions,
         "run": RunOptions}


# Options the command spells its own way: prepare's --tags is one comma-separated string, grid's
# --z takes the axis and its values together; run's --trigger and --preset are the ones `init` shares.
OWN_SPELLING = {("prepare", "tags"), ("grid", "z"), ("run", "trigger"), ("run", "preset")}


@pytest.mark.parametrize("verb", sorted(STEPS))
def test_cli_defaults_and_help_are_the_models(verb):
    model = STEPS[verb]
    command = typer.main.get_command(app).commands[verb]
    shared = [p for p in command.params if p.name in model.model_fields and (verb, p.name) not in OWN_SPELLING]
    assert len(shared) >= 3
    for param in shared:
        field = model.model_fields[param.name]
        if not field.is_required():
            assert param.default == field.get_default(call_default_factory=True), (verb, param.name)
        assert param.help == help_of(model, param.name), (verb, param.name)


# --- a GUI job gets its options as a file ----------------------------------------------------

WAIT_FOR_SIGINT = "import signal, sys, time; signal.signal(signal.SIGINT, lambda *a: sys.exit(0)); time.sleep(30)"


def test_a_gui_job_gets_its_options_as_a_file_the_command_reads(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(jobs, "facelora_command", lambda *args: [sys.executable, "-c", WAIT_FOR_SIGINT, *args])
    p = init_project(tmp_path / "p", "ohwx")
    options = GridOptions(weights="0.5,1.0", steps=4, z="seeds", z_values="1,2", allow_pickle=True)
    job = jobs.start(p, "grid", ["grid", str(p.root)], options=options)
    try:
        args = job.command[3:]  # after python -c SCRIPT
        assert args == ["grid", str(p.root), "--options-file", str(jobs.options_path(p, "grid"))]
        assert json.loads(jobs.options_path(p, "grid").read_text())["z_values"] == "1,2"
        ctx = typer.main.get_command(app).commands["grid"].make_context("grid", args[1:])
        assert options_from_file(ctx.params["options_file"], GridOptions) == options
    finally:
        jobs.stop(p, "grid", wait_s=10)


def test_train_runs_from_an_options_file(tmp_path: Path):
    project = tiny_training_project(tmp_path / "p", 1, 2)
    before = project.config_path.read_text()
    options = TrainOptions(base_model="tiny", overrides=dict(
        resolution="64", max_train_epochs=1, network_dim=4, network_alpha=2, optimizer_type="AdamW",
        lr_scheduler="constant"))
    file = tmp_path / "train.options.json"
    file.write_text(options.model_dump_json())
    res = CliRunner().invoke(app, ["train", str(project.root), "--options-file", str(file)])
    assert res.exit_code == 0, res.output
    assert "model saved:" in res.output and (project.models_dir / "ohwx.safetensors").is_file()
    assert project.config_path.read_text() == before  # the overrides were for this run only
    file.write_text(json.dumps({"resume": True, "epochs": 3}))
    res = CliRunner().invoke(app, ["train", str(project.root), "--options-file", str(file)])
    assert res.exit_code == 2 and "does not fit" in res.output and "--epochs" in res.output


def test_bad_options_on_the_command_line_name_the_option(tmp_path: Path):
    p = init_project(tmp_path / "p", "ohwx")
    res = CliRunner().invoke(app, ["grid", str(p.root), "--steps", "500"])
    assert res.exit_code == 2 and "--steps" in res.output
    res = CliRunner().invoke(app, ["train", str(p.root), "--num-processes", "0"])
    assert res.exit_code == 2 and "--num-processes" in res.output

