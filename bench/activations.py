"""Counts the activation memory of one SD1.5 UNet training forward, on any device (the CPU
will do): the bytes autograd keeps for the backward pass, with and without gradient
checkpointing. facelora.vram.MODELLED is fitted to its counts at 128 and 256 px.

    python bench/activations.py --size 256 --precision bf16

Random SD1.5 weights from the shipped config, a rank-128 peft LoRA on Kohya's targets (the
frozen weights alone would make autograd keep almost nothing), batch 1. Each tensor autograd
saves is counted once by its storage; weights, and autocast's half-precision copies of them,
are not activations and are left out (facelora keeps the frozen weights in half precision on
CUDA, so it makes no copies). Gradient checkpointing is counted, not run: diffusers'
checkpointed modules (every resnet and transformer block) are given a function that records
their inputs and what autograd saves inside them, so one forward gives both figures:

- without checkpointing: every saved byte;
- with checkpointing: the saved bytes outside the checkpointed modules, plus their inputs
  (what checkpointing keeps), plus the largest module's own saved bytes (recomputed in the
  backward pass, one module at a time).

Prints one JSON object. These are counts of saved tensors, not of an allocator's peak: the
backward pass's transient gradients and the allocator's fragmentation come on top; bench/gpu.py
measures the real peak on a GPU (facelora.vram.calibrated takes it).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
MIB = 2**20


class SavedBytes:
    """Saved-tensor bytes by storage, attributed to the checkpointed module running (or None)."""

    def __init__(self, weight_shapes: set[tuple[int, ...]]) -> None:
        self.weight_shapes = weight_shapes  # a weight (or autocast's copy of one) is no activation
        self.seen: set[int] = set()
        self.region: int | None = None
        self.by_region: dict[int | None, int] = {}
        self.region_inputs = 0

    def add(self, t: torch.Tensor, to_inputs: bool = False) -> None:
        key = t.untyped_storage().data_ptr()
        if key in self.seen or not t.is_floating_point() or (t.grad_fn is None and tuple(t.shape) in self.weight_shapes):
            return
        self.seen.add(key)
        nbytes = t.untyped_storage().nbytes()
        if to_inputs:
            self.region_inputs += nbytes
        else:
            self.by_region[self.region] = self.by_region.get(self.region, 0) + nbytes

    def pack(self, t: torch.Tensor) -> torch.Tensor:
        self.add(t)
        return t

    def checkpoint_func(self, module, *args):
        """Stands in for torch.utils.checkpoint: runs the module plainly, counting."""
        for a in args:
            if isinstance(a, torch.Tensor):
                self.add(a, to_inputs=True)
        outer, self.region = self.region, id(module)
        try:
            return module(*args)
        finally:
            self.region = outer


def count(size: int, precision: str, device: str, rank: int = 128) -> dict:
    sys.path.insert(0, str(HERE))
    from diffusers import UNet2DConditionModel
    from peft import LoraConfig

    from reference import UNET_TARGETS, _config

    torch.manual_seed(0)
    with torch.device("meta"):  # random init of 860M parameters is slow; their values do not matter here
        unet = UNet2DConditionModel.from_config(_config("unet"))
    unet.to_empty(device=device)
    for p in unet.parameters():
        p.data.normal_(0, 0.02)
    unet.requires_grad_(False)
    unet.add_adapter(LoraConfig(r=rank, lora_alpha=rank // 2, target_modules=UNET_TARGETS))
    counter = SavedBytes({tuple(p.shape) for p in unet.parameters()})
    unet.enable_gradient_checkpointing(counter.checkpoint_func)
    unet.train()
    lat = size // 8
    x = torch.randn(1, 4, lat, lat, device=device)
    t = torch.tensor([500], device=device)
    text = torch.randn(1, 77, 768, device=device)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    with torch.autograd.graph.saved_tensors_hooks(counter.pack, lambda t: t):
        with torch.autocast(torch.device(device).type, dtype=dtype, enabled=dtype is not None):
            unet(x, t, text).sample.float().pow(2).mean()
    total = sum(counter.by_region.values())
    outside = counter.by_region.get(None, 0)
    largest = max((v for k, v in counter.by_region.items() if k is not None), default=0)
    checkpointed = outside + counter.region_inputs + largest
    return {"size": size, "precision": precision, "batch": 1, "rank": rank, "device": device,
            "saved_mib": round(total / MIB, 1), "checkpointed_mib": round(checkpointed / MIB, 1),
            "parts_mib": {"outside_checkpointed": round(outside / MIB, 1),
                          "checkpoint_inputs": round(counter.region_inputs / MIB, 1),
                          "largest_module": round(largest / MIB, 1)},
            "torch": torch.__version__}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--precision", choices=["fp32", "bf16", "fp16"], default="bf16")
    ap.add_argument("--device", default="cpu")
    a = ap.parse_args()
    torch.set_num_threads(2)
    print(json.dumps(count(a.size, a.precision, a.device)))


if __name__ == "__main__":
    main()
