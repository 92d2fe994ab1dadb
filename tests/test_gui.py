"""The GUI's logic without a browser: which paths a request may name, the job lock files, reading
events.jsonl, the parameter widgets generated from TrainConfig, upload checks, captions."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from facelora.config import TrainConfig
from facelora import locks
from facelora.gui import jobs
from facelora.gui.fields import field_specs, from_widget, to_widget
from facelora.paths import PathError, Roots, inside
from facelora.gui.workspace import Workspace
from facelora.project import init_project

# --- inside ----------------------------------------------------------------------------------


def test_safe_path_accepts_paths_inside(tmp_path: Path):
    base = tmp_path / "ws"
    (base / "a").mkdir(parents=True)
    assert inside(base, "a") == (base / "a").resolve()
    assert inside(base, "a/../b") == (base / "b").resolve()
    assert inside(base, ".") == base.resolve()
    assert inside(base, str(base / "a" / "new file")) == (base / "a" / "new file").resolve()
    assert inside(base, "照片 photos") == (base / "照片 photos").resolve()


@pytest.mark.parametrize("bad", ["..", "../x", "a/../../x", "/etc/passwd", "/", "", "   ", "a\x00b",
                                 "../ws-sibling"])
def test_safe_path_refuses_paths_outside(tmp_path: Path, bad: str):
    base = tmp_path / "ws"
    base.mkdir()
    with pytest.raises(PathError):
        inside(base, bad)


def test_safe_path_refuses_a_link_out(tmp_path: Path):
    base = tmp_path / "ws"
    base.mkdir()
    (tmp_path / "secret").mkdir()
    (base / "link").symlink_to(tmp_path / "secret")
    with pytest.raises(PathError):
        inside(base, "link/file.txt")


def test_roots_resolve_relative_in_workspace_and_absolute_in_any_root(tmp_path: Path):
    ws, photos = tmp_path / "ws", tmp_path / "photos"
    ws.mkdir(), photos.mkdir()
    roots = Roots.of(ws, [photos])
    assert roots.resolve("p") == (ws / "p").resolve()
    assert roots.resolve(str(photos / "x.jpg")) == (photos / "x.jpg").resolve()
    for bad in (str(tmp_path), "../photos", str(tmp_path / "other")):
        with pytest.raises(PathError):
            roots.resolve(bad)


def test_workspace_creates_projects_only_inside(tmp_path: Path):
    ws = Workspace.of(tmp_path / "ws")
    (tmp_path / "ws").mkdir()
    p = ws.create("alice 爱丽丝", "ohwx", "woman")
    assert p.root.parent == (tmp_path / "ws").resolve()
    assert ws.projects() == ["alice 爱丽丝"]
    assert ws.open("alice 爱丽丝").root == p.root
    with pytest.raises(PathError):
        ws.create("../evil", "ohwx", None)
    assert not (tmp_path / "evil").exists()
    with pytest.raises(PathError):
        ws.open(str(tmp_path))


# --- jobs ---------------------------------------------------------------------------------------

# A stand-in for `python -m facelora train`: runs until SIGINT, then says so and exits 0.
FAKE_JOB = (
    "import signal, sys, time\n"
    "def stop(*_):\n"
    "    print('interrupted, saving', flush=True); sys.exit(0)\n"
    "signal.signal(signal.SIGINT, stop)\n"
    "print('working', flush=True)\n"
    "time.sleep(60)\n"
)


@pytest.fixture
def fake_facelora(monkeypatch):
    monkeypatch.setattr(jobs, "facelora_command", lambda *args: [sys.executable, "-c", FAKE_JOB, *args])


def _wait_for(cond, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return False


def test_one_job_at_a_time_and_stop_is_sigint(tmp_path: Path, fake_facelora):
    p = init_project(tmp_path / "p", "ohwx")
    job = jobs.start(p, "train", ["train", str(p.root)])
    assert job.running and job.pid
    assert json.loads(locks.lock_path(p, "train").read_text())["pid"] == job.pid
    assert _wait_for(lambda: "working" in jobs.state(p, "train").output)
    with pytest.raises(locks.JobError, match="already running"):
        jobs.start(p, "train", ["train", str(p.root)])
    with pytest.raises(locks.JobError, match="cannot run beside"):
        jobs.start(p, "prepare", ["prepare"])
    done = jobs.stop(p, "train", wait_s=10)
    assert not done.running
    assert done.returncode == 0
    assert "interrupted, saving" in done.output
    assert not locks.lock_path(p, "train").exists()
    with pytest.raises(locks.JobError, match="No train job"):
        jobs.stop(p, "train")


TERMINAL_TRAIN = """
import sys, time
from facelora.locks import held
from facelora.project import Project
with held(Project.open(sys.argv[1]), "train", "facelora train"):
    try:
        print("working", flush=True)
        time.sleep(60)
    except KeyboardInterrupt:
        print("interrupted, saving", flush=True)
