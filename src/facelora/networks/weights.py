"""What every network type shares: its parameters by part, its file's tensors, and whether a
file's tensors fit it (the one check every type's loader makes)."""

from __future__ import annotations

import torch
from torch import nn

from ..lora_file import LoRAFileError, module_name
from ..messages import Message, said


def check_state_dict(own: dict[str, torch.Tensor], given: dict[str, torch.Tensor]) -> None:
    """A clear error when `given` (a file's tensors) has other keys or shapes than `own` (the
    network's): which modules it lacks or has in excess, or the first tensor of another shape."""
    missing = sorted(set(own) - set(given))
    unexpected = sorted(set(given) - set(own))
    if missing or unexpected:
        raise LoRAFileError(_mismatch(missing, unexpected))
    for key, tensor in given.items():
        if tuple(tensor.shape) != tuple(own[key].shape):
            raise LoRAFileError(_other_shape(key, tensor, own[key]))


MADE_FOR_OTHERS = ("It was made for other modules (was it trained with or without the text encoder, with another "
                   "network type or network_args, or by another tool?).")


def _mismatch(missing: list[str], unexpected: list[str]) -> Message:
    """Which modules a file lacks or has in excess (its tensors' count, their modules', a first key)."""
    def modules(keys: list[str]) -> int:
        return len({module_name(k) for k in keys})

    values = {"n_missing": len(missing), "m_missing": modules(missing), "missing": missing[0] if missing else "",
              "n_extra": len(unexpected), "m_extra": modules(unexpected), "extra": unexpected[0] if unexpected else "",
              "others": MADE_FOR_OTHERS}
    return said("The LoRA does not match the network: it lacks {n_missing} tensors of {m_missing} modules this network "
                "has (e.g. {missing}); it has {n_extra} tensors of {m_extra} modules this network does not (e.g. "
                "{extra}). {others}" if missing and unexpected else "The LoRA does not match the network: it lacks "
                "{n_missing} tensors of {m_missing} modules this network has (e.g. {missing}). {others}" if missing
                else "The LoRA does not match the network: it has {n_extra} tensors of {m_extra} modules this network "
                "does not (e.g. {extra}). {others}", **values)


def _other_shape(key: str, tensor: torch.Tensor, expected: torch.Tensor) -> Message:
    """A tensor of another shape than the network's; a lora_down's rank says which parameter to set."""
    rank = tensor.shape[0] if key.endswith(".lora_down.weight") else None
    conv = tensor.dim() == 4 and tensor.shape[-1] > 1
    return said("{key} has shape {shape}, the network expects {expected}. It has rank {rank}; set network_dim to "
                "{rank} (as conv_dim: it is a 3x3 convolution)." if rank is not None and conv else "{key} has shape "
                "{shape}, the network expects {expected}. It has rank {rank}; set network_dim to {rank}."
                if rank is not None else "{key} has shape {shape}, the network expects {expected}.",
                key=key, shape=tuple(tensor.shape), expected=tuple(expected.shape), rank=rank)


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
