"""Training that survives: resume after a clean stop and after kill -9 (between steps, between a
LoRA file and its state, in the middle of a state save), Ctrl-C and SIGTERM, a second Ctrl-C,
NaN steps, a full disk on the real save path, and two processes through accelerate. On the tiny
model (random weights: its LoRAs are test devices, not results) at 64 px, a few steps each.

On the CPU with a fixed seed, every interrupted-and-resumed run must end with the same step count,
the same LoRA files and the same final weights as the uninterrupted reference run."""

from __future__ import annotations

import errno
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from rich.console import Console

import kill_points
from conftest import tiny_training_project
from facelora.config import apply
from facelora.fileio import DiskFullError
from facelora.lora_file import read_lora
from facelora.project import Project
from facelora.train import resume as resume_mod
from facelora.train.loop import TrainingDiverged, train

# 2 images x 2 repeats, batch 1: 4 steps an epoch, 3 epochs, 12 steps; a warm-up and a cosine
# curve, so a resumed run that lost its scheduler's place would end elsewhere
BASE = dict(pretrained_model_name_or_path="tiny", resolution="64", max_train_epochs=3, network_dim=4,
            network_alpha=2, optimizer_type="AdamW", lr_scheduler="cosine", lr_warmup_steps=2, unet_lr=1e-3,
            text_encoder_lr=1e-4, save_precision="float", mixed_precision="no")
FILES = ["ohwx-000001.safetensors", "ohwx-000002.safetensors", "ohwx.safetensors"]
ENV = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
           TOKENIZERS_PARALLELISM="false", PYTHONUNBUFFERED="1", COLUMNS="200")


def make_project(root: Path, images: int = 2, repeats: int = 2, **updates) -> tuple[Project, object]:
    """A project whose facelora.toml holds the run's settings, so `facelora train PROJECT` in a
    subprocess and train() here run the same configuration."""
    project = tiny_training_project(root, images, repeats)
    settings = project.settings()
    settings.train = apply(settings.train, {**BASE, **updates})
    project.save_settings(settings)
    return project, project.train_config()


def run(project: Project, cfg, **kw):
    out = io.StringIO()
    result = train(project, cfg, console=Console(file=out, width=200), **kw)
    return result, out.getvalue()


def lora_files(project: Project) -> list[str]:
    return sorted(p.name for p in project.models_dir.glob("*.safetensors"))


def weights(path: Path) -> dict[str, torch.Tensor]:
    return read_lora(path)[0]


def assert_same_weights(a: Path, b: Path, atol: float = 1e-6, rtol: float = 0.0) -> None:
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    worst = max((wa[k] - wb[k]).abs().max().item() for k in wa)
    moved = max(wa[k].abs().max().item() for k in wa if "lora_up" in k)
    assert moved > 0  # the LoRA learnt something, so equality means something
    for k in wa:
        assert torch.allclose(wa[k], wb[k], atol=atol, rtol=rtol), f"{k} differs (largest difference {worst:g})"


