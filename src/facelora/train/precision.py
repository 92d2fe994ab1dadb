"""Mixed precision as Kohya's train_network.py runs it, the same on CUDA and on the CPU.

- `mixed_precision fp16`: the forward pass under autocast float16; the LoRA's weights, their
  gradients and the optimizer's state stay fp32; the loss is scaled by a GradScaler, which
  unscales the gradients before clipping and skips a step whose gradient overflowed (inf/NaN),
  halving its scale. Such a step is the scaler's business, not a sign of divergence.
- `bf16`: autocast bfloat16; no scaler (bf16 has fp32's range).
- `no`: fp32 throughout.

accelerate's Accelerator owns autocast and the GradScaler. On CUDA it makes them itself; on the
CPU it runs fp16 as fp32 without a word (accelerate 1.x makes no CPU scaler), so `cpu_fp16`
gives it torch's CPU autocast float16 and `torch.amp.GradScaler("cpu")`: the tests then train
through the very calls a GPU makes (scaled backward, unscale before clipping, scaler.step).

Kohya stores the frozen UNet and text encoder in the autocast dtype (its weight_dtype), halving
their memory; facelora does so on CUDA. On the CPU they stay fp32, where autocast casts each
operation's inputs and fp32 weights keep oneDNN's fast products (model/cpu_linear.py).
Kohya's full_fp16 / full_bf16 (the LoRA's own weights in half precision) are not offered: at
rank 128 they save about 0.3 GB of weights and gradients (facelora.vram), and full_fp16 needs a
patched private method of the GradScaler.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from accelerate import Accelerator

AUTOCAST_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}


def frozen_dtype(mixed_precision: str, device: torch.device) -> torch.dtype:
    """The dtype of the frozen UNet and text encoder (Kohya's weight_dtype): the autocast dtype
    on CUDA, fp32 on the CPU. The VAE stays fp32 everywhere (it overflows in fp16)."""
    if device.type != "cuda":
        return torch.float32
    return AUTOCAST_DTYPES.get(mixed_precision, torch.float32)


def cpu_fp16(accelerator: Accelerator) -> Accelerator:
    """An fp16 Accelerator on the CPU given what CUDA's has: autocast float16 and a GradScaler."""
    if accelerator.mixed_precision == "fp16" and accelerator.device.type == "cpu" and accelerator.scaler is None:
        accelerator.native_amp = True  # accelerate's autocast() then enters torch.autocast("cpu", float16)
        accelerator.scaler = torch.amp.GradScaler("cpu")
    return accelerator


def describe(mixed_precision: str, device: torch.device, scaler: torch.amp.GradScaler | None) -> str:
    """The precision a run actually uses, for the table printed at its start."""
    if mixed_precision == "no":
        return "fp32"
    frozen = {torch.float16: "fp16", torch.bfloat16: "bf16", torch.float32: "fp32"}[frozen_dtype(mixed_precision, device)]
    scaled = f", GradScaler (scale {scaler.get_scale():g})" if scaler is not None else ""
    return f"{mixed_precision} autocast{scaled}; frozen UNet/text encoder {frozen}, LoRA and optimizer fp32"


@dataclass(frozen=True)
class StepOutcome:
    """What became of one optimizer step."""

    loss: float
    applied: bool  # the weights changed
    overflow: bool  # the fp16 GradScaler found an inf/NaN gradient, skipped the step and halved its scale

    @property
    def diverging(self) -> bool:
        """Counts towards max_nonfinite_steps: a NaN/inf loss (which no loss scale cures), or
        without a scaler any NaN/inf step. The scaler's overflow skips do not count."""
        return not math.isfinite(self.loss) or not (self.applied or self.overflow)


def finish_step(optimizer, scheduler, scaler: torch.amp.GradScaler | None, loss: torch.Tensor,
                grad_norm: torch.Tensor | None) -> StepOutcome:
    """The optimizer and scheduler step after the backward passes (and clipping), as the
    precision asks. With a scaler the optimizer always steps through it (scaler.step, then
    update): it skips overflowing steps itself. Without one, a NaN/inf loss or gradient norm
    is caught here, before it reaches the weights: the one host sync of a step."""
    judged = [loss] + ([grad_norm] if grad_norm is not None and scaler is None else [])
    figures = torch.stack([v.float() for v in judged]).tolist()
    if scaler is not None:
        before = scaler.get_scale()
        optimizer.step()  # accelerate's: scaler.step(optimizer) and scaler.update()
        # a lower scale is the sure sign of a skip: fused optimizers skip inside their kernel,
        # where accelerate's step_was_skipped does not see it
        overflow = scaler.get_scale() < before
        if not overflow:
            scheduler.step()
        outcome = StepOutcome(figures[0], applied=not overflow, overflow=overflow)
    else:
        finite = all(math.isfinite(v) for v in figures)
        if finite:
            optimizer.step()
            scheduler.step()
        outcome = StepOutcome(figures[0], applied=finite, overflow=False)
    optimizer.zero_grad(set_to_none=True)
    return outcome
