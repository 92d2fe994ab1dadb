"""The GPU's precision paths run on the CPU: fp16 autocast with accelerate's GradScaler (an
overflowing step skipped, its scale halved, no divergence counted), bf16 autocast, the frozen
weights in half precision as on CUDA, and bitsandbytes' 8-bit optimizers with uint8 states."""

from __future__ import annotations

import math
import re
import tomllib

import pytest
import torch
from safetensors.torch import load_file

from facelora.config import TrainConfig, check
from facelora.errors import ConfigError
from facelora.lora_file import read_lora
from facelora.model.base import load_base
from facelora.train import precision, step as step_module
from facelora.train.data import Batch
from facelora.train.optim import make_optimizer, make_scheduler
from facelora.train.resume import latest_state
from facelora.train.state import LoopState
from facelora.train.step import Stepper, make_accelerator, prepare_network
from test_train import events, make_project, run

CAPTION = "photo of ohwx man"


@pytest.fixture(autouse=True)
def cpu_fp16(monkeypatch):
    """fp16's CUDA path on the CPU (far slower there, so off outside the tests)."""
    monkeypatch.setenv("FACELORA_CPU_FP16", "1")


def tiny_stepper(**updates) -> tuple[Stepper, LoopState]:
    """train()'s step on the tiny model, put together as train() does it."""
    cfg = TrainConfig(**{**dict(pretrained_model_name_or_path="tiny", resolution="64", network_dim=4, network_alpha=2,
                                optimizer_type="AdamW", lr_scheduler="constant", unet_lr=1e-3, text_encoder_lr=1e-4,
                                mixed_precision="fp16"), **updates})
    cfg, _ = check(cfg, cuda=False)
    accelerator = make_accelerator(cfg.mixed_precision, cpu=True, full_fp16=cfg.full_fp16)
    model = load_base("tiny")
    network, _ = prepare_network(model, cfg, accelerator.device)
    optim = make_optimizer(cfg, network.unet_parameters(), network.text_encoder_parameters())
    scheduler = make_scheduler(cfg, optim, total_steps=100)
    network, optimizer, scheduler = accelerator.prepare(network, optim.optimizer, scheduler)
    return Stepper(model, network, optimizer, scheduler, accelerator, cfg), LoopState(cfg.seed)


def latents_batch(seed: int = 0) -> list[Batch]:
    latents = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(seed))
    return [Batch([0], [CAPTION], latents=latents)]


def weights(stepper: Stepper) -> list[torch.Tensor]:
    return [p.detach().clone() for p in stepper.trainable]


def test_fp16_on_the_cpu_runs_autocast_float16_with_a_grad_scaler():
    stepper, state = tiny_stepper()
    acc = stepper.accelerator
    assert acc.mixed_precision == "fp16" and isinstance(acc.scaler, torch.amp.GradScaler)
    with acc.autocast():
        assert torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.float16
    assert all(p.dtype == torch.float32 for p in stepper.trainable)  # the LoRA stays fp32
    before, scale = weights(stepper), acc.scaler.get_scale()
    loss, sound = stepper.run(latents_batch(), state)
    assert sound and math.isfinite(loss) and stepper.outcome.applied and not stepper.outcome.overflow
    assert acc.scaler.get_scale() == scale  # no overflow: the scale holds (it grows after 2000 good steps)
    assert any(not torch.equal(a, b) for a, b in zip(before, weights(stepper)))
    state_dtypes = {v.dtype for s in stepper.optimizer.state.values() for v in s.values() if torch.is_tensor(v)}
    assert torch.float16 not in state_dtypes  # the optimizer's moments are fp32