def cli(project: Project, *args: str, kill_at: str | None = None) -> subprocess.Popen:
    """`facelora train PROJECT ARGS` in a subprocess; kill_at: through tests/kill_points.py, which
    kills it with SIGKILL at that point."""
    env = dict(ENV)
    command = ["-m", "facelora"]
    if kill_at:
        env[kill_points.ENV] = kill_at
        command = [str(Path(kill_points.__file__))]
    return subprocess.Popen([sys.executable, *command, "train", str(project.root), *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def events(project: Project) -> list[dict]:
    if not project.events_path.is_file():
        return []
    return [json.loads(line) for line in project.events_path.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted run every other run is compared with."""
    project, cfg = make_project(tmp_path_factory.mktemp("ref") / "p")
    result, _ = run(project, cfg)
    assert result.state.global_step == 12 and lora_files(project) == FILES
    return project, result


# --- the saved state ---------------------------------------------------------------------------


def test_state_is_json_and_safetensors_with_a_manifest_newest_two_kept(reference):
    project, result = reference
    folders = resume_mod.complete_states(project.state_dir)
    assert [f.name for f in folders] == ["step00000012-epoch000003", "step00000008-epoch000003"]
    newest = folders[0]
    manifest = json.loads((newest / "manifest.json").read_text())
    assert manifest["global_step"] == 12 and manifest["finished"] is True
    names = sorted(p.name for p in newest.iterdir())
    assert names == sorted(["manifest.json", *manifest["files"]])
    assert all(n.endswith((".json", ".safetensors")) for n in names)  # nothing unpickled on resume
    for n in ("network.safetensors", "optimizer.safetensors", "optimizer.json", "scheduler.json", "rng.safetensors",
              "rng.json", "loop.json", "config.json"):
        assert n in names
    assert json.loads((newest / "config.json").read_text())["network_dim"] == 4
    assert json.loads((newest / "loop.json").read_text())["global_step"] == 12
    # the fp32 weights in the state are the final file's (saved in float here)
    state_net = resume_mod.load_file(str(newest / "network.safetensors"))
    final = weights(project.models_dir / "ohwx.safetensors")
    assert all(torch.equal(state_net[k], final[k]) for k in final)
    assert not list(project.state_dir.glob(resume_mod.TEMP_PREFIX + "*"))


def test_a_damaged_state_is_passed_over_with_a_note(reference, tmp_path):
    project, _ = reference
    copy = tmp_path / "state"
    shutil.copytree(project.state_dir, copy)
    newest = resume_mod.complete_states(copy)[0]
    data = bytearray((newest / "optimizer.safetensors").read_bytes())
    data[-1] ^= 0xFF
    (newest / "optimizer.safetensors").write_bytes(bytes(data))
    (copy / ".incomplete-step00000016-epoch000004.x").mkdir()
    folder, notes = resume_mod.latest_state(copy)
    assert folder.name == "step00000008-epoch000003"
    assert any("does not match its hash" in n.text for n in notes)
    assert any("never finished" in n.text for n in notes)
    (folder / "manifest.json").unlink()
    folder, notes = resume_mod.latest_state(copy)
    assert folder is None
    with pytest.raises(resume_mod.ResumeError, match="Nothing to resume"):
        raise resume_mod.no_state_error(copy, notes)


def test_optimizer_state_round_trips_without_pickle():
    p = torch.nn.Parameter(torch.randn(3, 2))
    opt = torch.optim.AdamW([{"params": [p], "lr": 1e-3}], betas=(0.8, 0.9))
    p.grad = torch.ones_like(p)
    opt.step()
    tensors: dict = {}
    text = json.dumps(resume_mod.to_json(opt.state_dict(), tensors, "optimizer"))
    back = resume_mod.from_json(json.loads(text), tensors)
    fresh = torch.optim.AdamW([{"params": [torch.nn.Parameter(p.detach().clone())], "lr": 1e-3}])
    fresh.load_state_dict(back)
    assert fresh.param_groups[0]["betas"] == (0.8, 0.9)
    assert torch.equal(fresh.state_dict()["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"])


@pytest.mark.parametrize("name, args", [("AdamW", []), ("Lion", []), ("SGDNesterov", []), ("Prodigy", []),
                                        ("DAdaptAdam", ["decouple=True"]), ("Adafactor", ["relative_step=True"])])
def test_every_optimizer_and_scheduler_state_round_trips_as_json_and_safetensors(name, args):
    from facelora.config import TrainConfig
    from facelora.train.optim import make_optimizer, make_scheduler

    cfg = TrainConfig(optimizer_type=name, optimizer_args=args, learning_rate=1.0 if name in ("Prodigy", "DAdaptAdam") else 1e-3,
                      unet_lr=None, text_encoder_lr=None, lr_scheduler="adafactor" if name == "Adafactor" else "cosine")

    def make():
        torch.manual_seed(0)
        params = [torch.nn.Parameter(torch.randn(4, 3)), torch.nn.Parameter(torch.randn(3))]
        optim = make_optimizer(cfg, params, [])
        return params, optim.optimizer, make_scheduler(cfg, optim, 10)

    def step(params, opt, sched):
        for p in params:
            p.grad = torch.sin(p.detach() * 3)
        opt.step()
        sched.step()

    a, b = make(), make()
    step(*a)
    tensors: dict = {}
    opt_json = json.dumps(resume_mod.to_json(a[1].state_dict(), tensors, "optimizer"))
    sched_json = json.dumps(resume_mod.to_json(a[2].state_dict(), tensors, "scheduler"))
    for p, q in zip(a[0], b[0]):
        q.data.copy_(p.data)
    b[1].load_state_dict(resume_mod.from_json(json.loads(opt_json), tensors))
    b[2].load_state_dict(resume_mod.from_json(json.loads(sched_json), tensors))
    step(*a)
    step(*b)
    assert all(torch.equal(p, q) for p, q in zip(a[0], b[0]))
    assert a[2].get_last_lr() == b[2].get_last_lr()


# --- a clean stop: Ctrl-C or SIGTERM, then --resume -------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_saves_the_lora_and_state_and_resume_ends_as_unbroken(reference, tmp_path, monkeypatch, sig):
    from facelora.train import progress

    ref_project, ref = reference
    project, cfg = make_project(tmp_path / "p")
    real_step = progress.Reporter.step

    def step(self, n, *a, **kw):
        real_step(self, n, *a, **kw)
        if n == 6:
            os.kill(os.getpid(), sig)  # the real handler: the loop stops after this step

    monkeypatch.setattr(progress.Reporter, "step", step)
    result, out = run(project, cfg)
    monkeypatch.undo()
    assert result.interrupted and result.state.global_step == 6
    assert lora_files(project) == ["ohwx-000001.safetensors", "ohwx-interrupted-step00000006.safetensors"]
    assert resume_mod.latest_state(project.state_dir)[0].name == "step00000006-epoch000002"
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the handler is gone after the run

    result, out = run(project, cfg, resume=True)
    assert not result.interrupted and result.state.global_step == 12 and result.state.epoch == 3
    assert "Resuming at step 6" in out
    assert lora_files(project) == sorted(FILES + ["ohwx-interrupted-step00000006.safetensors"])
    for name in FILES:
        assert_same_weights(project.models_dir / name, ref_project.models_dir / name)
    assert result.losses == ref.losses[6:]  # the same data, noise and timesteps as the unbroken run


def test_a_second_ctrl_c_stops_at_once_without_saving(tmp_path, monkeypatch):
    from facelora.train import progress

    project, cfg = make_project(tmp_path / "p")
    real_step = progress.Reporter.step

    def step(self, n, *a, **kw):
        real_step(self, n, *a, **kw)
        if n == 2:
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(progress.Reporter, "step", step)
    with pytest.raises(KeyboardInterrupt):
        run(project, cfg)
    assert lora_files(project) == []
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_resume_of_a_finished_run_does_nothing(reference):
    project, _ = reference
    before = {p.name: p.stat().st_mtime_ns for p in project.models_dir.glob("*.safetensors")}
    result, out = run(project, project.train_config(), resume=True)
    assert result.state.global_step == 12 and "already finished" in out
    assert {p.name: p.stat().st_mtime_ns for p in project.models_dir.glob("*.safetensors")} == before


def test_resume_without_a_state_says_what_to_do(tmp_path):
    project, cfg = make_project(tmp_path / "p")
    with pytest.raises(resume_mod.ResumeError, match="Train without --resume"):
        run(project, cfg, resume=True)


# --- kill -9 at three moments, then --resume ----------------------------------------------------


@pytest.mark.parametrize("kill_at, left", [
    ("step:6", ["ohwx-000001.safetensors"]),  # between saves, in epoch 2
    ("lora-saved:8", ["ohwx-000001.safetensors", "ohwx-000002.safetensors"]),  # a file, not yet its state
    ("state-files:8", ["ohwx-000001.safetensors", "ohwx-000002.safetensors"]),  # in the middle of a state save
])
def test_kill_9_then_resume_ends_as_unbroken(reference, tmp_path, kill_at, left):
    ref_project, ref = reference
    project, cfg = make_project(tmp_path / "p")
    proc = cli(project, kill_at=kill_at)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL, out
    assert lora_files(project) == left
    newest, notes = resume_mod.latest_state(project.state_dir)
    assert newest.name == "step00000004-epoch000002"  # the state of epoch 1: the last complete one
    if kill_at.startswith("state-files"):
        assert list(project.state_dir.glob(resume_mod.TEMP_PREFIX + "*")) and any("never finished" in n.text for n in notes)

    result, out = run(project, cfg, resume=True)
    assert result.state.global_step == 12 and result.state.epoch == 3
    assert lora_files(project) == FILES
    assert not list(project.state_dir.glob(resume_mod.TEMP_PREFIX + "*"))
    for name in FILES:
        assert_same_weights(project.models_dir / name, ref_project.models_dir / name)
    assert result.losses == ref.losses[4:]


# --- Ctrl-C to the command, then facelora train --resume --------------------------------------


def test_ctrl_c_to_the_command_then_resume_with_the_flag(tmp_path):
    from typer.testing import CliRunner

    from facelora.cli import app

    project, cfg = make_project(tmp_path / "p", max_train_epochs=10)  # 40 steps: time to press Ctrl-C
    proc = cli(project)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if any(e["event"] == "step" for e in events(project)):
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, out
    end = events(project)[-1]
    assert end["event"] == "end" and end["interrupted"] is True
    stopped = end["step"]
    assert 1 <= stopped < 40
    interrupted = f"ohwx-interrupted-step{stopped:08d}.safetensors"
    assert interrupted in lora_files(project)
    assert resume_mod.latest_state(project.state_dir)[0].name.startswith(f"step{stopped:08d}-")

    res = CliRunner().invoke(app, ["train", str(project.root), "--resume", "--max_train_epochs", "11"])
    assert res.exit_code == 0, res.output
    assert f"Resuming at step {stopped}" in res.output and "max_train_epochs 10 -> 11" in res.output
    assert events(project)[-1]["step"] == 44
    assert "ohwx.safetensors" in lora_files(project) and interrupted in lora_files(project)


# --- NaN / inf ----------------------------------------------------------------------------------


def nan_at(monkeypatch, steps: set[int]) -> None:
    """Make the loss of the given (1-based) steps NaN, in-process: a test-only stand-in for an fp16
    overflow or a broken image."""
    import facelora.train.step as step

    real = step.batch_loss

    def batch_loss(model, batch, state, *a, **kw):
        loss = real(model, batch, state, *a, **kw)
        return loss * float("nan") if state.global_step + 1 in steps else loss

    monkeypatch.setattr(step, "batch_loss", batch_loss)


def test_a_nan_step_is_skipped_and_counted(tmp_path, monkeypatch):
    project, cfg = make_project(tmp_path / "p", max_train_epochs=1)
    nan_at(monkeypatch, {2, 3})
    result, out = run(project, cfg)
    assert result.state.global_step == 4 and result.state.nonfinite_total == 2
    assert [e["step"] for e in events(project) if e["event"] == "skipped"] == [2, 3]
    assert all(torch.isfinite(t).all() for t in weights(project.models_dir / "ohwx.safetensors").values())


def test_nan_steps_in_a_row_stop_training_and_keep_the_last_good_state(tmp_path, monkeypatch):
    project, cfg = make_project(tmp_path / "p", max_nonfinite_steps=3)
    nan_at(monkeypatch, set(range(6, 13)))
    with pytest.raises(TrainingDiverged) as e:
        run(project, cfg)
    msg = str(e.value)
    assert "3 steps in a row" in msg and "learning rate" in msg and "fp16" in msg and "image" in msg
    assert lora_files(project) == ["ohwx-000001.safetensors"]
    newest, _ = resume_mod.latest_state(project.state_dir)
    assert newest.name == "step00000004-epoch000002"
    net = resume_mod.load_file(str(newest / "network.safetensors"))
    assert all(torch.isfinite(t).all() for t in net.values())


def test_nan_latents_name_the_image(tmp_path, monkeypatch):
    import facelora.train.data as data

    project, cfg = make_project(tmp_path / "p", images=1)
    monkeypatch.setattr(data, "encode", lambda vae, pixels, gen=None: torch.full((1, 4, 8, 8), float("nan")))
    with pytest.raises(data.TrainDataError, match=r"0\.png"):
        run(project, cfg)


# --- a full disk on the real save path ----------------------------------------------------------


@pytest.mark.parametrize("where", ["models", "state"])
def test_disk_full_while_saving_is_clear_and_keeps_the_earlier_files(reference, tmp_path, monkeypatch, where):
    """os.fsync fails with ENOSPC for files under `where` from step 7 on: the epoch-2 LoRA file
    (models) or its state (state) cannot be written; the real write path must run and clean up."""
    from facelora.train import progress

    ref_project, _ = reference
    project, cfg = make_project(tmp_path / "p")
    full = {"on": False}
    real_fsync, real_step = os.fsync, progress.Reporter.step
    target = str(project.models_dir if where == "models" else project.state_dir)

    def fsync(fd):
        if full["on"] and os.readlink(f"/proc/self/fd/{fd}").startswith(target):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_fsync(fd)

    def step(self, n, *a, **kw):
        real_step(self, n, *a, **kw)
        full["on"] = n >= 7

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(progress.Reporter, "step", step)
    with pytest.raises(DiskFullError, match="disk is full"):
        run(project, cfg)
    monkeypatch.undo()
    expected = ["ohwx-000001.safetensors"] + (["ohwx-000002.safetensors"] if where == "state" else [])
    assert lora_files(project) == expected
    assert not [p for p in project.models_dir.iterdir() if p.name.endswith(".tmp")]
    assert weights(project.models_dir / "ohwx-000001.safetensors")  # intact and readable
    assert not list(project.state_dir.glob(resume_mod.TEMP_PREFIX + "*"))
    assert resume_mod.latest_state(project.state_dir)[0].name == "step00000004-epoch000002"
    assert events(project)[-1]["event"] == "error"

    result, _ = run(project, cfg, resume=True)  # space freed: go on
    assert result.state.global_step == 12 and lora_files(project) == FILES
    assert_same_weights(project.models_dir / "ohwx.safetensors", ref_project.models_dir / "ohwx.safetensors")


# --- two processes through accelerate ----------------------------------------------------------


def test_two_processes_match_one_process_with_the_same_global_batch(tmp_path):
    """2 processes x batch 1 (gloo on the CPU, launched by `facelora train --num_processes 2`)
    against 1 process x batch 2: the same samples, noise and timesteps make the same steps."""
    # SGD: Adam divides by the gradient's size, which magnifies the last-bit differences of a sum
    # done in another order (gloo's all-reduce) on the near-zero gradients of the first steps
    sgd = dict(optimizer_type="SGDNesterov", unet_lr=0.5, text_encoder_lr=0.5, lr_warmup_steps=0)
    one, cfg1 = make_project(tmp_path / "one", images=1, repeats=4, max_train_epochs=2, train_batch_size=2, **sgd)
    two, _ = make_project(tmp_path / "two", images=1, repeats=4, max_train_epochs=2, train_batch_size=1, **sgd)
    proc = cli(two, "--num_processes", "2")
    result1, _ = run(one, cfg1)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    assert result1.state.global_step == 4
    ev = events(two)
    starts = [e for e in ev if e["event"] == "start"]
    assert len(starts) == 1 and starts[0]["total_steps"] == 4 and "x 2" in starts[0]["device"]  # main process only
    assert ev[-1]["event"] == "end" and ev[-1]["step"] == 4
    assert lora_files(two) == lora_files(one) == ["ohwx-000001.safetensors", "ohwx.safetensors"]
    w1, w2 = weights(one.models_dir / "ohwx.safetensors"), weights(two.models_dir / "ohwx.safetensors")
    ups = [k for k in w1 if "lora_up" in k]  # zero at the start: all of it was learnt
    size = max(w1[k].abs().max().item() for k in ups)
    worst = max((w1[k] - w2[k]).abs().max().item() for k in w1)
    assert size > 1e-3 and worst < 1e-3 * size, (size, worst)
