"""Mixed precision as Kohya's train_network.py runs it, the same on CUDA and on the CPU.

- `mixed_precision fp16`: the forward pass under autocast float16; the LoRA's weights, their
  gradients and the optimizer's state stay fp32; the loss is scaled by a GradScaler, which
  unscales the gradients before clipping and skips a step whose gradient overflowed (inf/NaN),
  halving its scale. Such a step is the scaler's business, not a sign of divergence.
- `bf16`: autocast bfloat16; no scaler (bf16 has fp32's range).
- `no`: fp32 throughout.

accelerate's Accelerator owns autocast and the GradScaler. On CUDA it makes them itself; on the
CPU it runs fp16 as fp32 without a word (accelerate 1.x makes no CPU scaler), so `set_scaler`
gives it torch's CPU autocast float16 and `torch.amp.GradScaler("cpu")`: the tests then train
through the very calls a GPU makes (scaled backward, unscale before clipping, scaler.step).

Kohya stores the frozen UNet and text encoder in the autocast dtype (its weight_dtype), halving
their memory; facelora does so on CUDA. On the CPU they stay fp32, where autocast casts each
operation's inputs and fp32 weights keep oneDNN's fast products (model/cpu_linear.py).

Kohya's `full_fp16` / `full_bf16` put the LoRA itself in the autocast dtype too: its weights,
gradients and (for optimizers that keep their state like the parameter) optimizer state. At
rank 128 with AdamW that saves about 0.6 GiB (facelora.vram), at the price of coarser updates.
torch's GradScaler refuses to unscale fp16 gradients, so full_fp16's scaler lets it, as Kohya's
patch_accelerator_for_fp16_training does (the same private method, overridden in a subclass).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from accelerate import Accelerator

AUTOCAST_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}
DTYPE_NAMES = {torch.float16: "fp16", torch.bfloat16: "bf16", torch.float32: "fp32"}


def frozen_dtype(mixed_precision: str, device: torch.device) -> torch.dtype:
    """The dtype of the frozen UNet and text encoder (Kohya's weight_dtype): the autocast dtype
    on CUDA, fp32 on the CPU. The VAE stays fp32 everywhere (it overflows in fp16)."""
    if device.type != "cuda":
        return torch.float32
    return AUTOCAST_DTYPES.get(mixed_precision, torch.float32)


def network_dtype(mixed_precision: str, full: bool) -> torch.dtype:
    """The dtype of the LoRA's weights: fp32, or with full_fp16 / full_bf16 the autocast dtype
    (config.checks makes sure the two match)."""
    return AUTOCAST_DTYPES[mixed_precision] if full else torch.float32


class HalfGradScaler(torch.amp.GradScaler):
    """A GradScaler that unscales fp16 gradients (full_fp16's): torch's refuses them, since an
    fp16 gradient may already have lost what the scale was to save; Kohya allows it the same way."""

    def _unscale_grads_(self, optimizer, inv_scale, found_inf, allow_fp16):
        return super()._unscale_grads_(optimizer, inv_scale, found_inf, True)


def set_scaler(accelerator: Accelerator, full_fp16: bool = False) -> Accelerator:
    """An fp16 Accelerator on the CPU given what CUDA's has (autocast float16 and a GradScaler);
    with full_fp16, on either device, the scaler that takes fp16 gradients. Call it before
    accelerator.prepare, which hands the scaler to the optimizer."""
    if accelerator.mixed_precision == "fp16" and accelerator.device.type == "cpu" and accelerator.scaler is None:
        accelerator.native_amp = True  # accelerate's autocast() then enters torch.autocast("cpu", float16)
        accelerator.scaler = torch.amp.GradScaler("cpu")
    if full_fp16 and accelerator.scaler is not None:
        accelerator.scaler = HalfGradScaler(accelerator.device.type)
    return accelerator


def describe(mixed_precision: str, device: torch.device, scaler: torch.amp.GradScaler | None,
             full: bool = False) -> str:
    """The precision a run actually uses, for the table printed at its start."""
    if mixed_precision == "no":
        return "fp32"
    frozen = DTYPE_NAMES[frozen_dtype(mixed_precision, device)]
    scaled = f", GradScaler (scale {scaler.get_scale():g})" if scaler is not None else ""
    lora = f"full_{mixed_precision}: LoRA and its gradients {mixed_precision}" if full else "LoRA and optimizer fp32"
    return f"{mixed_precision} autocast{scaled}; frozen UNet/text encoder {frozen}, {lora}"


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