"""


def test_a_command_typed_at_a_terminal_holds_the_lock_the_gui_reads(tmp_path: Path, monkeypatch):
    p = init_project(tmp_path / "p", "ohwx")
    monkeypatch.delenv(locks.GUI_JOB_ENV, raising=False)
    terminal = subprocess.Popen([sys.executable, "-c", TERMINAL_TRAIN, str(p.root)], stdout=subprocess.PIPE, text=True)
    try:
        assert terminal.stdout.readline().strip() == "working"
        job = jobs.state(p, "train")
        assert job.running and job.pid == terminal.pid and job.command == ["facelora train"]
        with pytest.raises(locks.JobError, match="cannot run beside"):
            jobs.start(p, "prepare", ["prepare"])
        assert not jobs.stop(p, "train", wait_s=10).running  # Ctrl-C, sent to that process alone
        assert terminal.wait(5) == 0 and "interrupted, saving" in terminal.stdout.read()
        assert not locks.lock_path(p, "train").exists()
    finally:
        terminal.kill()
        terminal.wait()
    monkeypatch.setenv(locks.GUI_JOB_ENV, "train")  # a job the GUI started: the GUI holds its lock
    with locks.held(p, "train", "facelora train"):
        assert not locks.lock_path(p, "train").exists()


def test_a_lock_left_by_a_dead_process_is_cleared(tmp_path: Path, fake_facelora):
    p = init_project(tmp_path / "p", "ohwx")
    p.log_dir.mkdir(exist_ok=True)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    locks.lock_path(p, "train").write_text(json.dumps({"pid": dead.pid, "started": time.time()}))
    assert not jobs.state(p, "train").running
    job = jobs.start(p, "train", ["train"])
    assert job.running
    jobs.stop(p, "train", wait_s=10)


def test_a_job_started_by_another_gui_is_seen_running(tmp_path: Path):
    """After a GUI restart the process is no child of this one: the pid and its start time tell."""
    p = init_project(tmp_path / "p", "ohwx")
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        locks.lock_path(p, "train").write_text(json.dumps(
            {"pid": other.pid, "started": time.time(), "start_time": locks.proc_start_time(other.pid)}))
        assert jobs.state(p, "train").running
        locks.lock_path(p, "train").write_text(json.dumps(
            {"pid": other.pid, "started": time.time(), "start_time": "1"}))  # the pid was reused
        assert not jobs.state(p, "train").running
    finally:
        other.kill()
        other.wait()


def test_progress_eta_and_end_states():
    events = [{"event": "start", "time": 100.0, "total_steps": 10, "epochs": 2}]
    events += [{"event": "step", "step": s, "epoch": 1 + (s > 5), "loss": 1 / s, "avg_loss": 0.5, "time": 100.0 + 2 * s,
                "lr_unet": 1e-4, "lr_te": 5e-5} for s in range(1, 5)]
    events.append({"event": "saved", "path": "/p/models/x-000001.safetensors", "epoch": 1, "step": 4})
    prog = jobs.progress(events, running=True)
    assert (prog.status, prog.step, prog.total_steps, prog.epochs) == ("running", 4, 10, 2)
    assert prog.eta_s == pytest.approx(12.0)  # 2 s a step, 6 steps left
    assert prog.elapsed_s == pytest.approx(8.0)
    assert prog.saved == ["/p/models/x-000001.safetensors"] and len(prog.losses) == 4
    assert jobs.progress(events, running=False).status == "stopped"
    assert jobs.progress(events + [{"event": "end", "step": 10}], running=False).status == "finished"
    failed = jobs.progress(events + [{"event": "error", "message": "out of memory"}], running=False)
    assert (failed.status, failed.message) == ("failed", "out of memory")
    assert jobs.progress([], running=False).status == "not started"


def test_tail_keeps_the_last_state_of_a_progress_bar(tmp_path: Path):
    path = tmp_path / "out"
    path.write_bytes(b"line 1\nsteps 1%\rsteps 50%\rsteps 99%\nlast\n")
    assert jobs.tail(path, 2) == "steps 99%\nlast"


# --- parameters ---------------------------------------------------------------------------------


def test_every_parameter_has_a_widget_with_help_and_a_group():
    specs = field_specs()
    assert [s.name for s in specs] == list(TrainConfig.model_fields)
    assert all(s.help and s.group in ("basic", "advanced") for s in specs)
    by = {s.name: s for s in specs}
    assert by["optimizer_type"].widget == "dropdown" and "DAdaptAdam" in by["optimizer_type"].choices
    assert by["mixed_precision"].choices == ("no", "fp16", "bf16")
    assert by["cache_latents"].widget == "checkbox"
    assert by["max_train_epochs"].widget == "integer" and by["max_train_epochs"].optional
    assert by["optimizer_args"].widget == "list"
    assert by["pretrained_model_name_or_path"].widget == "combo"
    assert {s.name for s in field_specs("basic")} < {s.name for s in specs}


def test_widget_values_round_trip_to_the_same_config():
    cfg = TrainConfig(optimizer_args=["decouple=True", "betas=0.9,0.999", "note=two words"], min_snr_gamma=5.0,
                      max_train_epochs=None, sample_prompts=None)
    specs = field_specs()
    shown = {s.name: to_widget(s, getattr(cfg, s.name)) for s in specs}
    assert shown["optimizer_args"] == "decouple=True betas=0.9,0.999 'note=two words'"
    assert shown["sample_prompts"] == ""
    # a browser sends numbers as floats and empty boxes as "" or None
    shown["network_dim"] = 128.0
    shown["max_train_epochs"] = None
    back = TrainConfig.model_validate({s.name: from_widget(s, shown[s.name]) for s in specs})
    assert back == cfg


def test_plan_follows_the_tutorial():
    from facelora.gui.pages.params import make_project_plan

    plan = make_project_plan(None, 32, 10, 4800, 1, "ohwx", 1)
    assert (plan.repeats, plan.total_steps) == (15, 4800)
    assert plan.saved_files[-1] == "ohwx.safetensors" and len(plan.saved_files) == 10
    fixed = make_project_plan(7, 10.0, None, 100.0, 2.0, "ohwx", 1)  # no epochs: the folder's repeats
    assert (fixed.repeats, fixed.steps_per_epoch, fixed.total_steps) == (7, 35, 100)
    with pytest.raises(ValueError):
        make_project_plan(None, 0, 10, 100, 1, "x", 1)


# --- uploads and captions -----------------------------------------------------------------------


def test_uploads_keep_photos_and_refuse_the_rest(tmp_path: Path, astronaut):
    from facelora.gui.uploads import accept_uploads

    p = init_project(tmp_path / "p", "ohwx")
    good = tmp_path / "upload1"
    Image.fromarray(astronaut).save(good, format="PNG")
    fake = tmp_path / "upload2"
    fake.write_bytes(b"#!/bin/sh\nrm -rf /\n")
    text = tmp_path / "upload3"
    text.write_text("hello")
    result = accept_uploads(p, [(good, "../../astronaut.png"), (fake, "photo.jpg"), (text, "notes.txt"),
                                (good, "astronaut.png")])
    assert [k.name for k in result.kept] == ["astronaut.png", "astronaut-2.png"]
    assert all(k.parent == p.root / "photos" for k in result.kept)
    assert [name for name, _ in result.refused] == ["photo.jpg", "notes.txt"]
    assert "not an image" in result.refused[0][1] and "not a photo type" in result.refused[1][1]
    assert not (tmp_path / "astronaut.png").exists()


def test_captions_are_saved_beside_their_images_only(tmp_path: Path, astronaut):
    pytest.importorskip("gradio")
    from facelora.errors import FaceloraError
    from facelora.gui.pages.photos import caption_rows, save_captions

    p = init_project(tmp_path / "p", "ohwx", "woman", repeats=3)
    folder, _ = p.concept_dir()
    Image.fromarray(astronaut).resize((64, 64)).save(folder / "a.png")
    (folder / "a.txt").write_text("ohwx woman, smiling\n")
    Image.fromarray(astronaut).resize((64, 64)).save(folder / "b.png")
    assert caption_rows(p) == [["a.png", "ohwx woman, smiling"], ["b.png", "ohwx woman"]]
    assert save_captions(p, [["a.png", "ohwx woman,  in a  space suit"], ["b.png", "ohwx woman"]]) == 2
    assert (folder / "a.txt").read_text() == "ohwx woman, in a space suit\n"
    assert (folder / "b.txt").read_text() == "ohwx woman\n"
    for bad in ("../../facelora.toml", "/etc/passwd", "a.txt"):
        with pytest.raises(FaceloraError):
            save_captions(p, [[bad, "pwned"]])
    assert "pwned" not in p.config_path.read_text()


def test_install_copies_only_into_an_opened_folder(tmp_path: Path):
    pytest.importorskip("gradio")
    import torch

    from facelora.lora_file import read_metadata
    from facelora.gui.pages.evaluate import install, lora_names
    from facelora.lora_file import save_lora

    lora_dir = tmp_path / "webui Lora"
    lora_dir.mkdir()
    (tmp_path / "ws").mkdir()
    ws = Workspace.of(tmp_path / "ws", [lora_dir])
    p = ws.create("p", "ohwx", None)
    name = "lora_unet_down_blocks_0_attentions_0_proj_in"
    save_lora(p.models_dir / "ohwx.safetensors", {f"{name}.lora_down.weight": torch.zeros(2, 4),
                                                  f"{name}.lora_up.weight": torch.zeros(4, 2),
                                                  f"{name}.alpha": torch.tensor(1.0)}, {"ss_epoch": "1"})
    assert lora_names(p) == ["ohwx"]
    target = install(p, ws, "ohwx", str(lora_dir), 0.8)
    assert target == lora_dir.resolve() / "ohwx.safetensors"
    assert "0.8" in read_metadata(target)["modelspec.usage_hint"]
    with pytest.raises(PathError):
        install(p, ws, "ohwx", str(tmp_path), 0.8)
    with pytest.raises(Exception, match="Choose one of the project's LoRA files"):
        install(p, ws, "../facelora", str(lora_dir), 0.8)


def test_cli_gui_without_gradio_says_what_to_install(monkeypatch):
    import importlib.util

    from typer.testing import CliRunner

    from facelora.cli import app

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "gradio" else real(name, *a))
    result = CliRunner().invoke(app, ["gui"])
    assert result.exit_code == 2
    assert "pip install 'facelora[gui]'" in result.output.replace("\n", "")


def grid_form(tmp_path: Path):
    """A project in a workspace, and the Evaluate page's grid form with some fields changed."""
    from facelora.gui.fields import grid_specs

    (tmp_path / "ws").mkdir()
    ws = Workspace.of(tmp_path / "ws")
    p = ws.create("p", "ohwx", None)
    specs = grid_specs()
    values = {s.name: to_widget(s, s.default) for s in specs}
    values.update(weights="0.5,1.0", steps=4.0, size="64x64", z="seeds", z_values="1,2", allow_pickle=True,
                  base_model="tiny", prompt="ohwx, smiling")
    return p, ws, specs, values


