"""LoRA files diffusers' load_lora_weights cannot read (LyCORIS' LoHa and LoKr) or reads
otherwise than their merge (lycoris' DoRA: tests/test_lycoris.py), put on a pipeline by facelora: the network the file holds, built by its network module
(networks/), takes over the adapted modules' forwards, weighed per part like an adapter."""

from __future__ import annotations

from pathlib import Path

from ..errors import FaceloraError
from ..lora_file import network_type, read_lora
from ..model.family import SD15

# what diffusers' Kohya converter reads as the file means it (lora_down/lora_up, 3x3 ones too)
DIFFUSERS_TYPES = ("LoRA",)


def diffusers_reads(keys: list[str]) -> bool:
    return network_type(keys) in DIFFUSERS_TYPES


class NetworkAdapter:
    """One file's network applied to a pipeline's UNet and text encoder until remove()."""

    def __init__(self, pipe, file: Path):
        from ..networks import network_module

        weights, metadata = read_lora(file)
        name = metadata.get("ss_network_module") or "lycoris.kohya"
        kind = network_type(list(weights))
        if name != "lycoris.kohya":
            raise FaceloraError("{file} holds {kind} modules but says it is {name}; facelora loads {kind} files made "
                                "by lycoris.kohya (ss_network_module).", file=file.name, kind=kind, name=name)
        # (a networks.lora file is always plain LoRA, which diffusers reads)
        self.network, _ = network_module(name).create_network_from_weights(
            1.0, file, None, pipe.text_encoder, pipe.unet, weights_sd=weights, family=SD15)
        self.network.load_kohya_state_dict(weights)
        self.network.to(pipe.unet.device)
        self.network.apply_to()

    def weigh(self, te: float, unet: float) -> None:
        for module in self.network.text_encoder_loras:
            module.multiplier = float(te)
        for module in self.network.unet_loras:
            module.multiplier = float(unet)

    def remove(self) -> None:
        self.network.remove()
