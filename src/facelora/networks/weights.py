"""What every network type shares: its parameters by part, its file's tensors, and whether a
file's tensors fit it (the one check every type's loader makes)."""

from __future__ import annotations

import torch
from torch import nn

from ..lora_file import LoRAFileError, module_name


def check_state_dict(own: dict[str, torch.Tensor], given: dict[str, torch.Tensor]) -> None:
    """A clear error when `given` (a file's tensors) has other keys or shapes than `own` (the
    network's): which modules it lacks or has in excess, or the first tensor of another shape."""
    missing = sorted(set(own) - set(given))
    unexpected = sorted(set(given) - set(own))
    if missing or unexpected:
        module = lambda keys: sorted({module_name(k) for k in keys})  # noqa: E731
        parts = []
        if missing:
            parts.append(f"it lacks {len(missing)} tensors of {len(module(missing))} modules this network "
                         f"has (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"it has {len(unexpected)} tensors of {len(module(unexpected))} modules this network "
                         f"does not (e.g. {unexpected[0]})")
        raise LoRAFileError(
            "The LoRA does not match the network: " + "; ".join(parts) + ". It was made for other "
            "modules (was it trained with or without the text encoder, with another network type or "
            "network_args, or by another tool?)."
        )
    for key, tensor in given.items():
        if tuple(tensor.shape) != tuple(own[key].shape):
            rank = tensor.shape[0] if key.endswith(".lora_down.weight") else None
            conv = " (as conv_dim: it is a 3x3 convolution)" if tensor.dim() == 4 and tensor.shape[-1] > 1 else ""
            hint = f" It has rank {rank}; set network_dim to {rank}{conv}." if rank is not None else ""
            raise LoRAFileError(f"{key} has shape {tuple(tensor.shape)}, the network expects "
                                f"{tuple(own[key].shape)}.{hint}")


class NetworkParts(nn.Module):
    """The parts of a network's interface that do not depend on its type. A subclass sets loras
    (file name -> module), unet_loras and text_encoder_loras."""

    loras: dict[str, nn.Module]
    unet_loras: list[nn.Module]
    text_encoder_loras: list[nn.Module]

    def set_multiplier(self, multiplier: float) -> None:
        for module in self.loras.values():
            module.multiplier = float(multiplier)

    def unet_parameters(self) -> list[nn.Parameter]:
        return [p for m in self.unet_loras for p in m.parameters()]

    def text_encoder_parameters(self) -> list[nn.Parameter]:
        return [p for m in self.text_encoder_loras for p in m.parameters()]

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def kohya_state_dict(self) -> dict[str, torch.Tensor]:
        """The file's tensors: fp32 copies on the CPU."""
        return {k: v.detach().to("cpu", copy=True) for k, v in self.state_dict().items()}
