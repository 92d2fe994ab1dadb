"""The GPU memory plan: exact sizes against the libraries themselves, the model's arithmetic on
the tutorial's settings, and the changes it suggests for an 8 GB card."""

from __future__ import annotations

import math

import pytest
import torch

from facelora.config import PRESETS, TrainConfig
from facelora.model.family import SD15
from facelora.vram import (GIB, SD15_SIZES, Activations, calibrated, count_sizes, memory_parts, model_sizes,
                           optimizer_state_bytes, sizes_json, vram_plan)

RANK128_LORA = 128 * 589_824  # DESIGN.md §3: 264 modules, 589,824 x rank parameters
UNET_PARAMS, TEXT_ENCODER_PARAMS, VAE_PARAMS = 859_520_964, 123_060_480, 83_653_863  # SD1.5's parts


def test_sizes_come_from_the_shipped_configs():
    sizes = model_sizes()
    assert len(sizes.unet_targets) == 192 and len(sizes.text_encoder_targets) == 72
    assert sizes.lora_parameters(128) == RANK128_LORA
    assert sum(t.conv for t in sizes.unet_targets) == 32  # proj_in/proj_out: 1x1 convolutions in SD1.5
    assert (sizes.unet, sizes.text_encoder, sizes.vae) == (UNET_PARAMS, TEXT_ENCODER_PARAMS, VAE_PARAMS)
    assert sizes.lora_parameters(1, text_encoder=False) == 423_936  # 192 UNet modules; 72 text encoder ones
    assert sizes.lora_parameters(1, unet=False) == 165_888


def test_the_stored_sizes_are_what_the_shipped_configs_build():
    counted = count_sizes(SD15.config_dir)  # the meta-device models of model/sd15/'s configs
    assert model_sizes() == counted, f"model/sd15/sizes.json is stale: write it again from {sizes_json.__name__}()"
    assert SD15_SIZES.read_text(encoding="utf-8") == sizes_json(counted)


def test_rank128_lora_and_adamw_state_bytes_exactly():
    parts = memory_parts(TrainConfig(optimizer_type="AdamW", network_dim=128))
    assert parts["LoRA weights (fp32)"] == parts["LoRA gradients (fp32)"] == 4 * RANK128_LORA
    assert parts["optimizer state"] == 8 * RANK128_LORA == 603_979_776
    # every rank-128 tensor is above bitsandbytes' 4096 and a multiple of its 256 block
    eight = memory_parts(TrainConfig(optimizer_type="AdamW8bit", network_dim=128))["optimizer state"]
    assert eight == 2 * RANK128_LORA + 2 * 4 * RANK128_LORA // 256 == 153_354_240


def test_base_weights_half_precision_halve_them():
    fp16 = memory_parts(TrainConfig(mixed_precision="fp16"))["base weights"]
    fp32 = memory_parts(TrainConfig(mixed_precision="no"))["base weights"]
    assert fp32 == 2 * fp16 == 4 * (UNET_PARAMS + TEXT_ENCODER_PARAMS)


def test_checkpointing_and_caching_lower_the_activations():
    plain = memory_parts(TrainConfig(gradient_checkpointing=False))["activations"]
    ckpt = memory_parts(TrainConfig(gradient_checkpointing=True))["activations"]
    assert 0 < ckpt < plain / 2
    big = memory_parts(TrainConfig(resolution="768", train_batch_size=2))["activations"]
    assert big > 3 * plain  # 2.25 x the pixels, 2 x the batch (a part of a step does not grow)
    # the VAE encodes before the UNet's forward: its buffers count where they outgrow the UNet's
    none = Activations(0.0, 0.0, 1.0, "none")
    cached = memory_parts(TrainConfig(train_batch_size=4), none)["activations"]
    not_cached = memory_parts(TrainConfig(cache_latents=False, train_batch_size=4), none)["activations"]
    assert not_cached - cached > 4 * 512 * 512 * 128 * 4
    assert memory_parts(TrainConfig(cache_latents=False))["activations"] == plain


def _real_state_bytes(opt: torch.optim.Optimizer) -> int:
    return sum(v.numel() * v.element_size() for st in opt.state.values() for k, v in st.items()
               if isinstance(v, torch.Tensor) and k not in ("qmap1", "qmap2", "step"))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])  # bf16: full_bf16's LoRA
@pytest.mark.parametrize("kind", ["AdamW", "AdamW8bit", "Lion8bit", "DAdaptAdam", "Prodigy", "Adafactor",
                                  "PagedAdamW8bit", "PagedLion8bit", "PagedAdamW", "SGDNesterov"])
