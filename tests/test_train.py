"""The training loop end to end on the tiny model (random weights: its LoRAs are test devices,
not results), at 64 px with a few images cut from the astronaut photo and a handful of steps."""

from __future__ import annotations

import io
import json
import math
import statistics
from pathlib import Path

import pytest
import torch
from PIL import Image
from rich.console import Console
from typer.testing import CliRunner

from conftest import astronaut_rgb, tiny_training_project
from facelora.config import apply
from facelora.events import read_events
from facelora.gui.jobs import progress
from facelora.lora_file import read_lora, save_lora
from facelora.project import Project
from facelora.train.loop import TrainingDiverged, train



def make_project(root: Path, images: int = 2, repeats: int = 2, **updates) -> tuple[Project, object]:
    project = tiny_training_project(root, images, repeats)
    base = dict(pretrained_model_name_or_path="tiny", resolution="64", max_train_epochs=1, network_dim=4,
                network_alpha=2, optimizer_type="AdamW", lr_scheduler="constant", unet_lr=1e-3, text_encoder_lr=1e-4)
    return project, apply(project.train_config(), {**base, **updates})


def run(project: Project, cfg, **kw):
    out = io.StringIO()
    result = train(project, cfg, console=Console(file=out, width=200), **kw)
    return result, out.getvalue()


def events(project: Project) -> list[dict]:
    return [json.loads(line) for line in project.events_path.read_text().splitlines()]


# --- files, terminal, logs ------------------------------------------------------------------


def test_files_lines_events_and_tensorboard(tmp_path):
    project, cfg = make_project(tmp_path / "p", max_train_epochs=3, save_every_n_steps=5)
    result, out = run(project, cfg)
    models = project.models_dir
    names = sorted(p.name for p in models.glob("*.safetensors"))
    assert names == ["ohwx-000001.safetensors", "ohwx-000002.safetensors", "ohwx-step00000005.safetensors",
                     "ohwx-step00000010.safetensors", "ohwx.safetensors"]
    assert result.final == models / "ohwx.safetensors" and result.state.global_step == 12
    for name in names:
        assert f"model saved: {models / name}" in out
    assert "total steps" in out and "network_dim" in out  # the plan and the parameters were shown

    ev = events(project)
    kinds = [e["event"] for e in ev]
    assert kinds[0] == "start" and kinds[-1] == "end" and kinds.count("step") == 12 and kinds.count("epoch") == 3
    start = ev[0]
    assert (start["total_steps"], start["epochs"], start["steps_per_epoch"], start["images"], start["repeats"]) == (12, 3, 4, 2, 2)
    step = next(e for e in ev if e["event"] == "step")
    assert set(step) >= {"step", "epoch", "loss", "avg_loss", "lr_unet", "lr_te", "time"}
    assert step["lr_unet"] == 1e-3 and step["lr_te"] == 1e-4
    assert [e["path"] for e in ev if e["event"] == "saved"] == [str(p) for p in result.files]
    prog = progress(read_events(project.events_path), running=False)  # the GUI reads what was written
    assert (prog.status, prog.step, prog.total_steps, prog.epoch, prog.epochs) == ("finished", 12, 12, 3, 3)
    assert prog.saved == [str(p) for p in result.files] and len(prog.losses) == 12
    assert prog.loss is not None and prog.lr_unet == 1e-3 and prog.lr_te == 1e-4 and prog.elapsed_s >= 0

    tb = list(project.log_dir.rglob("events.out.tfevents.*"))
    assert len(tb) == 1
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(tb[0].parent))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    assert tags >= {"loss/current", "loss/average", "loss/epoch", "lr/unet", "lr/textencoder"}
    assert len(acc.Scalars("loss/current")) == 12

    tensors, meta = read_lora(models / "ohwx.safetensors")
    assert all(t.dtype == torch.float16 for t in tensors.values())  # save_precision fp16
    assert (meta["ss_epoch"], meta["ss_steps"], meta["ss_output_name"], meta["ss_network_dim"]) == ("3", "12", "ohwx", "4")
    assert meta["ss_num_train_images"] == "4" and meta["modelspec.trigger_phrase"] == "ohwx"
    assert json.loads(meta["ss_dataset_dirs"]) == {"2_ohwx woman": {"n_repeats": 2, "img_count": 2}}
    assert json.loads(meta["ss_tag_frequency"])["2_ohwx woman"]["smiling"] == 2
    assert "torch.optim.adamw.AdamW" in meta["ss_optimizer"] and meta["ss_lr_scheduler"] == "constant"
    assert read_lora(models / "ohwx-000001.safetensors")[1]["ss_epoch"] == "1"
    assert not torch.equal(tensors[next(k for k in tensors if k.endswith("lora_up.weight"))],
                           torch.zeros_like(tensors[next(k for k in tensors if k.endswith("lora_up.weight"))]))