def test_grid_form_becomes_the_grid_command_line(tmp_path: Path):
    """The Evaluate page shows `facelora grid` with the changed fields as options; the real
    command's parser must take them."""
    pytest.importorskip("gradio")
    import typer

    from facelora.cli import app
    from facelora.gui.pages.evaluate import grid_args

    p, ws, specs, values = grid_form(tmp_path)
    args = grid_args(p, ws, specs, [values[s.name] for s in specs])
    assert args[:2] == ["grid", str(p.root)]
    assert args[2:5] == ["--z", "seeds", "1,2"]
    assert {"--weights", "--steps", "--size", "--allow-pickle", "--base-model", "--prompt"} <= set(args)
    assert "--sampler" not in args and "--checkpoints" not in args  # defaults are left out
    grid_cmd = typer.main.get_command(app).commands["grid"]
    ctx = grid_cmd.make_context("grid", args[1:])
    assert ctx.params["steps"] == 4 and ctx.params["z"] == ("seeds", "1,2") and ctx.params["allow_pickle"]
    values["base_model"] = str(tmp_path / "elsewhere.safetensors")
    with pytest.raises(PathError):
        grid_args(p, ws, specs, [values[s.name] for s in specs])


def test_the_grid_form_gives_the_job_the_options_the_shown_command_gives(tmp_path: Path, monkeypatch):
    """The Evaluate page hands the grid job GridOptions as a file, and shows the command that
    does the same at a terminal: both must be the same options."""
    pytest.importorskip("gradio")
    from typer.testing import CliRunner

    from facelora.cli import app
    from facelora.cli import evaluate as grid_command
    from facelora.gui.pages.evaluate import grid_args, grid_options

    p, ws, specs, values = grid_form(tmp_path)
    form = [values[s.name] for s in specs]
    options = grid_options(ws, specs, form)
    assert options.steps == 4 and options.z == "seeds" and options.base_model == "tiny" and options.allow_pickle
    typed: list = []

    class Parsed(Exception):
        pass

    def parse_only(model, **given):
        typed.append(model(**given))
        raise Parsed  # stop before drawing

    monkeypatch.setattr(grid_command, "options_of", parse_only)
    result = CliRunner().invoke(app, grid_args(p, ws, specs, form))
    assert isinstance(result.exception, Parsed), result.output
    assert typed == [options]


