"""Kohya's LoRA ("networks.lora"): the trainable network that wraps the adapted modules, and
sd-scripts' two constructors for it. The file it is saved in is lora_file.py's.

Each adapted module keeps its weight W and gains two small matrices: its output becomes
W x + up(down(x)) * multiplier * alpha / rank. Training, sd-scripts' three dropouts may thin
the second term (LoRAModule.dropped_forward); they never change the saved weights.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from ..errors import FaceloraError, Templated
from ..lora_file import LoRAFileError, module_name, read_lora
from ..model import cpu_linear
from ..model.family import SD15, ModelFamily
from .args import DROPOUT_ARGS, check_probabilities
from .args import check_lora_args as check_args
from .blocks import block_index, block_lr_weights
from .targets import conv_target_modules, is_conv_3x3, target_modules
from .weights import NetworkParts, check_state_dict


class NotAdaptable(Templated, TypeError):
    """A module of a kind a LoRA cannot wrap (a bug in the targets, not the user's input)."""


class LoRAModule(nn.Module):
    """One adapted module: down (rank x in) and up (out x rank), Linear or 1x1 Conv2d like the
    original. Applied, it takes the original's forward over: org_forward(x) + up(down(x)) *
    multiplier * alpha / rank, computed in the cheaper of two equal forms (forward). down starts
    Kaiming-uniform (a = sqrt 5), up at zero, so a new network changes nothing until trained.
    dropout, rank_dropout and module_dropout are sd-scripts' (network_dropout and two network_args),
    probabilities that act only in train mode; None or 0 is off."""

    def __init__(self, lora_name: str, org_module: nn.Module, rank: int, alpha: float, multiplier: float = 1.0,
                 dropout: float | None = None, rank_dropout: float | None = None, module_dropout: float | None = None):
        super().__init__()
        self.lora_name = lora_name
        self.rank = int(rank)
        if isinstance(org_module, nn.Conv2d):
            # Kohya's LoCon: a 3x3 convolution's down keeps its kernel, stride and padding
            self.lora_down: nn.Module = nn.Conv2d(org_module.in_channels, self.rank, org_module.kernel_size,
                                                  org_module.stride, org_module.padding, bias=False)
            self.lora_up: nn.Module = nn.Conv2d(self.rank, org_module.out_channels, (1, 1), bias=False)
        elif isinstance(org_module, nn.Linear):
            self.lora_down = nn.Linear(org_module.in_features, self.rank, bias=False)
            self.lora_up = nn.Linear(self.rank, org_module.out_features, bias=False)
        else:
            raise NotAdaptable("{name}: LoRA adapts Linear and Conv2d modules, not {kind}", name=lora_name,
                               kind=type(org_module).__name__)
        nn.init.kaiming_uniform_(self.lora_down.weight, a=math.sqrt(5))
        nn.init.zeros_(self.lora_up.weight)
        self.register_buffer("alpha", torch.tensor(float(alpha)))
        self.scale = float(alpha) / self.rank
        self.multiplier = float(multiplier)
        self.dropout, self.rank_dropout, self.module_dropout = (p or None for p in (dropout, rank_dropout,
                                                                                    module_dropout))
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
        if self.training and (self.dropout or self.rank_dropout or self.module_dropout):
            return self.dropped_forward(x)
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

    def dropped_forward(self, x: torch.Tensor) -> torch.Tensor:
        """sd-scripts' LoRAModule.forward in training, step for step (the same random draws): with
        probability module_dropout the original output alone; else dropout on down's output, and
        rank_dropout's per-sample mask over the rank, its survivors scaled by 1 / (1 - p)."""
        out = self._org_forward(x)
        if self.module_dropout and torch.rand(1) < self.module_dropout:
            return out
        lx = self.lora_down(x.to(self.lora_down.weight.dtype))
        if self.dropout:
            lx = F.dropout(lx, p=self.dropout)
        scale = self.scale
        if self.rank_dropout:
            mask = torch.rand((lx.size(0), self.rank), device=lx.device) > self.rank_dropout
            if lx.dim() == 3:  # the text encoder's [batch, tokens, rank]
                mask = mask.unsqueeze(1)
            elif lx.dim() == 4:  # a convolution's [batch, rank, h, w]
                mask = mask.unsqueeze(-1).unsqueeze(-1)
            lx = lx * mask
            scale = self.scale / (1.0 - self.rank_dropout)  # as if the rank were smaller
        return out + (self.lora_up(lx) * self.multiplier * scale).to(out.dtype)

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
        if down.dim() == 4 and down.shape[2:] != (1, 1):  # a 3x3 down: up's 1x1 mixes its kernels
            return F.conv2d(down.permute(1, 0, 2, 3), up).permute(1, 0, 2, 3) * self.scale
        delta = up.flatten(1) @ down.flatten(1) * self.scale
        return delta.reshape(self.org_module.weight.shape)

    @torch.no_grad()
    def apply_max_norm(self, max_norm: float) -> tuple[bool, float]:
        """sd-scripts' max-norm rule for one module: the norm of up @ down x alpha / rank is
        clamped to max_norm by scaling up and down by the square root of the ratio each. Returns
        whether it scaled and the norm after."""
        full = self.delta_weight().norm()
        norm = full.clamp(min=max_norm / 2)
        ratio = float(torch.clamp(norm, max=max_norm) / norm)
        if ratio != 1:
            self.lora_up.weight.mul_(ratio ** 0.5)
            self.lora_down.weight.mul_(ratio ** 0.5)
        return ratio != 1, float(full) * ratio


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


class LoRANetwork(NetworkParts):
    """The LoRA modules of one model. Its state_dict() keys are the Kohya file keys:
    <name>.lora_down.weight, <name>.lora_up.weight, <name>.alpha for every module."""

    def __init__(self, unet: nn.Module, text_encoder: nn.Module, rank: int, alpha: float,
                 train_unet: bool = True, train_text_encoder: bool = True, multiplier: float = 1.0,
                 family: ModelFamily = SD15, conv_dim: int | None = None, conv_alpha: float | None = None,
                 lr_weights: list[float] | None = None, only: set[str] | None = None,
                 dropouts: dict[str, float | None] | None = None):
        super().__init__()
        if not (train_unet or train_text_encoder):
            raise FaceloraError("A LoRA must train the UNet, the text encoder, or both.")
        self.rank, self.alpha = int(rank), float(alpha)
        self.conv_dim, self.conv_alpha = conv_dim, (conv_alpha if conv_alpha is not None else 1.0)
        self.lr_weights = lr_weights  # Kohya's block-wise learning rates (blocks.py), or None
        targets = target_modules(unet if train_unet else None, text_encoder if train_text_encoder else None, family)
        if conv_dim and train_unet:
            targets.update(conv_target_modules(unet, family))
        self.loras: dict[str, LoRAModule] = {}
        for name, module in targets.items():
            if only is not None and name not in only:
                continue  # a file's network: the modules it has (a block-wise LoRA lacks some)
            if lr_weights is not None and name.startswith(family.unet_prefix) and lr_weights[block_index(name)] == 0:
                continue  # Kohya makes no module in a block that does not learn
            conv = is_conv_3x3(module)
            lora = LoRAModule(name, module, conv_dim if conv else self.rank,
                              self.conv_alpha if conv else self.alpha, multiplier, **(dropouts or {}))
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


    def load_kohya_state_dict(self, state_dict: dict[str, torch.Tensor]) -> None:
        """Load a LoRA file's tensors (network_weights, resume). The names, ranks and alpha must
        be this network's; any difference is an error that says what differs."""
        own = self.state_dict()
        check_state_dict(own, state_dict)
        for key, tensor in state_dict.items():
            alpha = self.loras[module_name(key)].alpha if key.endswith(".alpha") else None
            if alpha is not None and not math.isclose(float(tensor), float(alpha), rel_tol=1e-3):
                what = "conv_alpha" if self.loras[module_name(key)].lora_down.weight.dim() == 4 and \
                    is_conv_3x3(self.loras[module_name(key)].org_module) else "network_alpha"
                raise LoRAFileError("The LoRA has alpha {file_alpha:g}, the network {alpha:g}; set {what} to "
                                    "{file_alpha:g}.", file_alpha=float(tensor), alpha=float(alpha), what=what)
        self.load_state_dict({k: v.to(own[k].dtype) for k, v in state_dict.items()})

    def unet_parameter_blocks(self) -> dict[float, list[nn.Parameter]] | None:
        """With block-wise learning rates: the UNet's parameters by their block's lr weight."""
        if self.lr_weights is None:
            return None
        out: dict[float, list[nn.Parameter]] = {}
        for m in self.unet_loras:
            out.setdefault(self.lr_weights[block_index(m.lora_name)], []).extend(m.parameters())
        return out

    @torch.no_grad()
    def apply_max_norm_regularization(self, max_norm: float, device: torch.device) -> tuple[int, float, float]:
        """sd-scripts' scale_weight_norms after a step: every module's up @ down x alpha / rank
        kept at norm max_norm or below. Returns (keys scaled, mean norm, max norm) as Kohya logs."""
        results = [m.apply_max_norm(max_norm) for m in self.loras.values()]
        norms = [n for _, n in results]
        return sum(s for s, _ in results), sum(norms) / len(norms), max(norms)

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
    sd-scripts; conv_dim adds Kohya's LoCon (conv_alpha defaults to 1), down/mid/up_lr_weight the
    block-wise learning rates, neuron_dropout (network_dropout), rank_dropout and module_dropout
    sd-scripts' training-only dropouts."""
    check_args(network_args)
    check_probabilities({"network_dropout": neuron_dropout})
    conv_dim = int(network_args["conv_dim"]) if "conv_dim" in network_args else None
    conv_alpha = float(network_args.get("conv_alpha", 1.0)) if conv_dim else None
    return LoRANetwork(unet, text_encoder, 4 if network_dim is None else network_dim,
                       1.0 if network_alpha is None else network_alpha, train_unet=train_unet,
                       train_text_encoder=train_text_encoder, multiplier=multiplier, family=family,
                       conv_dim=conv_dim, conv_alpha=conv_alpha, lr_weights=block_lr_weights(network_args),
                       dropouts={"dropout": neuron_dropout, **{k: float(network_args[k]) for k in DROPOUT_ARGS
                                                               if k in network_args}})


def _one(values: set, what: str, file) -> float | None:
    if len(values) > 1:
        raise LoRAFileError("{file}: its modules have {what}s {values}; facelora's LoRA has one {what} for all "
                            "(one for the 3x3 convolutions).", file=file or "The weights", what=what,
                            values=sorted(values))
    return values.pop() if values else None


def create_network_from_weights(multiplier: float, file: str | Path | None, vae: nn.Module | None,
                                text_encoder: nn.Module, unet: nn.Module,
                                weights_sd: dict[str, torch.Tensor] | None = None, for_inference: bool = False, *,
                                family: ModelFamily = SD15, **kwargs) -> tuple[LoRANetwork, dict[str, torch.Tensor]]:
    """The LoRA a file (or weights_sd) holds: its ranks and alphas (one for Linear and 1x1
    modules, one for 3x3 convolutions) and the modules it adapts read from the weights, and the
    weights themselves, not yet loaded (network.load_kohya_state_dict). for_inference and kwargs
    are sd-scripts' arguments: this LoRA is the same for both uses."""
    if weights_sd is None:
        if file is None:
            raise LoRAFileError("create_network_from_weights needs a file or weights_sd.")
        weights_sd, _ = read_lora(file)
    downs = {module_name(k): v for k, v in weights_sd.items() if k.endswith(".lora_down.weight")}
    conv = {n for n, v in downs.items() if v.dim() == 4 and tuple(v.shape[2:]) != (1, 1)}
    alphas = {module_name(k): float(v) for k, v in weights_sd.items() if k.endswith(".alpha")}
    rank = _one({int(v.shape[0]) for n, v in downs.items() if n not in conv}, "rank", file)
    conv_dim = _one({int(downs[n].shape[0]) for n in conv}, "conv rank", file)
    alpha = _one({a for n, a in alphas.items() if n not in conv}, "alpha", file)
    conv_alpha = _one({a for n, a in alphas.items() if n in conv}, "conv alpha", file)
    if rank is None:
        raise LoRAFileError("{file}: no lora_down weights: not a LoRA.", file=file or "The weights")
    names = set(downs)
    network = LoRANetwork(unet, text_encoder, rank, alpha if alpha is not None else float(rank),
                          train_unet=any(n.startswith(family.unet_prefix) for n in names),
                          train_text_encoder=any(n.startswith(family.text_encoder_prefix) for n in names),
                          multiplier=multiplier, family=family, conv_dim=conv_dim,
                          conv_alpha=conv_alpha if conv_alpha is not None else (float(conv_dim) if conv_dim else None),
                          only=names)
    return network, weights_sd