def test_an_inf_gradient_is_skipped_by_the_scaler_and_halves_its_scale():
    stepper, state = tiny_stepper()
    scaler, scheduler = stepper.accelerator.scaler, stepper.scheduler
    stepper.run(latents_batch(0), state)  # a good step first: the optimizer has state to keep
    before, scale, lr_steps = weights(stepper), scaler.get_scale(), scheduler.scheduler.last_epoch
    hook = stepper.trainable[0].register_hook(lambda g: torch.full_like(g, math.inf))
    loss, sound = stepper.run(latents_batch(1), state)
    hook.remove()
    assert math.isfinite(loss)  # the forward pass was fine: only the gradient overflowed
    assert stepper.outcome.overflow and not stepper.outcome.applied
    assert sound and not stepper.outcome.diverging  # the scaler's business, not divergence
    assert scaler.get_scale() == scale / 2
    assert all(torch.equal(a, b) for a, b in zip(before, weights(stepper)))  # no weight moved
    assert scheduler.scheduler.last_epoch == lr_steps  # nor did the learning-rate schedule
    stepper.run(latents_batch(2), state)  # and the next step trains again at the halved scale
    assert stepper.outcome.applied and scaler.get_scale() == scale / 2


def test_a_nan_loss_counts_as_divergence_even_with_the_scaler():
    """A NaN/inf loss comes from the forward pass, which no loss scale cures."""
    stepper, state = tiny_stepper()
    batch = latents_batch()
    batch[0].latents[0, 0, 0, 0] = math.nan
    loss, sound = stepper.run(batch, state)
    assert math.isnan(loss) and not sound and stepper.outcome.diverging and not stepper.outcome.applied


def test_without_a_scaler_a_nan_gradient_still_stops_the_step():
    stepper, state = tiny_stepper(mixed_precision="no")
    assert stepper.accelerator.scaler is None
    before = weights(stepper)
    hook = stepper.trainable[0].register_hook(lambda g: torch.full_like(g, math.nan))
    _, sound = stepper.run(latents_batch(), state)
    hook.remove()
    assert not sound and all(torch.equal(a, b) for a, b in zip(before, weights(stepper)))


def test_the_cuda_layout_half_precision_frozen_weights_trains_on_the_cpu(monkeypatch):
    """On CUDA the frozen UNet and text encoder are stored in the autocast dtype (Kohya's
    weight_dtype); the same layout forced on the CPU trains through the scaler."""
    assert precision.frozen_dtype("fp16", torch.device("cuda")) == torch.float16
    assert precision.frozen_dtype("bf16", torch.device("cuda")) == torch.bfloat16
    assert precision.frozen_dtype("no", torch.device("cuda")) == torch.float32
    assert precision.frozen_dtype("fp16", torch.device("cpu")) == torch.float32
    monkeypatch.setattr(step_module, "frozen_dtype", lambda mp, device: precision.AUTOCAST_DTYPES[mp])
    for mp in ("fp16", "bf16"):
        stepper, state = tiny_stepper(mixed_precision=mp)
        frozen = {p.dtype for p in stepper.model.unet.parameters() if not p.requires_grad}
        assert frozen == {precision.AUTOCAST_DTYPES[mp]}
        assert {p.dtype for p in stepper.trainable} == {torch.float32}
        before = weights(stepper)
        loss, sound = stepper.run(latents_batch(), state)
        assert sound and math.isfinite(loss)
        assert any(not torch.equal(a, b) for a, b in zip(before, weights(stepper)))


@pytest.mark.parametrize("mp, scaled", [("fp16", True), ("bf16", False)])
def test_training_runs_through_each_precision_and_says_which(tmp_path, mp, scaled):
    project, cfg = make_project(tmp_path / "p", mixed_precision=mp, save_precision="fp16")
    result, out = run(project, cfg)
    assert len(result.losses) == 4 and all(math.isfinite(v) for v in result.losses)
    assert f"{mp} autocast" in out and ("GradScaler" in out) == scaled
    assert "attention" in out and "sdpa" in out
    assert not any("fp32" in n.text and "fp16" in n.text for n in result.notes)  # no fallback note when asked for
    start = next(e for e in events(project) if e["event"] == "start")
    assert start["mixed_precision"] == mp
    tensors, _ = read_lora(result.final)
    assert {t.dtype for t in tensors.values()} == {torch.float16}  # save_precision