def test_prepare_in_the_gui_holds_the_lock_training_checks(tmp_path: Path, fake_facelora):
    p = init_project(tmp_path / "p", "ohwx")
    with locks.running_here(p, "prepare", "prepare photos"):
        assert jobs.state(p, "prepare").running
        with pytest.raises(locks.JobError, match="prepare job is already running"):
            jobs.start(p, "train", ["train"])
        with pytest.raises(locks.JobError):
            with locks.running_here(p, "prepare", "prepare again"):
                pass
    assert not locks.lock_path(p, "prepare").exists()
    jobs.start(p, "train", ["train"])
    with pytest.raises(locks.JobError, match="cannot run beside"):
        with locks.running_here(p, "prepare", "prepare photos"):
            pass
    jobs.stop(p, "train", wait_s=10)


def test_loss_chart_is_thinned_but_keeps_the_last_step():
    pytest.importorskip("gradio")
    from facelora.gui.pages.train import loss_frame

    events = [{"event": "start", "time": 0, "total_steps": 4801}]
    events += [{"event": "step", "step": s, "loss": 1.0, "avg_loss": 0.5, "time": s} for s in range(1, 4802)]
    frame = loss_frame(jobs.progress(events, running=True), max_points=1000)
    steps = frame[frame.series == "loss"].step.tolist()
    assert len(steps) <= 1001 and steps[0] == 1 and steps[-1] == 4801
    assert str(frame.loss.dtype) == "float64" and len(loss_frame(jobs.progress([], False))) == 0


