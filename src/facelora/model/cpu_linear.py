"""Linear products in fp32 on the CPU through oneDNN's matmul instead of MKL's sgemm.

PyTorch sends fp32 `addmm`/`mm` on the CPU to MKL. oneDNN, also inside PyTorch, multiplies the
shapes of SD1.5 training (4096 x 320 by 320 x 320, 1024 x 640 by 640 x 5120, ...) 10-50% faster
on AVX-512 machines, in exact fp32: bench/RESULTS.md has the figures. Its entry point is the
operator torch.compile uses for CPU linear layers, which has no autograd formula; `linear` adds
one: the input's gradient is again a oneDNN product, the weight's stays with MKL, which is the
faster of the two for that transposed shape.

`usable(x, weight)` says when it applies: fp32 tensors on the CPU, no autocast, and an operator
that works in this build of PyTorch (checked once against F.linear).
"""

from __future__ import annotations

import functools

import torch
from torch.nn import functional as F


@functools.cache
def _operator_works() -> bool:
    """Whether oneDNN's linear operator exists in this PyTorch and agrees with F.linear."""
    if not torch.backends.mkldnn.is_available() or not hasattr(torch.ops.mkldnn, "_linear_pointwise"):
        return False
    g = torch.Generator().manual_seed(0)
    x, w, b = (torch.randn(*shape, generator=g) for shape in ((8, 16), (4, 16), (4,)))
    try:
        y = _linear(x, w, b)
        y_add = _linear(x, w, None, add_to=y)
    except RuntimeError:
        return False
    expected = F.linear(x, w, b)
    return torch.allclose(y, expected, atol=1e-5) and torch.allclose(y_add, expected + F.linear(x, w), atol=1e-5)


def usable(x: torch.Tensor, weight: torch.Tensor) -> bool:
    return (x.device.type == "cpu" and x.dtype == weight.dtype == torch.float32
            and not torch.is_autocast_enabled("cpu") and _operator_works())


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
           add_to: torch.Tensor | None = None) -> torch.Tensor:
    """F.linear(x, weight, bias) (+ add_to), x of shape [..., in]."""
    x2 = x.reshape(-1, weight.shape[1])
    add2 = None if add_to is None else add_to.reshape(-1, weight.shape[0])
    return _OneDNNLinear.apply(x2, weight, bias, add2).view(*x.shape[:-1], weight.shape[0])


def _linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
            add_to: torch.Tensor | None = None) -> torch.Tensor:
    if add_to is not None:
        return torch.ops.mkldnn._linear_pointwise.binary(x, add_to, weight, bias, "add")
    return torch.ops.mkldnn._linear_pointwise(x, weight, bias, "none", [], "")


class _OneDNNLinear(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, add_to):  # type: ignore[override]
        # x is kept only when the weight learns (merged LoRA weights, LoRA down/up); a frozen
        # base weight's product needs just the weight for the input's gradient.
        ctx.save_for_backward(x if weight.requires_grad else None, weight)
        return _linear(x, weight, bias, add_to)

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        x, weight = ctx.saved_tensors
        need_x, need_w, need_b, need_add = ctx.needs_input_grad
        return (_linear(grad, weight.t(), None) if need_x else None,
                grad.t().mm(x) if need_w else None,
                grad.sum(0) if need_b else None,
                grad if need_add else None)