def test_optimizer_state_is_what_the_library_allocates(kind, dtype):
    """One step of the real optimizer on LoRA-shaped tensors (Linear and 1x1 conv, one below
    bitsandbytes' 8-bit threshold, one a zero lora_up), and its state counted."""
    from facelora.train.optim import make_optimizer

    shapes = [(16, 320), (640, 16), (16, 320, 1, 1), (4, 32)]
    params = [torch.nn.Parameter(torch.zeros(s, dtype=dtype) if i == 1 else torch.randn(s, dtype=dtype))
              for i, s in enumerate(shapes)]
    cfg = TrainConfig(optimizer_type=kind, learning_rate=1.0, unet_lr=1.0, text_encoder_lr=1.0,
                      optimizer_args=PRESETS["dynamic-adafactor"]["optimizer_args"] if kind == "Adafactor" else [])
    opt = make_optimizer(cfg, params, []).optimizer
    for p in params:
        p.grad = torch.randn_like(p)
    opt.step()
    expected = sum(optimizer_state_bytes(kind, s, cfg.optimizer_kwargs(), zero=i == 1, param_bytes=dtype.itemsize)
                   for i, s in enumerate(shapes))
    assert _real_state_bytes(opt) == expected


def test_tutorial_settings_at_512_and_768_px():
    """The tutorial's settings (TrainConfig's defaults: rank 128, fp16, AdamW8bit, cached latents,
    batch 1) fit an 8 GB card at 512 px and, by the model, just at 768 px; a 6 GB card needs
    gradient checkpointing at 768, and that alone suffices."""
    at512 = vram_plan(TrainConfig(resolution="512"), 8)
    assert at512.fits is True and not at512.suggestion
    at768 = vram_plan(TrainConfig(resolution="768"), 8)
    assert at768.fits is True and at512.total_bytes < at768.total_bytes < 8 * GIB
    small = vram_plan(TrainConfig(resolution="768"), 6)
    assert small.fits is False and small.total_bytes > 6 * GIB
    assert small.suggestion == {"gradient_checkpointing": True}  # the least harmful change suffices
    assert any("--gradient_checkpointing True" in line for line in small.lines)
    assert small.lines[-1].endswith("fits.")
    tiny_card = vram_plan(TrainConfig(resolution="512"), 4)
    assert tiny_card.fits is False and tiny_card.suggestion["gradient_checkpointing"] is True
    assert tiny_card.suggestion["network_dim"] < 128  # checkpointing alone is not enough there


def test_dadaptadam_below_6gb_moves_to_adafactor():
    cfg = TrainConfig(**PRESETS["dynamic"])
    assert vram_plan(cfg, 8).fits is True
    small = vram_plan(cfg, 5)
    assert small.fits is False and small.suggestion["optimizer_type"] == "Adafactor"
    assert any("6 GB" in line for line in small.lines)


def test_an_impossible_card_says_so():
    plan = vram_plan(TrainConfig(), 1)
    assert plan.fits is False and "larger card" in plan.lines[-1]
    assert plan.suggestion["network_dim"] == 32


def test_calibration_recovers_measured_activations():
    """Figures made from a known per-pixel cost come back as that cost."""
    truth = Activations(3000.0, 700.0, 1.0, "truth")
    rows = []
    for ckpt in (False, True):
        for batch in (1, 4):
            cfg = dict(resolution="512", train_batch_size=batch, mixed_precision="bf16", gradient_checkpointing=ckpt,
                       optimizer_type="AdamW", network_dim=128, network_alpha=64.0)
            parts = memory_parts(TrainConfig(**cfg), truth)
            peak = sum(v for k, v in parts.items() if k != "CUDA context")
            rows.append({"impl": "facelora", "config": cfg, "peak_memory_bytes": peak})
    fitted = calibrated({"device": "cuda", "machine": {"gpu": "test"}, "results": rows})
    assert math.isclose(fitted.per_pixel, 3000.0, rel_tol=1e-3)
    assert math.isclose(fitted.per_pixel_checkpointed, 700.0, rel_tol=1e-3)
    with pytest.raises(ValueError, match="CUDA"):
        calibrated({"device": "cpu", "results": rows})


@pytest.mark.parametrize("kind, saved_per_param", [("AdamW", 2 + 2 + 2 * 2), ("AdamW8bit", 2 + 2)])
def test_full_half_precision_lowers_the_estimate_by_its_bytes(kind, saved_per_param):
    """full_bf16 / full_fp16 at rank 128: weights and gradients 2 bytes less a parameter each;
    AdamW's two moments (allocated like the parameter) 2 bytes less each, AdamW8bit's (uint8 and
    fp32 absmax whatever the parameter) not at all. The total falls by that times the slack."""
    for mp in ("bf16", "fp16"):
        fp32 = vram_plan(TrainConfig(optimizer_type=kind, mixed_precision=mp))
        half = vram_plan(TrainConfig(optimizer_type=kind, mixed_precision=mp, **{f"full_{mp}": True}))
        assert half.parts[f"LoRA weights ({mp})"] == half.parts[f"LoRA gradients ({mp})"] == 2 * RANK128_LORA
        assert fp32.parts["optimizer state"] - half.parts["optimizer state"] == (4 * RANK128_LORA if kind == "AdamW"
                                                                                 else 0)
        assert abs(fp32.total_bytes - half.total_bytes - saved_per_param * RANK128_LORA * 1.1) <= 1
        assert "full LoRA" in half.lines[0]
    # AdamW: 8 bytes x 75.5 M parameters x 1.1 = 0.62 GiB
    assert round(8 * RANK128_LORA * 1.1 / GIB, 2) == 0.62