def test_launch_binds_localhost_unless_listen(tmp_path: Path, monkeypatch, capsys):
    gr = pytest.importorskip("gradio")
    from facelora.errors import FaceloraError
    from facelora.gui.app import launch

    calls = []
    monkeypatch.setattr(gr.Blocks, "launch", lambda self, **kw: calls.append(kw))
    (tmp_path / "ws").mkdir()
    p = init_project(tmp_path / "ws" / "alice", "ohwx")
    launch(p.root, None, [], 7860, listen=False, auth=None)
    assert calls[-1]["server_name"] == "127.0.0.1" and calls[-1]["auth"] is None
    assert calls[-1]["allowed_paths"] == [str(p.root)]  # the project alone, never its parent (issue 20)
    assert "warning" not in capsys.readouterr().err
    launch(None, tmp_path / "ws", [], 7861, listen=True, auth="me:secret")
    assert calls[-1]["server_name"] == "0.0.0.0" and calls[-1]["auth"] == ("me", "secret")
    assert "--listen serves this GUI to every machine" in capsys.readouterr().err
    with pytest.raises(FaceloraError, match="USER:PASSWORD"):
        launch(None, tmp_path / "ws", [], 7862, listen=True, auth="nopassword")
    with pytest.raises(FaceloraError, match="--listen without --auth.*--insecure-listen"):
        launch(p.root, None, [], 7863, listen=True, auth=None)
    launch(p.root, None, [], 7864, listen=True, auth=None, insecure_listen=True)
    assert calls[-1]["server_name"] == "0.0.0.0" and calls[-1]["auth"] is None
    assert "with no password" in capsys.readouterr().err