@pytest.mark.parametrize("name", ["AdamW8bit", "Lion8bit", "PagedAdamW8bit", "PagedLion8bit"])
def test_bitsandbytes_8bit_optimizers_train_with_uint8_states_on_the_cpu(name):
    cfg, notes = check(TrainConfig(optimizer_type=name), cuda=False)
    assert cfg.optimizer_type == name and not any("needs the bitsandbytes package" in n.text for n in notes)
    assert any("slow there" in n.text for n in notes)  # the CPU's 8-bit step, measured
    assert not check(TrainConfig(optimizer_type=name), cuda=True)[1]
    stepper, state = tiny_stepper(optimizer_type=name, mixed_precision="no", network_dim=64, network_alpha=32)
    assert type(stepper.optimizer.optimizer).__module__.startswith("bitsandbytes")
    before = weights(stepper)
    for seed in range(2):
        _, sound = stepper.run(latents_batch(seed), state)
        assert sound
    assert any(not torch.equal(a, b) for a, b in zip(before, weights(stepper)))
    dtypes = {v.dtype for s in stepper.optimizer.state.values() for k, v in s.items()
              if torch.is_tensor(v) and k.startswith("state")}
    assert torch.uint8 in dtypes  # 8-bit moments (tensors under 4096 elements keep fp32 ones)


def test_attention_is_sdpa_unless_xformers_can_run():
    from facelora.config import import_kohya
    from facelora.train import attention

    unet = load_base("tiny").unet
    assert attention.set_attention(unet, False, torch.device("cpu")) == [] and attention.in_use(unet) == "sdpa"
    # xformers asked for on CUDA where it does not import (no xformers here): SDPA, with a note
    notes = attention.set_attention(unet, True, torch.device("cuda"))
    assert attention.in_use(unet) == "sdpa" and "xformers cannot be used" in notes[0].text
    cfg, notes = check(TrainConfig(xformers=True), cuda=False)
    assert not cfg.xformers and any("SDPA" in n.text for n in notes)
    # kohya_ss GUI's xformers = "sdpa" is sd-scripts' --sdpa
    cfg, _ = import_kohya('LoRA_type = "Standard"\nxformers = "sdpa"\n')
    assert cfg.sdpa and not cfg.xformers
    cfg, _ = import_kohya('sdpa = true\nxformers = true\n')
    assert cfg.sdpa and cfg.xformers