def test_save_last_n_epochs_keeps_the_newest(tmp_path):
    project, cfg = make_project(tmp_path / "p", images=1, repeats=1, max_train_epochs=5, save_last_n_epochs=2,
                                save_precision="float")
    result, out = run(project, cfg)
    assert sorted(p.name for p in project.models_dir.glob("*.safetensors")) == [
        "ohwx-000003.safetensors", "ohwx-000004.safetensors", "ohwx.safetensors"]
    assert [p.name for p in result.files] == ["ohwx-000003.safetensors", "ohwx-000004.safetensors", "ohwx.safetensors"]
    assert "removed ohwx-000001.safetensors" in out
    assert read_lora(result.final)[0][next(iter(read_lora(result.final)[0]))].dtype == torch.float32


# --- learning ------------------------------------------------------------------------------


def test_memorises_one_image(tmp_path):
    """40 steps on one image at a high rate: the loss of the last steps is clearly below the
    first steps' (random timesteps make single losses noisy, so means of 10 are compared)."""
    project, cfg = make_project(tmp_path / "p", images=1, repeats=40, network_dim=8, network_alpha=8,
                                unet_lr=1e-2, text_encoder_lr=1e-3, save_every_n_epochs=None, seed=3)
    result, _ = run(project, cfg)
    first, last = statistics.mean(result.losses[:10]), statistics.mean(result.losses[-10:])
    assert len(result.losses) == 40
    assert last < 0.85 * first, (first, last)


def test_same_seed_same_losses_other_seed_other_losses(tmp_path):
    losses = []
    for i, seed in enumerate((11, 11, 12)):
        project, cfg = make_project(tmp_path / f"p{i}", images=2, repeats=2, seed=seed, shuffle_caption=True, keep_tokens=1)
        losses.append(run(project, cfg)[0].losses)
    assert losses[0] == losses[1]
    assert losses[0] != losses[2]


# --- optimizers through the loop --------------------------------------------------------------


@pytest.mark.parametrize("updates", [
    dict(optimizer_type="AdamW8bit"),
    dict(optimizer_type="Lion", lr_scheduler="cosine_with_restarts", lr_scheduler_num_cycles=2),
    dict(optimizer_type="DAdaptAdam", optimizer_args=["decouple=True", "weight_decay=0.01"], learning_rate=1.0,
         unet_lr=1.0, text_encoder_lr=1.0),
    dict(optimizer_type="Prodigy", learning_rate=1.0, unet_lr=1.0, text_encoder_lr=1.0, lr_scheduler="cosine"),
    dict(optimizer_type="Adafactor", optimizer_args=["relative_step=True", "scale_parameter=True", "warmup_init=True"],
         lr_scheduler="adafactor", learning_rate=1.0, unet_lr=1.0, text_encoder_lr=1.0),
    dict(optimizer_type="SGDNesterov", lr_scheduler="polynomial", lr_scheduler_power=2.0, lr_warmup_steps=0.5),
], ids=lambda u: u["optimizer_type"])
def test_each_optimizer_trains_a_few_steps(tmp_path, updates):
    project, cfg = make_project(tmp_path / "p", images=1, repeats=3, **updates)
    result, out = run(project, cfg)
    assert len(result.losses) == 3 and all(math.isfinite(v) for v in result.losses)
    steps = [e for e in events(project) if e["event"] == "step"]
    assert all(e["lr_unet"] is not None for e in steps)
    if updates["optimizer_type"] == "AdamW8bit":
        assert "needs the bitsandbytes package" not in out  # no fallback: bitsandbytes runs on the CPU
        assert read_lora(result.final)[1]["ss_optimizer"] == "bitsandbytes.optim.adamw.AdamW8bit"
    if updates["optimizer_type"] in ("DAdaptAdam", "Prodigy"):
        assert all("lr_dlr" in e for e in steps)
    if updates["optimizer_type"] == "Adafactor":
        assert steps[-1]["lr_unet"] < 1e-3  # its own relative step, not the 1.0 given


