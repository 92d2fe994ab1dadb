"""GPU memory of a training run, planned before it starts: what has to fit on the card, part by
part, and the least harmful change that makes a run fit a card of a given size.

Which figures are exact and which are modelled:

- exact: the parameters of SD1.5's UNet, text encoder and VAE (the shipped configs built on the
  meta device, no weights read; their counts kept in model/sd15/sizes.json), the LoRA's tensors (facelora's own target list), their
  gradients, and each optimizer's state, tensor by tensor as its library allocates it
  (bitsandbytes' 8-bit blocks, D-Adaptation's and Prodigy's extra buffers, Adafactor's factored
  moments);
- modelled: the activations (bench/activations.py counts what autograd keeps for the backward
  pass at 128 and 256 px, fitted as a part a step plus a part per pixel x batch), the backward pass's
  transient buffers, the VAE's buffers when latents are encoded every step, the CUDA context and
  the allocator's slack. `calibrated()` replaces the activation model with figures that
  bench/gpu.py measured on a GPU; until one ran, every activation figure is a model.

facelora's trainer keeps the frozen UNet and text encoder in the autocast dtype on CUDA and the
VAE in fp32 on the device (it also makes the sample images), as train.step.prepare_network does.
With full_fp16 / full_bf16 the LoRA's weights and gradients are 16-bit, and so is the state of the
optimizers that allocate it like the parameter (STATE_LIKE_PARAM): at rank 128, 8 bytes less per
LoRA parameter with AdamW (0.56 GiB before the allocator's slack), 4 with AdamW8bit (0.28 GiB).
The activation model's part a step (per_step) is kept as it was fitted, fp32 LoRA or not.
"""

from __future__ import annotations

import json
import math
import os
import sys
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

from .config import TrainConfig, parse_kv_args
from .config.fields import MAX_RANK
from .errors import ConfigError
from .model.family import SD15

GIB = 2**30
FP32 = 4
REFERENCE_PIXELS = 512 * 512
# Modelled, not measured: the CUDA context, cuBLAS/cuDNN workspaces and the kernels loaded,
# which torch.cuda.max_memory_allocated does not count but the card's memory holds (0.3-0.6 GiB
# with CUDA 12's lazy loading).
CUDA_CONTEXT_GIB = 0.5
ALLOCATOR_SLACK = 1.10  # the caching allocator's blocks are larger than the tensors in them
BNB_MIN_8BIT_SIZE, BNB_BLOCK = 4096, 256  # bitsandbytes: smaller tensors keep fp32 states
PAGED = {"PagedAdamW8bit": "AdamW8bit", "PagedLion8bit": "Lion8bit", "PagedAdamW": "AdamW"}
DADAPT_MIN_GIB = 6  # the tutorial: DAdaptAdam needs at least 6 GB of VRAM, else Adafactor
HALF = 2  # bytes of an fp16 / bf16 value
# Optimizers that allocate their state like the parameter (zeros_like), so in 16 bits under
# full_fp16 / full_bf16; bitsandbytes' states are uint8 or fp32 and transformers' Adafactor's
# fp32 whatever the parameter's dtype.
STATE_LIKE_PARAM = {"AdamW", "Lion", "SGDNesterov", "DAdaptAdam", "Prodigy"}


@dataclass(frozen=True)
class Activations:
    """Bytes the UNet keeps for the backward pass per image pixel of a batch, at half precision
    (fp32 keeps twice as much). `source` says where the figures come from."""

    per_pixel: float  # without gradient checkpointing
    per_pixel_checkpointed: float
    backward_factor: float  # the backward pass's transient gradients, on top of what is kept
    source: str
    per_step: float = 0.0  # whatever the pixels: autocast's half-precision copies of the LoRA weights


# Fitted to two counts by bench/activations.py (bf16, batch 1, CPU, torch 2.13; bench/RESULTS.md):
# 128 px 448.2 MiB saved (73.0 MiB checkpointed), 256 px 637.5 MiB (114.2): a slope per pixel and
# a part that does not grow with the pixels. The backward factor is a model until bench/gpu.py
# calibrates it.
MIB = 2**20
_PX128, _PX256 = 128 * 128, 256 * 256
_SLOPE = (637.5 - 448.2) * MIB / (_PX256 - _PX128)
_SLOPE_CKPT = (114.2 - 73.0) * MIB / (_PX256 - _PX128)
MODELLED = Activations(per_pixel=_SLOPE, per_pixel_checkpointed=_SLOPE_CKPT, backward_factor=1.25,
                       source="activations modelled from saved tensors counted by bench/activations.py, "
                              "not measured on a GPU",
                       per_step=448.2 * MIB - _SLOPE * _PX128)
