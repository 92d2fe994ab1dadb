"""How lycoris' modules compute while facelora trains: without a weight-sized tensor per module.

lycoris' default ("rebuild") forward makes each module's whole new weight every step, runs the
original layer and then the layer's operation a second time with the weight's change:
base(x) + op(x, W' - W). Autograd keeps each W' - W for the backward pass, so an SD1.5 network
holds about the UNet's size again (2.6 GiB measured at 64 px for LoCon) and every convolution
and product runs twice. The same outputs come cheaper:

- LoCon, LoHa, LoKr without DoRA: lycoris' own bypass_mode, W x + delta(x), which is the same
  sum (the rebuild form's outputs, to rounding).
- DoRA (algo=lora, dora_wd=True, lycoris' default wd_on_output): lycoris' bypass_mode leaves the
  weight decomposition out (its bypass forward never reads dora_scale), so facelora computes it
  itself. lycoris' W' = c * (W + s B A) per output row, c = mult (m / |W + s B A| - 1) + 1, is
  applied to the outputs: y = c * (W x + s B (A x)) + bias, with the row norms from
  |W_o|^2 + 2 s (B o (W A^T))_o + s^2 (B o (B A A^T))_o, which are out x rank products, so the
  gradient still flows through the norm exactly as in lycoris.

Where the forms differ in training (dropout, rank_dropout: lycoris drops other things in
each form), with tucker or grouped convolutions, the module keeps lycoris' own forward.
"""

from __future__ import annotations

import types

import torch
from torch import nn


def choose_forward(module: nn.Module) -> str:
    """Which forward a lycoris module gets: "bypass", "dora" or "rebuild" (lycoris' own)."""
    org = module.org_module[0]
    if _drops(module) or getattr(module, "tucker", False) or getattr(org, "groups", 1) != 1:
        return "rebuild"
    if getattr(module, "wd", False):
        dora_ready = type(module).__name__ == "LoConModule" and module.wd_on_out
        return "dora" if dora_ready else "rebuild"
    return "bypass"


def _drops(module: nn.Module) -> bool:
    """Dropout of any kind: lycoris' rebuild and bypass forms drop different things."""
    dropout = getattr(module, "dropout", 0)
    return (float(getattr(module, "rank_dropout", 0) or 0) > 0 or isinstance(getattr(module, "drop", None), nn.Dropout)
            or isinstance(dropout, nn.Dropout) or (isinstance(dropout, (int, float)) and dropout > 0))


def use_cheap_forwards(modules) -> dict[str, int]:
    """Each module switched to its cheaper equivalent form; returns how many got each."""
    counts: dict[str, int] = {}
    for module in modules:
        form = choose_forward(module)
        if form == "bypass":
            module.bypass_mode = True
        elif form == "dora":
            module.forward = types.MethodType(dora_forward, module)
        counts[form] = counts.get(form, 0) + 1
    return counts


def row_norms(module: nn.Module) -> torch.Tensor:
    """|W + s B A| per output row (fp32, with lycoris' eps), W the original weight, B A the
    module's rank-r change, without making W + s B A."""
    weight = module.org_module[0].weight.detach().flatten(1)
    down = module.lora_down.weight.flatten(1)
    up = module.lora_up.weight.flatten(1).float()
    s = module.scale * module.scalar.float()
    with torch.autocast(weight.device.type, enabled=False):
        cross = (weight @ down.to(weight.dtype).t()).float()  # W A^T, out x r
        down = down.float()
        gram = down @ down.t()  # A A^T, r x r
        squared = (torch.linalg.vector_norm(weight.float(), dim=1) ** 2 + 2 * s * (up * cross).sum(1)
                   + s * s * ((up @ gram) * up).sum(1))
    return squared.clamp_min(0).sqrt() + torch.finfo(torch.float32).eps


def _on_the_layer_itself(module: nn.Module) -> bool:
    """No other network's module between this one and its layer (its base is the layer's own)."""
    org = module.org_module[0]
    return getattr(module.org_forward, "__func__", None) is type(org).forward and module.org_forward.__self__ is org


def dora_forward(self: nn.Module, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
    """lycoris' DoRA LoConModule forward (wd_on_output) as c * (W x + s B (A x)) + bias; lycoris'
    own when another network sits on the same layer (its output is then the base)."""
    if self.module_dropout and self.training and torch.rand(1) < self.module_dropout:
        return self.org_forward(x, *args, **kwargs)
    if not _on_the_layer_itself(self):
        return type(self).forward(self, x, *args, **kwargs)
    org = self.org_module[0]
    factor = self.dora_scale.flatten().float() / row_norms(self)
    if self.multiplier != 1:
        factor = self.multiplier * (factor - 1) + 1
    base = self.op(x, org.weight, None, **self.kw_dict)
    out = base + self.bypass_forward_diff(x, scale=1)
    factor = factor.view(-1, *[1] * (out.dim() - 2)) if self.isconv else factor
    out = out * factor.to(out.dtype)
    if org.bias is not None:
        bias = org.bias.to(out.dtype)
        out = out + (bias.view(-1, *[1] * (out.dim() - 2)) if self.isconv else bias)
    return out.to(base.dtype)