# --- options that change the step --------------------------------------------------------------


def test_clip_skip_min_snr_noise_offset_change_the_losses(tmp_path):
    base_project, cfg = make_project(tmp_path / "base", images=1, repeats=8, seed=5)
    base = run(base_project, cfg)[0].losses
    for i, updates in enumerate([dict(clip_skip=2), dict(noise_offset=0.1), dict(min_snr_gamma=5.0)]):
        project, cfg = make_project(tmp_path / f"p{i}", images=1, repeats=8, seed=5, **updates)
        losses = run(project, cfg)[0].losses
        assert losses != base, updates
        if "min_snr_gamma" in updates:
            # the same noise and timesteps: the first step that differs is one whose timestep has an
            # SNR above 5, which min-SNR weights by 5/SNR < 1
            first = next(k for k, (a, b) in enumerate(zip(losses, base)) if a != b)
            assert losses[first] < base[first]


def test_gradient_accumulation_and_checkpointing(tmp_path):
    project, cfg = make_project(tmp_path / "acc", images=2, repeats=3, gradient_accumulation_steps=2, train_batch_size=1)
    result, _ = run(project, cfg)
    assert result.state.global_step == 3  # 6 batches / 2 per step
    assert read_lora(result.final)[1]["ss_gradient_accumulation_steps"] == "2"

    plain_p, plain_cfg = make_project(tmp_path / "plain", images=1, repeats=3, seed=9)
    ckpt_p, ckpt_cfg = make_project(tmp_path / "ckpt", images=1, repeats=3, seed=9, gradient_checkpointing=True)
    plain, ckpt = run(plain_p, plain_cfg)[0], run(ckpt_p, ckpt_cfg)[0]
    assert ckpt.losses == pytest.approx(plain.losses, rel=1e-4)  # recomputation, same maths
    a, b = read_lora(plain.final)[0], read_lora(ckpt.final)[0]
    assert all(torch.allclose(a[k].float(), b[k].float(), atol=1e-3) for k in a)  # the LoRA got its gradients


def test_bf16_autocast_on_the_cpu(tmp_path):
    project, cfg = make_project(tmp_path / "p", images=1, repeats=2, mixed_precision="bf16")
    result, _ = run(project, cfg)
    assert all(math.isfinite(v) for v in result.losses)
    assert events(project)[0]["mixed_precision"] == "bf16"


def test_latent_cache_on_disk_skips_encoding_the_second_time(tmp_path):
    project, cfg = make_project(tmp_path / "p", images=2, repeats=1, cache_latents_to_disk=True)
    first = run(project, cfg)[0]
    assert first.latents_encoded == 2 and len(list((project.root / "cache" / "latents").glob("*.safetensors"))) == 2
    second = run(project, cfg)[0]
    assert second.latents_encoded == 0
    assert second.losses == first.losses
    # not cached: the images are loaded (by a worker process) and encoded every step
    nocache = run(project, cfg.model_copy(update={"cache_latents": False, "cache_latents_to_disk": False,
                                                  "max_data_loader_n_workers": 1}))[0]
    assert nocache.latents_encoded == 0 and len(nocache.losses) == 2


