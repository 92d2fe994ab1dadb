"""Kohya's LoRA ("networks.lora"): the trainable network that wraps the adapted modules, and
sd-scripts' two constructors for it. The file it is saved in is lora_file.py's.

Each adapted module keeps its weight W and gains two small matrices: its output becomes
W x + up(down(x)) * multiplier * alpha / rank.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from ..errors import FaceloraError
from ..lora_file import LoRAFileError, module_name, read_lora
from ..model import cpu_linear
from ..model.family import SD15, ModelFamily
from .targets import target_modules


class LoRAModule(nn.Module):
    """One adapted module: down (rank x in) and up (out x rank), Linear or 1x1 Conv2d like the
    original. Applied, it takes the original's forward over: org_forward(x) + up(down(x)) *
    multiplier * alpha / rank, computed in the cheaper of two equal forms (forward). down starts
    Kaiming-uniform (a = sqrt 5), up at zero, so a new network changes nothing until trained."""

    def __init__(self, lora_name: str, org_module: nn.Module, rank: int, alpha: float, multiplier: float = 1.0):
        super().__init__()
        self.lora_name = lora_name
        self.rank = int(rank)
        if isinstance(org_module, nn.Conv2d):
            self.lora_down: nn.Module = nn.Conv2d(org_module.in_channels, self.rank, (1, 1), bias=False)
            self.lora_up: nn.Module = nn.Conv2d(self.rank, org_module.out_channels, (1, 1), bias=False)
        elif isinstance(org_module, nn.Linear):
            self.lora_down = nn.Linear(org_module.in_features, self.rank, bias=False)
            self.lora_up = nn.Linear(self.rank, org_module.out_features, bias=False)
        else:
            raise TypeError(f"{lora_name}: LoRA adapts Linear and 1x1 Conv2d modules, not {type(org_module).__name__}")
        nn.init.kaiming_uniform_(self.lora_down.weight, a=math.sqrt(5))
        nn.init.zeros_(self.lora_up.weight)
        self.register_buffer("alpha", torch.tensor(float(alpha)))
        self.scale = float(alpha) / self.rank
        self.multiplier = float(multiplier)
        self._org = [org_module]  # a list, so the original's weights are not registered as ours
        # Linear, and 1x1 convolutions with no stride, padding or groups, are matrix products;
        # computed as such (see forward), a 1x1 convolution on NCHW avoids oneDNN's reorders.
        self._as_products = isinstance(org_module, nn.Linear) or (
            org_module.stride == (1, 1) and org_module.padding == (0, 0) and org_module.dilation == (1, 1)
            and org_module.groups == 1 and org_module.padding_mode == "zeros")
        self._org_forward = None
        self._had_own_forward = False

    @property
    def org_module(self) -> nn.Module:
        return self._org[0]

    def apply_to(self) -> None:
        if self._org_forward is not None:
            return
        org = self.org_module
        self._had_own_forward = "forward" in org.__dict__
        self._org_forward = org.forward
        org.forward = self.forward

    def remove(self) -> None:
        if self._org_forward is None:
            return
        org = self.org_module
        if self._had_own_forward:
            org.forward = self._org_forward
        else:
            del org.forward
        self._org_forward = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        org, down, up = self.org_module, self.lora_down.weight, self.lora_up.weight
        m = self.multiplier * self.scale
        if not self._as_products or org.weight.dtype != down.dtype or not (
                x.dtype == down.dtype or torch.is_autocast_enabled(x.device.type)):
            # Kohya's definition as written: for a convolution with stride or padding, and for
            # half-precision base weights beside fp32 LoRA weights (CUDA fp16/bf16 training).
            out = self._org_forward(x)
            return out + (self.lora_up(self.lora_down(x.to(down.dtype))) * m).to(out.dtype)
        conv = isinstance(org, nn.Conv2d)
        fan_in, fan_out = down.shape[1], up.shape[0]
        if self._merging_is_cheaper(x.numel() // fan_in, fan_in, fan_out, down.requires_grad or up.requires_grad):
            weight = torch.addmm(org.weight.flatten(1), up.flatten(1), down.flatten(1), alpha=m)
            return _product(x, weight, conv, org.bias)
        # The up projection adds its product to the base output (alpha m, beta 1): no separate
        # passes over the output to scale it and add it.
        base = _product(x, org.weight.flatten(1), conv, org.bias)
        return _product(_product(x, down.flatten(1), conv), up.flatten(1), conv, add_to=base, alpha=m)

    def _merging_is_cheaper(self, tokens: int, fan_in: int, fan_out: int, training: bool) -> bool:
        """Whether (W + m up down) x costs fewer FLOPs than W x + m up(down x), for `tokens`
        input vectors. Training, the merged form trades the rank-r products of the forward and
        backward (6 t r (in + out)) for one weight-sized gradient (2 t in out) plus the products
        that form W' and split its gradient (6 r in out): it wins where t is large and the layer
        narrow (SD1.5's 64x64 level at 512 px). Without gradients: r in out against t r (in + out)."""
        r = self.rank
        if training and torch.is_grad_enabled():
            return 2 * tokens * fan_in * fan_out + 6 * r * fan_in * fan_out < 6 * tokens * r * (fan_in + fan_out)
        return 2 * r * fan_in * fan_out < 2 * tokens * r * (fan_in + fan_out)

    def delta_weight(self) -> torch.Tensor:
        """up @ down x alpha / rank, shaped like the original weight (multiplier not included)."""
        up, down = self.lora_up.weight, self.lora_down.weight
        delta = up.flatten(1) @ down.flatten(1) * self.scale
        return delta.reshape(self.org_module.weight.shape)


def _product(x: torch.Tensor, weight: torch.Tensor, conv: bool, bias: torch.Tensor | None = None,
             add_to: torch.Tensor | None = None, alpha: float = 1.0) -> torch.Tensor:
    """weight (out x in) applied to x as a Linear ([..., in]) or a 1x1 convolution ([B, in, H, W])
    does, plus bias, or added to add_to as add_to + alpha * product."""
    if conv:
        b, _, h, w = x.shape
        x3, w3 = x.flatten(2), weight.expand(b, *weight.shape)
        if add_to is not None:
            out = torch.baddbmm(add_to.flatten(2), w3, x3, alpha=alpha)
        elif bias is not None:
            out = torch.baddbmm(bias.view(1, -1, 1), w3, x3)
        else:
            out = torch.bmm(w3, x3)
        return out.view(b, weight.shape[0], h, w)
    if cpu_linear.usable(x, weight):
        return cpu_linear.linear(x, weight if alpha == 1.0 else weight * alpha, bias, add_to)
    if add_to is None:
        return F.linear(x, weight, bias)
    out = torch.addmm(add_to.reshape(-1, weight.shape[0]), x.reshape(-1, weight.shape[1]), weight.t(), alpha=alpha)
    return out.view(*x.shape[:-1], weight.shape[0])


class LoRANetwork(nn.Module):
    """The LoRA modules of one model. Its state_dict() keys are the Kohya file keys."""

    def __init__(self, unet: nn.Module, text_encoder: nn.Module, rank: int, alpha: float,
                 train_unet: bool = True, train_text_encoder: bool = True, multiplier: float = 1.0,
                 family: ModelFamily = SD15):
        super().__init__()
        if not (train_unet or train_text_encoder):
            raise FaceloraError("A LoRA must train the UNet, the text encoder, or both.")
        self.rank, self.alpha = int(rank), float(alpha)
        targets = target_modules(unet if train_unet else None, text_encoder if train_text_encoder else None, family)
        self.loras: dict[str, LoRAModule] = {}
        for name, module in targets.items():
            lora = LoRAModule(name, module, self.rank, self.alpha, multiplier)
            self.add_module(name, lora)
            self.loras[name] = lora
        self.text_encoder_loras = [m for n, m in self.loras.items() if n.startswith(family.text_encoder_prefix)]
        self.unet_loras = [m for n, m in self.loras.items() if n.startswith(family.unet_prefix)]

    def apply_to(self) -> None:
        """Take over the targets' forwards (the base weights stay untouched)."""
        for lora in self.loras.values():
            lora.apply_to()

    def remove(self) -> None:
        """Give the targets their original forwards back."""
        for lora in self.loras.values():
            lora.remove()

    def set_multiplier(self, multiplier: float) -> None:
        for lora in self.loras.values():
            lora.multiplier = float(multiplier)

    def unet_parameters(self) -> list[nn.Parameter]:
        return [p for m in self.unet_loras for p in m.parameters()]

    def text_encoder_parameters(self) -> list[nn.Parameter]:
        return [p for m in self.text_encoder_loras for p in m.parameters()]

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def kohya_state_dict(self) -> dict[str, torch.Tensor]:
        """The file's tensors (fp32 copies on the CPU): <name>.lora_down.weight,
        <name>.lora_up.weight, <name>.alpha for every module."""
        return {k: v.detach().to("cpu", copy=True) for k, v in self.state_dict().items()}

    def load_kohya_state_dict(self, state_dict: dict[str, torch.Tensor]) -> None:
        """Load a LoRA file's tensors (network_weights, resume). The names, ranks and alpha must
        be this network's; any difference is an error that says what differs."""
        own = self.state_dict()
        missing = sorted(set(own) - set(state_dict))
        unexpected = sorted(set(state_dict) - set(own))
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
                "modules (was it trained with or without the text encoder, or by another tool?)."
            )
        for key, tensor in state_dict.items():
            if tuple(tensor.shape) != tuple(own[key].shape):
                rank = tensor.shape[0] if key.endswith(".lora_down.weight") else None
                hint = f" It has rank {rank}; set network_dim to {rank}." if rank is not None else ""
                raise LoRAFileError(f"{key} has shape {tuple(tensor.shape)}, the network expects "
                                    f"{tuple(own[key].shape)}.{hint}")
            if key.endswith(".alpha") and not math.isclose(float(tensor), self.alpha, rel_tol=1e-3):
                raise LoRAFileError(f"The LoRA has alpha {float(tensor):g}, the network {self.alpha:g}; "
                                    f"set network_alpha to {float(tensor):g}.")
        self.load_state_dict({k: v.to(own[k].dtype) for k, v in state_dict.items()})

    def load_weights(self, file: str | Path) -> None:
        """Start from a LoRA file (network_weights), as sd-scripts' network.load_weights."""
        tensors, _ = read_lora(file)
        self.load_kohya_state_dict(tensors)

    def merged_delta(self, name: str) -> torch.Tensor:
        """The change this LoRA makes to one module's weight, at multiplier 1."""
        return self.loras[name].delta_weight()