def test_processes_talk_over_nccl_on_cuda_and_gloo_on_the_cpu(monkeypatch):
    """`--num_processes N` launches `accelerate launch --multi_gpu`, which sets LOCAL_RANK; each
    process's Accelerator(cpu=not CUDA) (make_accelerator, as train() calls it) then picks the
    backend: NCCL with CUDA, gloo without."""
    from accelerate.state import PartialState
    from accelerate.utils import DistributedType

    monkeypatch.setenv("LOCAL_RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    state = object.__new__(PartialState)  # only its backend choice, no process group started
    for cuda, expected in ((True, ("nccl", DistributedType.MULTI_GPU)), (False, ("gloo", DistributedType.MULTI_CPU))):
        monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
        monkeypatch.setattr(torch.distributed, "is_mpi_available", lambda: False)
        assert state._prepare_backend(cpu=not torch.cuda.is_available()) == expected


# --- full_fp16 / full_bf16: the LoRA itself in half precision (Kohya's flags) -------------------


def test_full_fp16_trains_fp16_weights_and_its_scaler_skips_an_inf_step():
    stepper, state = tiny_stepper(full_fp16=True)
    scaler = stepper.accelerator.scaler
    assert isinstance(scaler, precision.HalfGradScaler)
    assert {p.dtype for p in stepper.trainable} == {torch.float16}
    before = weights(stepper)
    stepper.run(latents_batch(0), state)  # a good step: fp16 gradients unscaled, clipped, applied
    assert stepper.outcome.applied and {p.grad for p in stepper.trainable} == {None}
    assert any(not torch.equal(a, b) for a, b in zip(before, weights(stepper)))
    before, scale = weights(stepper), scaler.get_scale()
    hook = stepper.trainable[0].register_hook(lambda g: torch.full_like(g, math.inf))
    _, sound = stepper.run(latents_batch(1), state)
    hook.remove()
    assert sound and stepper.outcome.overflow and not stepper.outcome.applied
    assert scaler.get_scale() == scale / 2 and all(torch.equal(a, b) for a, b in zip(before, weights(stepper)))
    stepper.run(latents_batch(2), state)
    assert stepper.outcome.applied and all(p.dtype == torch.float16 for p in stepper.trainable)


def test_torchs_own_scaler_refuses_fp16_gradients():
    """Why full_fp16 needs HalfGradScaler (Kohya's patch_accelerator_for_fp16_training)."""
    param = torch.nn.Parameter(torch.ones(4, dtype=torch.float16))
    optimizer = torch.optim.SGD([param], lr=0.1)
    param.grad = torch.ones_like(param)
    plain = torch.amp.GradScaler("cpu")
    plain.scale(torch.ones(()))  # the scale tensor exists once a loss was scaled
    with pytest.raises(ValueError, match="unscale FP16 gradients"):
        plain.unscale_(optimizer)
    half = precision.HalfGradScaler("cpu")
    half.scale(torch.ones(()))
    half.unscale_(optimizer)
    assert torch.equal(param.grad, torch.full_like(param, 1 / half.get_scale()))


def test_full_bf16_keeps_the_lora_in_bf16_without_a_scaler():
    stepper, _ = tiny_stepper(mixed_precision="bf16", full_bf16=True)
    assert stepper.accelerator.scaler is None and {p.dtype for p in stepper.trainable} == {torch.bfloat16}


@pytest.mark.parametrize("mp, dtype", [("bf16", torch.bfloat16), ("fp16", torch.float16)])
def test_a_full_half_run_trains_in_its_dtype_and_saves_in_save_precision(tmp_path, mp, dtype):
    project, cfg = make_project(tmp_path / "p", mixed_precision=mp, save_precision="float", **{f"full_{mp}": True})
    result, out = run(project, cfg)
    assert len(result.losses) == 4 and all(math.isfinite(v) for v in result.losses)
    assert len(set(result.losses)) > 1  # it trains: the loss moves
    assert f"full_{mp}: LoRA and its gradients {mp}" in out and ("GradScaler" in out) == (mp == "fp16")
    folder, _ = latest_state(project.state_dir)  # the run's own weights, saved for --resume
    trained = load_file(str(folder / "network.safetensors"))
    assert {t.dtype for t in trained.values() if t.is_floating_point()} == {dtype}
    tensors, meta = read_lora(result.final)
    assert {t.dtype for t in tensors.values()} == {torch.float32}  # save_precision float
    assert meta["ss_mixed_precision"] == mp and meta["ss_full_fp16"] == str(mp == "fp16")


@pytest.mark.parametrize("updates, message", [
    (dict(full_fp16=True, mixed_precision="bf16"), "full_fp16 requires mixed_precision fp16 (it is 'bf16')"),
    (dict(full_bf16=True, mixed_precision="no"), "full_bf16 requires mixed_precision bf16 (it is 'no')"),
    (dict(full_fp16=True, full_bf16=True, mixed_precision="fp16"), "full_fp16 and full_bf16 exclude each other"),
])
def test_impossible_full_precision_combinations_are_refused(updates, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        check(TrainConfig(**updates), cuda=True)


def test_full_fp16_falls_back_with_fp16_on_the_cpu(monkeypatch):
    monkeypatch.delenv("FACELORA_CPU_FP16")
    cfg, notes = check(TrainConfig(mixed_precision="fp16", full_fp16=True), cuda=False)
    assert cfg.mixed_precision == "no" and not cfg.full_fp16 and any("full_fp16 is off" in n.text for n in notes)
    cfg, _ = check(TrainConfig(mixed_precision="fp16", full_fp16=True), cuda=True)
    assert cfg.full_fp16


def test_full_precision_flags_go_through_kohyas_toml(tmp_path):
    from facelora.config import export_kohya, import_kohya

    cfg = TrainConfig(output_name="ohwx", mixed_precision="bf16", full_bf16=True)
    exported = tomllib.loads(export_kohya(cfg, tmp_path))["training_arguments"]
    assert exported["full_bf16"] is True and exported["full_fp16"] is False
    back, notes = import_kohya('mixed_precision = "fp16"\nfull_fp16 = true\n')
    assert back.full_fp16 and not back.full_bf16 and not any("full_fp16" in n for n in notes)
    assert not import_kohya('mixed_precision = "fp16"\n', base=back)[0].full_fp16  # sd-scripts' default
