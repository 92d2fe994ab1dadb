"""The EMA of the LoRA's weights (ema_decay) is part of the training state: a run stopped halfway
and resumed writes the same averaged file as an unbroken run, and a resume whose ema_decay
differs from the state's is refused."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import torch
from rich.console import Console
from safetensors.torch import load_file

from conftest import tiny_training_project
from facelora import config as c
from facelora.train import progress
from facelora.train.loop import train
from facelora.train.resume import ResumeError, latest_state


def ema_project(root: Path):
    project = tiny_training_project(root, images=2, repeats=2)
    cfg = c.apply(project.train_config(), dict(
        pretrained_model_name_or_path="tiny", resolution="64", max_train_epochs=2, network_dim=4, network_alpha=2,
        optimizer_type="AdamW", lr_scheduler="constant", unet_lr=1e-2, text_encoder_lr=1e-3, ema_decay=0.7,
        save_precision="float", mixed_precision="no", output_name="ohwx"))
    return project, cfg


def run(project, cfg, resume=False):
    return train(project, cfg, resume=resume, console=Console(file=io.StringIO(), width=200))


def interrupted_after(step_count: int, project, cfg, monkeypatch):
    """The run stopped by Ctrl-C after `step_count` steps (it saves the LoRA, its EMA file and the state)."""
    real_step = progress.Reporter.step

    def step(self, n, *a, **kw):
        real_step(self, n, *a, **kw)
        if n == step_count:
            raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(progress.Reporter, "step", step)
        return run(project, cfg)


def test_a_resumed_runs_ema_file_is_the_unbroken_runs(tmp_path, monkeypatch):
    unbroken_p, cfg = ema_project(tmp_path / "unbroken")
    unbroken = run(unbroken_p, cfg)
    assert unbroken.state.global_step == 8

    project, cfg = ema_project(tmp_path / "p")
    first = interrupted_after(4, project, cfg, monkeypatch)  # halfway
    assert first.interrupted and first.state.global_step == 4
    folder, _ = latest_state(project.state_dir)
    saved = load_file(str(folder / "ema.safetensors"))
    assert saved and all(v.dtype == torch.float32 for v in saved.values())
    assert '"updates": 4' in (folder / "ema.json").read_text() and '"decay": 0.7' in (folder / "ema.json").read_text()

    second = run(project, cfg, resume=True)
    assert second.state.global_step == 8
    a = load_file(str(Path(cfg.output_dir) / "ohwx-ema.safetensors"))
    b = load_file(str(Path(unbroken_p.root / "models" / "ohwx-ema.safetensors")))
    raw = load_file(str(Path(cfg.output_dir) / "ohwx.safetensors"))
    assert set(a) == set(b)
    assert all(torch.allclose(a[k], b[k], rtol=0, atol=1e-6) for k in a), \
        max(float((a[k] - b[k]).abs().max()) for k in a)
    assert any(not torch.equal(a[k], raw[k]) for k in a if k.endswith(".weight"))  # an average, not the weights


def test_resume_refuses_a_state_whose_ema_decay_differs(tmp_path, monkeypatch):
    project, cfg = ema_project(tmp_path / "p")
    interrupted_after(1, project, cfg, monkeypatch)
    with pytest.raises(ResumeError, match=r"ema_decay 0\.7, this run asks for 0\.9.*--ema_decay 0\.7"):
        run(project, cfg.model_copy(update={"ema_decay": 0.9}), resume=True)
    with pytest.raises(ResumeError, match=r"ema_decay 0\.7, this run asks for None"):
        run(project, cfg.model_copy(update={"ema_decay": None}), resume=True)