# --- sd-scripts' constructors ------------------------------------------------------------------


def create_network(multiplier: float, network_dim: int | None, network_alpha: float | None, vae: nn.Module | None,
                   text_encoder: nn.Module, unet: nn.Module, neuron_dropout: float | None = None, *,
                   train_unet: bool = True, train_text_encoder: bool = True, family: ModelFamily = SD15,
                   **network_args) -> LoRANetwork:
    """A new LoRA over the parts to train. network_dim defaults to 4 and network_alpha to 1, as in
    sd-scripts. facelora's LoRA takes no dropout and no network_args."""
    if neuron_dropout:
        raise FaceloraError(f"network_dropout {neuron_dropout}: facelora's LoRA has no dropout; remove it.")
    if network_args:
        raise FaceloraError(f"network_args {sorted(network_args)}: facelora's LoRA takes none; remove them.")
    return LoRANetwork(unet, text_encoder, 4 if network_dim is None else network_dim,
                       1.0 if network_alpha is None else network_alpha, train_unet=train_unet,
                       train_text_encoder=train_text_encoder, multiplier=multiplier, family=family)


def create_network_from_weights(multiplier: float, file: str | Path | None, vae: nn.Module | None,
                                text_encoder: nn.Module, unet: nn.Module,
                                weights_sd: dict[str, torch.Tensor] | None = None, for_inference: bool = False, *,
                                family: ModelFamily = SD15, **kwargs) -> tuple[LoRANetwork, dict[str, torch.Tensor]]:
    """The LoRA a file (or weights_sd) holds: its rank and alpha and the parts it adapts read from
    the weights, and the weights themselves, not yet loaded (network.load_kohya_state_dict). One
    rank and one alpha for every module, as facelora saves them; a file with several is refused.
    for_inference and kwargs are sd-scripts' arguments: this LoRA is the same for both uses."""
    if weights_sd is None:
        if file is None:
            raise LoRAFileError("create_network_from_weights needs a file or weights_sd.")
        weights_sd, _ = read_lora(file)
    ranks = {int(v.shape[0]) for k, v in weights_sd.items() if k.endswith(".lora_down.weight")}
    alphas = {float(v) for k, v in weights_sd.items() if k.endswith(".alpha")}
    if len(ranks) != 1 or len(alphas) > 1:
        raise LoRAFileError(f"{file or 'The weights'}: its modules have ranks {sorted(ranks)} and alphas "
                            f"{sorted(alphas)}; facelora's LoRA has one rank and one alpha for all.")
    rank = ranks.pop()
    names = {module_name(k) for k in weights_sd}
    network = LoRANetwork(unet, text_encoder, rank, alphas.pop() if alphas else float(rank),
                          train_unet=any(n.startswith(family.unet_prefix) for n in names),
                          train_text_encoder=any(n.startswith(family.text_encoder_prefix) for n in names),
                          multiplier=multiplier, family=family)
    return network, weights_sd
