"""LyCORIS ("lycoris.kohya"): LoCon, LoHa, LoKr and DoRA, built by the lycoris-lora package's own
kohya module, the one kohya_ss trains with, so a file facelora writes is the file Kohya writes:
`network_args = ["algo=locon", "conv_dim=8", "conv_alpha=4"]`, `["algo=loha", ...]`,
`["algo=lokr", ...]` or `["algo=lora", "dora_wd=True"]`.

LycorisNetwork gives lycoris' modules facelora's network interface (the one networks.lora's
LoRANetwork has): apply_to/remove, the parameters by part, the file's tensors, loading them back
with a clear error, max-norm regularisation.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn

from ..errors import FaceloraError
from ..lora_file import read_lora
from ..model.family import SD15, ModelFamily
from .args import check_lycoris_args as check_args
from .args import lycoris_true
from .lycoris_forward import use_cheap_forwards
from .weights import NetworkParts, check_state_dict

# lycoris' "full" preset, limited to SD1.5's module classes (see the file)
SD15_PRESET = Path(__file__).with_name("lycoris_sd15.toml")


class LycorisNetwork(NetworkParts):
    """lycoris' modules of one model; state_dict() keys are the file keys A1111 and ComfyUI read
    (lora_down/lora_up, hada_w1_a..., lokr_w1..., dora_scale, alpha)."""

    def __init__(self, net: nn.Module, train_unet: bool, train_text_encoder: bool, names: _Names,
                 cheap_forwards: bool = True):
        super().__init__()
        if not (train_unet or train_text_encoder):
            raise FaceloraError("A LoRA must train the UNet, the text encoder, or both.")
        self.unet_loras = list(net.unet_loras) if train_unet else []
        self.text_encoder_loras = list(net.text_encoder_loras) if train_text_encoder else []
        self.loras = {names.to_file(m.lora_name): m for m in self.text_encoder_loras + self.unet_loras}
        for name, module in self.loras.items():
            self.add_module(name, module)
        self._net = [net]  # lycoris' network, for max-norm; a list, so not registered twice
        # how many modules run in each form (bypass, dora, rebuild); none changed if bypass_mode was given
        self.forms = use_cheap_forwards(self.loras.values()) if cheap_forwards else {}
        self._applied = False

    def apply_to(self) -> None:
        if not self._applied:
            for module in self.loras.values():
                module.apply_to()
            self._applied = True

    def remove(self) -> None:
        if self._applied:
            for module in reversed(list(self.loras.values())):
                module.restore()
            self._applied = False


    def unet_parameter_blocks(self) -> None:
        """No block-wise learning rates: those are networks.lora's network_args."""
        return None


    def load_kohya_state_dict(self, state_dict: dict[str, torch.Tensor]) -> None:
        own = self.state_dict()
        check_state_dict(own, state_dict)
        self.load_state_dict({k: v.to(own[k].dtype) for k, v in state_dict.items()})

    def load_weights(self, file: str | Path) -> None:
        self.load_kohya_state_dict(read_lora(file)[0])

    def merged_delta(self, name: str) -> torch.Tensor:
        """The change one module makes to its original's weight, at multiplier 1 (DoRA's
        re-normalisation included)."""
        module = self.loras[name]
        weight = module.org_module[0].weight
        return module.get_merged_weight(1.0, weight.shape, weight.device)[0].reshape(weight.shape) - weight

    @torch.no_grad()
    def apply_max_norm_regularization(self, max_norm: float, device: torch.device) -> tuple[int, float, float]:
        """sd-scripts' scale_weight_norms, by lycoris' own per-module rule: (keys scaled, mean
        norm, max norm)."""
        return self._net[0].apply_max_norm_regularization(max_norm, device)


