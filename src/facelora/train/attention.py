"""The UNet's attention, as Kohya's --xformers and --sdpa choose it (train_util's
replace_unet_modules for a diffusers UNet): xformers' memory-efficient kernel when asked for, on
CUDA, where the package imports; otherwise PyTorch's scaled-dot-product attention (SDPA, which
picks flash or memory-efficient kernels itself on CUDA). xformers wins when both flags are set,
as in Kohya. `in_use` reads back what the UNet's attention processors really are."""

from __future__ import annotations

import torch

from ..messages import Message, said


def set_attention(unet, xformers: bool, device: torch.device) -> list[Message]:
    """Put xformers or SDPA into every attention layer of `unet`; returns notes for the user.
    (Without CUDA the config check has already turned xformers off, with its note.)"""
    notes = []
    if xformers and device.type == "cuda":
        try:
            unet.enable_xformers_memory_efficient_attention()
            return notes
        except (ImportError, ModuleNotFoundError, ValueError) as e:
            notes.append(said("xformers cannot be used ({error}); PyTorch's SDPA attention is used instead.", error=str(e)))
    from diffusers.models.attention_processor import AttnProcessor2_0

    unet.set_attn_processor(AttnProcessor2_0())
    return notes


def in_use(unet) -> str:
    """'xformers', 'sdpa', or the processors' class names when they are something else."""
    kinds = {type(p).__name__ for p in unet.attn_processors.values()}
    names = {"XFormersAttnProcessor": "xformers", "AttnProcessor2_0": "sdpa"}
    return ", ".join(sorted(names.get(k, k) for k in kinds)) or "none"