TEXT_ENCODER_ACTIVATION_BYTES = 40 * 2**20  # modelled: 12 layers x 77 tokens, per sample, when trained
VAE_ENCODE_BYTES_PER_PIXEL = 3 * 128 * FP32  # modelled: ~3 live fp32 maps of 128 channels at full size


# --- exact sizes ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoRATarget:
    in_features: int
    out_features: int
    conv: bool  # a 1x1 convolution: its LoRA tensors are 4-D

    def shapes(self, rank: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """lora_down and lora_up shapes at `rank`."""
        tail = (1, 1) if self.conv else ()
        return (rank, self.in_features, *tail), (self.out_features, rank, *tail)


@dataclass(frozen=True)
class ModelSizes:
    unet: int
    text_encoder: int
    vae: int
    unet_targets: tuple[LoRATarget, ...]
    text_encoder_targets: tuple[LoRATarget, ...]

    def lora_parameters(self, rank: int, unet: bool = True, text_encoder: bool = True) -> int:
        targets = self.unet_targets * unet + self.text_encoder_targets * text_encoder
        return rank * sum(t.in_features + t.out_features for t in targets)


# SD1.5's counts, as count_sizes() finds them in the shipped configs (tests/test_vram.py compares),
# so a plan needs no torch
SD15_SIZES = SD15.config_dir / "sizes.json"


@lru_cache(maxsize=4)
def model_sizes(config_dir: Path | None = None) -> ModelSizes:
    """Parameter counts and LoRA targets of the model the configs in `config_dir` describe
    (default: SD1.5's shipped configs, read from their sizes.json)."""
    if config_dir is not None and Path(config_dir) != SD15.config_dir:
        return count_sizes(config_dir)
    data = json.loads(SD15_SIZES.read_text(encoding="utf-8"))
    return ModelSizes(data["unet"], data["text_encoder"], data["vae"],
                      *(tuple(LoRATarget(*t) for t in data[part]) for part in ("unet_targets", "text_encoder_targets")))


def count_sizes(config_dir: Path) -> ModelSizes:
    """The counts of the configs in `config_dir`, built on the meta device: no weights, no memory."""
    from torch import nn

    from .model.sdmodel import empty_models
    from .networks.targets import target_modules

    unet, text_encoder, vae = empty_models(config_dir)

    def count(m: nn.Module) -> int:
        return sum(p.numel() for p in m.parameters())

    def targets(modules: dict[str, nn.Module]) -> tuple[LoRATarget, ...]:
        return tuple(LoRATarget(m.in_features, m.out_features, False) if isinstance(m, nn.Linear)
                     else LoRATarget(m.in_channels, m.out_channels, True) for m in modules.values())

    return ModelSizes(count(unet), count(text_encoder), count(vae), targets(target_modules(unet, None)),
                      targets(target_modules(None, text_encoder)))


def sizes_json(sizes: ModelSizes) -> str:
    """`sizes` as SD15_SIZES holds them: the counts, and each target as [in, out, conv]."""
    rows = {part: [[t.in_features, t.out_features, t.conv] for t in getattr(sizes, part)]
            for part in ("unet_targets", "text_encoder_targets")}
    return json.dumps({"unet": sizes.unet, "text_encoder": sizes.text_encoder, "vae": sizes.vae, **rows}) + "\n"


def optimizer_state_bytes(optimizer_type: str, shape: tuple[int, ...], optimizer_args: dict[str, Any],
                          zero: bool = False, param_bytes: int = FP32) -> int:
    """Bytes of optimizer state one parameter tensor of `shape` (fp32, or `param_bytes` wide:
    full_fp16 / full_bf16) gets, as each library allocates it. `zero`: the tensor starts at zeros
    (a new LoRA's lora_up), which Prodigy keeps no copy of."""
    n = math.prod(shape)
    like = param_bytes if optimizer_type in STATE_LIKE_PARAM else FP32  # one value of a state like the parameter
    # a paged optimizer's state is the same, in memory the driver may page out to the host
    optimizer_type = PAGED.get(optimizer_type, optimizer_type)
    if optimizer_type in ("AdamW8bit", "Lion8bit"):
        states = 2 if optimizer_type == "AdamW8bit" else 1
        if n < BNB_MIN_8BIT_SIZE:
            return states * n * FP32
        return states * (n + FP32 * -(-n // BNB_BLOCK))  # uint8 states + one fp32 absmax a block
    if optimizer_type == "DAdaptAdam":
        return 3 * n * like  # s, exp_avg, exp_avg_sq
    if optimizer_type == "Prodigy":
        slice_p = int(optimizer_args.get("slice_p", 1))
        sliced = -(-n // slice_p)
        beta1 = _betas(optimizer_args)[0]
        return like * (sliced + (1 if zero else sliced) + n * (beta1 > 0) + n)  # s, p0, exp_avg, exp_avg_sq
    if optimizer_type == "Adafactor":
        # the first moment only with beta1; a 0-d RMS per tensor
        moments = FP32 * (n if optimizer_args.get("beta1") is not None else 0) + FP32
        if len(shape) < 2:
            return moments + FP32 * n
        # the second moment factored over the last two dimensions: small for a Linear's [r, in],
        # but a 1x1 convolution's [r, in, 1, 1] keeps two vectors of r x in each
        rows, cols = math.prod(shape[:-1]), math.prod(shape[:-2]) * shape[-1]
        return moments + FP32 * (rows + cols)
    per_param = {"AdamW": 2, "Lion": 1, "SGDNesterov": 1}[optimizer_type]
    return per_param * n * like


def _betas(args: dict[str, Any]) -> tuple[float, ...]:
    betas = args.get("betas", (0.9, 0.999))
    return tuple(betas) if isinstance(betas, (list, tuple)) else (float(betas),)


# --- the plan ----------------------------------------------------------------------------------


@dataclass
class VramPlan:
    """What a run needs on the card: `parts` in bytes, whether it fits `vram_gib`, and the
    changes (Kohya names -> values) that make it fit, least harmful first."""

    parts: dict[str, int]
    total_bytes: int
    vram_gib: float | None
    fits: bool | None  # None: no card size given
    suggestion: dict[str, Any] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)


def _rank(cfg: TrainConfig, target: LoRATarget) -> int:
    """The rank the estimate sizes `target` at. LoKr's Kronecker factors are never larger than a
    rank-min(in, out) pair, so kohya_ss's LoKr dim 100000 (full matrix) does not inflate it."""
    return min(cfg.network_dim, target.in_features, target.out_features) if cfg.lokr else cfg.network_dim


def memory_parts(cfg: TrainConfig, activations: Activations = MODELLED,
                 sizes: ModelSizes | None = None) -> dict[str, int]:
    """Bytes of each part of a CUDA training run of `cfg`."""
    sizes = sizes or model_sizes()
    half = cfg.mixed_precision in ("fp16", "bf16")
    w, h = cfg.resolution_wh
    pixels = w * h * cfg.train_batch_size
    lora_tensors = [(shape, k == 1) for part, on in ((sizes.unet_targets, cfg.train_unet),
                                                       (sizes.text_encoder_targets, cfg.train_text_encoder)) if on
                    for t in part for k, shape in enumerate(t.shapes(_rank(cfg, t)))]
    lora = sum(math.prod(s) for s, _ in lora_tensors)
    args = parse_kv_args(cfg.optimizer_args)
    fresh = cfg.network_weights is None  # a new LoRA's lora_up starts at zeros
    # full_fp16 / full_bf16: the LoRA's weights, gradients and parameter-like states in 16 bits
    lora_bytes, lora_dtype = (HALF, cfg.mixed_precision) if cfg.full_half and half else (FP32, "fp32")
    per_pixel = activations.per_pixel_checkpointed if cfg.gradient_checkpointing else activations.per_pixel
    unet_act = (per_pixel * pixels * (1 if half else 2) + activations.per_step * half) * activations.backward_factor
    te_act = TEXT_ENCODER_ACTIVATION_BYTES * cfg.train_batch_size * cfg.train_text_encoder * (1 if half else 2)
    vae_encode = 0 if cfg.cache_latents else VAE_ENCODE_BYTES_PER_PIXEL * pixels
    return {
        "base weights": (sizes.unet + sizes.text_encoder) * (2 if half else FP32),
        "VAE weights (fp32)": sizes.vae * FP32,
        f"LoRA weights ({lora_dtype})": lora * lora_bytes,
        f"LoRA gradients ({lora_dtype})": lora * lora_bytes,
        "optimizer state": sum(optimizer_state_bytes(cfg.optimizer_type, s, args, zero=up and fresh,
                                                     param_bytes=lora_bytes) for s, up in lora_tensors),
        # the VAE encodes before the UNet's forward, so only the larger of the two is live at once
        "activations": int(max(unet_act + te_act, vae_encode)),
        "CUDA context": int(CUDA_CONTEXT_GIB * GIB),
    }


def _total(parts: dict[str, int]) -> int:
    allocated = sum(v for k, v in parts.items() if k != "CUDA context")
    return int(allocated * ALLOCATOR_SLACK) + parts["CUDA context"]


def _changes(cfg: TrainConfig) -> list[tuple[dict[str, Any], str]]:
    """The changes that lower memory, least harmful first, each with what it costs."""
    out: list[tuple[dict[str, Any], str]] = []
    if not cfg.gradient_checkpointing:
        out.append(({"gradient_checkpointing": True}, "same result, steps about 20-30% slower"))
    if cfg.mixed_precision == "no":
        out.append(({"mixed_precision": "fp16"}, "half-precision weights and activations (bf16 on RTX 30xx and newer)"))
    if not cfg.cache_latents:
        out.append(({"cache_latents": True}, "each image encoded once; no random flips or crops per step"))
    eight_bit = {"AdamW": "AdamW8bit", "Lion": "Lion8bit"}.get(cfg.optimizer_type)
    if eight_bit:
        out.append(({"optimizer_type": eight_bit}, "the same update with 8-bit states"))
    elif cfg.optimizer_type in ("DAdaptAdam", "Prodigy"):
        out.append(({"optimizer_type": "Adafactor", "lr_scheduler": "adafactor",
                     "optimizer_args": ["relative_step=True", "scale_parameter=True", "warmup_init=True"]},
                    "the tutorial's choice for small cards: also sets its own learning rate"))
    batch = cfg.train_batch_size
    while batch > 1:
        batch //= 2
        out.append(({"train_batch_size": batch}, "fewer images a step: more steps for the same epochs"))
    rank = cfg.network_dim
    while 32 < rank <= MAX_RANK:  # LoKr's full-matrix dim is a setting, not a rank to halve
        rank //= 2
        out.append(({"network_dim": rank, "network_alpha": min(cfg.network_alpha, rank / 2)},
                    "a lower rank holds less face detail"))
    return out


def _needs_adafactor(cfg: TrainConfig, vram_gib: float | None) -> bool:
    return cfg.optimizer_type == "DAdaptAdam" and vram_gib is not None and vram_gib < DADAPT_MIN_GIB


def vram_plan(cfg: TrainConfig, vram_gib: float | None = None, activations: Activations = MODELLED) -> VramPlan:
    """The memory `cfg` needs on a CUDA card, part by part; with `vram_gib`, whether it fits and
    the changes that make it fit (applied in order of least harm until it fits)."""
    parts = memory_parts(cfg, activations)
    total = _total(parts)
    precision = "fp32" if cfg.mixed_precision == "no" else "bf16/fp16" + (", full LoRA" if cfg.full_half else "")
    lines = [f"GPU memory plan ({precision}, "
             f"{cfg.resolution_wh[0]}x{cfg.resolution_wh[1]} px, batch {cfg.train_batch_size}, "
             f"rank {cfg.network_dim}, {cfg.optimizer_type}):"]
    lines += [f"  {name}: {v / GIB:.2f} GiB" for name, v in parts.items()]
    lines.append(f"  total with allocator slack x{ALLOCATOR_SLACK:g}: {total / GIB:.2f} GiB "
                 f"(exact: weights, LoRA, gradients, optimizer state; {activations.source})")
    if vram_gib is None:
        return VramPlan(parts, total, None, None, lines=lines)
    fits = total <= vram_gib * GIB and not _needs_adafactor(cfg, vram_gib)
    if _needs_adafactor(cfg, vram_gib):
        lines.append(f"  DAdaptAdam needs at least {DADAPT_MIN_GIB} GB of VRAM (the tutorial); use Adafactor.")
    if fits:
        lines.append(f"  fits in {vram_gib:g} GiB ({(vram_gib * GIB - total) / GIB:.2f} GiB spare).")
        return VramPlan(parts, total, vram_gib, True, lines=lines)
    suggestion, trial = {}, cfg
    for change, cost in _changes(cfg):
        trial = trial.model_copy(update=change)
        suggestion.update(change)
        lines.append(f"  change {_kohya(change)}: {cost}")
        need = _total(memory_parts(trial, activations))
        if need <= vram_gib * GIB and not _needs_adafactor(trial, vram_gib):
            lines.append(f"  does not fit in {vram_gib:g} GiB as set ({total / GIB:.2f} GiB); with the changes "
                         f"above: {need / GIB:.2f} GiB, fits.")
            return VramPlan(parts, total, vram_gib, False, suggestion, lines)
    lines.append(f"  does not fit in {vram_gib:g} GiB even with every change above; a larger card is needed.")
    return VramPlan(parts, total, vram_gib, False, suggestion, lines)


def _kohya(change: dict[str, Any]) -> str:
    return " ".join(f"--{k} {' '.join(map(str, v)) if isinstance(v, list) else v}" for k, v in change.items())


# --- calibration from bench/gpu.py -----------------------------------------------------------------


def calibrated(bench_json: Path | dict, base: Activations = MODELLED) -> Activations:
    """The activation model fitted to bench/gpu.py's measured peaks: for each facelora row, the
    measured peak (torch.cuda.max_memory_allocated) less the exact parts, per image pixel; the
    median of the rows with and without gradient checkpointing. The backward factor is folded
    in (it becomes 1), since a measured peak holds it."""
    data = json.loads(Path(bench_json).read_text()) if not isinstance(bench_json, dict) else bench_json
    if data.get("device") != "cuda":
        raise ValueError("calibration needs bench/gpu.py's figures from a CUDA GPU, not a CPU test run")
    rows = [r for r in data["results"] if r["impl"] == "facelora" and r["config"]["mixed_precision"] != "no"]
    figures: dict[bool, list[float]] = {True: [], False: []}
    for r in rows:
        cfg = TrainConfig(**r["config"])
        exact = {k: v for k, v in memory_parts(cfg, replace(base, per_pixel=0, per_pixel_checkpointed=0, per_step=0)).items()
                 if k != "CUDA context"}
        w, h = cfg.resolution_wh
        act = r["peak_memory_bytes"] - sum(exact.values())
        figures[cfg.gradient_checkpointing].append(max(act, 0) / (w * h * cfg.train_batch_size))
    if not figures[True] or not figures[False]:
        raise ConfigError("{file}: calibration needs facelora rows with and without gradient_checkpointing",
                          file=str(bench_json))
    med = {k: sorted(v)[len(v) // 2] for k, v in figures.items()}
    gpu = data.get("machine", {}).get("gpu", "a GPU")
    return Activations(med[False], med[True], 1.0, f"activations measured by bench/gpu.py on {gpu}")


# The device files a GPU driver makes on Linux (NVIDIA, NVIDIA under WSL2, AMD's ROCm): without
# one torch finds no CUDA device, so it need not be loaded to say so.
GPU_DEVICE_FILES = ("/dev/nvidiactl", "/dev/dxg", "/dev/kfd")


def cuda_available() -> bool:
    """torch.cuda.is_available(), answered without loading torch where no GPU driver is (Linux
    without its device files, macOS)."""
    if sys.platform == "darwin" or (sys.platform.startswith("linux")
                                    and not any(os.path.exists(f) for f in GPU_DEVICE_FILES)):
        return False
    import torch

    return torch.cuda.is_available()


def detected_vram_gib() -> float | None:
    """The first CUDA card's memory in GiB, or None without one."""
    if not cuda_available():
        return None
    import torch

    return torch.cuda.get_device_properties(0).total_memory / GIB