class _Names:
    """lycoris names text encoder modules by the paths it walks; transformers 5's CLIPTextModel has
    no `text_model` level, so those are `lora_te_encoder_layers_...`, where the files A1111,
    ComfyUI and Kohya read say `lora_te_text_model_encoder_layers_...` (the family's names)."""

    def __init__(self, text_encoder: nn.Module, family: ModelFamily):
        full = family.text_encoder_prefix + family.text_encoder_layers
        walked = family.text_encoder_prefix + family.text_encoder_layers.removeprefix("text_model_")
        self.pair = None if hasattr(text_encoder, "text_model") or walked == full else (walked, full)

    def to_file(self, name: str) -> str:
        return self.pair[1] + name[len(self.pair[0]):] if self.pair and name.startswith(self.pair[0]) else name

    def to_lycoris(self, key: str) -> str:
        return self.pair[0] + key[len(self.pair[1]):] if self.pair and key.startswith(self.pair[1]) else key


def _quiet():
    """lycoris logs each module table at INFO and warns about other families' module classes."""
    logger = logging.getLogger("LyCORIS")
    return logger, logger.level


def create_network(multiplier: float, network_dim: int | None, network_alpha: float | None, vae: nn.Module | None,
                   text_encoder: nn.Module, unet: nn.Module, neuron_dropout: float | None = None, *,
                   train_unet: bool = True, train_text_encoder: bool = True, family: ModelFamily = SD15,
                   cheap_forwards: bool = True, **network_args) -> LycorisNetwork:
    """A new LyCORIS network, as lycoris.kohya.create_network makes it (neuron_dropout is its
    `dropout`), over SD1.5's modules of lycoris' "full" preset unless network_args name another."""
    from lycoris import kohya

    check_args(network_args)
    args = {k: str(v) for k, v in network_args.items()}
    if args.get("preset", "full") == "full":
        args["preset"] = str(SD15_PRESET)
    if neuron_dropout:
        args.setdefault("dropout", str(neuron_dropout))
    logger, level = _quiet()
    logger.setLevel(logging.ERROR)
    try:
        net = kohya.create_network(multiplier, 4 if network_dim is None else network_dim,
                                   1.0 if network_alpha is None else network_alpha, vae, text_encoder, unet,
                                   warn_on_unmatched=False, **args)
    finally:
        logger.setLevel(level)
    # bypass_mode=False, which kohya_ss writes into every LyCORIS network_args, still gets the
    # cheaper forms: their outputs are lycoris' rebuild form's; bypass_mode=True is lycoris' own
    cheap = cheap_forwards and not lycoris_true(network_args.get("bypass_mode"))
    return LycorisNetwork(net, train_unet, train_text_encoder, _Names(text_encoder, family), cheap_forwards=cheap)


def create_network_from_weights(multiplier: float, file: str | Path | None, vae: nn.Module | None,
                                text_encoder: nn.Module, unet: nn.Module,
                                weights_sd: dict[str, torch.Tensor] | None = None, for_inference: bool = False, *,
                                family: ModelFamily = SD15, **kwargs) -> tuple[LycorisNetwork, dict[str, torch.Tensor]]:
    """The LyCORIS network a file (or weights_sd) holds, each module's type and shape read from its
    keys by lycoris.kohya, and the weights, not yet loaded (network.load_kohya_state_dict)."""
    from lycoris import kohya

    if weights_sd is None:
        if file is None:
            raise FaceloraError("create_network_from_weights needs a file or weights_sd.")
        weights_sd, _ = read_lora(file)
    logger, level = _quiet()
    logger.setLevel(logging.ERROR)
    try:
        names = _Names(text_encoder, family)
        net, _ = kohya.create_network_from_weights(multiplier, None, vae, text_encoder, unet,
                                                   weights_sd={names.to_lycoris(k): v for k, v in weights_sd.items()})
    finally:
        logger.setLevel(level)
    modules = {k.split(".")[0] for k in weights_sd}
    network = LycorisNetwork(net, any(n.startswith(family.unet_prefix) for n in modules),
                             any(n.startswith(family.text_encoder_prefix) for n in modules), names)
    if len(network.loras) != len(modules):
        raise FaceloraError("{file}: lycoris found {found} of its {n} modules in this model; it was made for another "
                            "model.", file=file or "The weights", found=len(network.loras), n=len(modules))
    return network, weights_sd