def test_bucketed_run_matches_its_plan(tmp_path):
    project, cfg = make_project(tmp_path / "p", images=2, repeats=2, enable_bucket=True, resolution="128",
                                min_bucket_reso=64, max_bucket_reso=256, bucket_reso_steps=64, train_batch_size=2)
    folder, _ = project.concept_dir()
    Image.fromarray(astronaut_rgb()[:300, :100]).save(folder / "tall.png")  # a third bucket image
    result, _ = run(project, cfg)
    meta = read_lora(result.final)[1]
    buckets = json.loads(meta["ss_bucket_info"])["buckets"]
    assert len(buckets) == 2
    assert result.state.global_step == events(project)[0]["total_steps"] == 2 + 1  # ceil(4/2) + ceil(2/2)


# --- starting from a file, samples, failures -------------------------------------------------


def test_network_weights_start_from_a_saved_lora(tmp_path):
    project, cfg = make_project(tmp_path / "p", images=1, repeats=2)
    first = run(project, cfg)[0]
    trained, _ = read_lora(first.final)
    second_p, second_cfg = make_project(tmp_path / "q", images=1, repeats=1, network_weights=str(first.final),
                                        unet_lr=1e-12, text_encoder_lr=1e-12)
    second, out = run(second_p, second_cfg)
    again, _ = read_lora(second.final)
    assert all(torch.allclose(trained[k].float(), again[k].float(), atol=1e-3) for k in trained)
    assert "Starting from the LoRA" in out
    up = next(k for k in trained if k.endswith("lora_up.weight"))
    assert trained[up].abs().sum() > 0  # the start was not the zero init


def test_samples_every_epoch_with_kohya_names(tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("ohwx woman, portrait --n blurry --w 64 --h 64 --d 7 --s 2 --l 5\nohwx woman --w 64 --h 64 --s 2\n")
    project, cfg = make_project(tmp_path / "p", images=1, repeats=1, max_train_epochs=2, sample_every_n_epochs=1,
                                sample_prompts=str(prompts))
    result, out = run(project, cfg)
    sample_dir = project.models_dir / "sample"
    names = sorted(p.name for p in sample_dir.glob("*.png"))
    assert len(names) == 4 and "ohwx_e000001_00_7.png" in names and "ohwx_e000002_00_7.png" in names
    assert any(n.startswith("ohwx_e000002_01_") for n in names)
    with Image.open(sample_dir / "ohwx_e000001_00_7.png") as im:
        assert im.size == (64, 64)
    assert [e for e in events(project) if e["event"] == "sample"][0]["path"][0].endswith("ohwx_e000001_00_7.png")
    # live likeness: each epoch's samples scored; the tiny model's noise holds no face, and says so
    live = [e for e in events(project) if e["event"] == "likeness"]
    assert [(e["epoch"], e["images"], e["detection_rate"]) for e in live] == [(1, 2, 0.0), (2, 2, 0.0)]
    assert out.count("likeness: no faces in the samples") == 2 and "epoch 2: likeness: no faces" in out
    assert [e.epoch for e in progress(read_events(project.events_path), False).likeness] == [1, 2]
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(next(project.log_dir.rglob("events.out.tfevents.*")).parent))
    acc.Reload()
    assert [(s.step, s.value) for s in acc.Scalars("likeness/detection_rate")] == [(1, 0.0), (2, 0.0)]


def test_nan_steps_are_skipped_then_training_stops(tmp_path):
    project, cfg = make_project(tmp_path / "p", images=1, repeats=1)
    good = run(project, cfg)[0]
    tensors, meta = read_lora(good.final)
    up = next(k for k in tensors if k.endswith("lora_up.weight"))
    tensors[up] = torch.full_like(tensors[up], float("nan"))
    broken = tmp_path / "broken.safetensors"
    save_lora(broken, tensors, meta)
    bad_p, bad_cfg = make_project(tmp_path / "bad", images=1, repeats=10, network_weights=str(broken), max_nonfinite_steps=3)
    with pytest.raises(TrainingDiverged, match="3 steps in a row"):
        run(bad_p, bad_cfg)
    ev = events(bad_p)
    assert [e["event"] for e in ev].count("skipped") == 3 and ev[-1]["event"] == "error"
    assert not list(bad_p.models_dir.glob("*.safetensors"))


def test_ctrl_c_saves_an_interrupted_file(tmp_path, monkeypatch):
    from facelora.train import progress

    project, cfg = make_project(tmp_path / "p", images=1, repeats=5)
    real_step = progress.Reporter.step

    def step(self, step, *a, **kw):
        real_step(self, step, *a, **kw)
        if step == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(progress.Reporter, "step", step)
    result, out = run(project, cfg)
    assert result.interrupted and result.state.global_step == 2
    assert [p.name for p in result.files] == ["ohwx-interrupted-step00000002.safetensors"]
    assert events(project)[-1]["interrupted"] is True
    end = events(project)[-1]  # the terminal's English, and its template for the GUI's language
    assert end["message"] == "Interrupted at step 2. Saved ohwx-interrupted-step00000002.safetensors."
    assert end["message"] in out
    assert (end["template"], end["values"]) == ("Interrupted at step {step}. Saved {file}.",
                                                {"step": 2, "file": "ohwx-interrupted-step00000002.safetensors"})


def test_resume_after_ctrl_c_continues_exactly(tmp_path, monkeypatch):
    from facelora.train import progress
    from facelora.train.resume import ResumeError

    unbroken_p, cfg = make_project(tmp_path / "unbroken", images=2, repeats=2, max_train_epochs=2,
                                   optimizer_type="AdamW", lr_scheduler="cosine")
    unbroken = run(unbroken_p, cfg)[0]

    project, cfg = make_project(tmp_path / "p", images=2, repeats=2, max_train_epochs=2,
                                optimizer_type="AdamW", lr_scheduler="cosine")
    real_step = progress.Reporter.step

    def step(self, step, *a, **kw):
        real_step(self, step, *a, **kw)
        if step == 5:  # the first step of epoch 2
            raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(progress.Reporter, "step", step)
        first = run(project, cfg)[0]
    assert first.interrupted and len(first.losses) == 5
    with pytest.raises(ResumeError, match="network_dim"):
        run(project, cfg.model_copy(update={"network_dim": 8}), resume=True)
    second, out = run(project, cfg, resume=True)
    assert "Resuming at step 5" in out and second.state.global_step == 8
    assert first.losses + second.losses == pytest.approx(unbroken.losses, rel=1e-5)
    a, b = read_lora(unbroken.final)[0], read_lora(second.final)[0]
    assert all(torch.allclose(a[k].float(), b[k].float(), atol=1e-3) for k in a)
    assert [e["first_step"] for e in events(project) if e["event"] == "start"][-1] == 5


def test_broken_dataset_is_refused_before_the_model_loads(tmp_path, monkeypatch):
    import facelora.train.loop as loop

    project, cfg = make_project(tmp_path / "p", images=0)
    monkeypatch.setattr(loop, "load_base", lambda *a, **k: pytest.fail("the model was loaded"))
    from facelora.dataset import DatasetError

    with pytest.raises(DatasetError, match="holds no images"):
        run(project, cfg)


# --- the command ---------------------------------------------------------------------------


def test_cli_train_with_overrides_not_saved(tmp_path):
    from facelora.cli import app

    project, _ = make_project(tmp_path / "p", images=1, repeats=2)
    before = project.config_path.read_text()
    res = CliRunner().invoke(app, ["train", str(project.root), "--base-model", "tiny", "--resolution", "64",
                                   "--max_train_epochs", "1", "--network_dim", "4", "--network_alpha", "2",
                                   "--optimizer_type", "AdamW", "--lr_scheduler", "constant"])
    assert res.exit_code == 0, res.output
    assert "model saved:" in res.output and (project.models_dir / "ohwx.safetensors").is_file()
    assert project.config_path.read_text() == before  # the overrides were for this run only
    res = CliRunner().invoke(app, ["train", str(project.root), "--base-model", "tiny", "--network_dimm", "4"])
    assert res.exit_code == 2 and "--network_dim" in res.output
