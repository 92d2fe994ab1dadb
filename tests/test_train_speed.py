"""The fast step's parts: a frozen text encoder's outputs are computed once per caption; each
LoRA module computes its output in the cheaper of two equal forms; freed host memory is kept
for the next step while training on the CPU."""

from __future__ import annotations

import ctypes
import ctypes.util
import platform
import resource
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from facelora.config import TrainConfig
from facelora.model.base import load_base
from facelora.model import cpu_linear
from facelora.networks.lora import LoRAModule
from facelora.train.data import Batch
from facelora.train.host_memory import FreedMemoryReuse
from facelora.train.step import batch_loss, text_cache_for
from facelora.train.state import LoopState


def test_text_cache_only_when_the_text_encoder_is_frozen_and_captions_fixed():
    assert text_cache_for(TrainConfig(network_train_unet_only=True)) == {}
    assert text_cache_for(TrainConfig(network_train_unet_only=True, shuffle_caption=True)) is None
    assert text_cache_for(TrainConfig()) is None


def test_cached_caption_embeddings_give_the_same_loss_and_skip_the_text_encoder():
    model = load_base("tiny")
    model.unet.requires_grad_(False)
    model.text_encoder.requires_grad_(False)
    cfg = TrainConfig(network_train_unet_only=True, clip_skip=2)
    calls = []
    model.text_encoder.register_forward_hook(lambda *a: calls.append(1))
    batch = Batch([0, 1], ["ohwx man, smiling", "ohwx man"], latents=torch.randn(2, 4, 8, 8))
    cpu = torch.device("cpu")
    cache = text_cache_for(cfg)
    for step in range(3):
        state = LoopState(0, global_step=step)
        plain = batch_loss(model, batch, state, 0, 0, cfg, None, cpu)
        cached = batch_loss(model, batch, state, 0, 0, cfg, None, cpu, cache)
        assert torch.equal(plain, cached)
    assert set(cache) == {"ohwx man, smiling", "ohwx man"}
    assert len(calls) == 3 + 1  # every plain step, and the cached path once


def plain_lora(org: nn.Module, lora: LoRAModule, x: torch.Tensor) -> torch.Tensor:
    """Kohya's definition, written out: org(x) + up(down(x)) * multiplier * alpha / rank."""
    return org(x) + lora.lora_up(lora.lora_down(x)) * lora.multiplier * lora.scale


@pytest.mark.parametrize("merged", [True, False])
@pytest.mark.parametrize("kind", ["linear", "conv1x1"])
def test_both_forms_of_a_lora_module_match_kohyas_definition(kind, merged, monkeypatch):
    torch.manual_seed(0)
    if kind == "linear":
        org, x = nn.Linear(24, 40), torch.randn(2, 30, 24)
    else:
        org, x = nn.Conv2d(24, 40, 1), torch.randn(2, 24, 5, 6)
    org.requires_grad_(False)
    lora = LoRAModule("m", org, rank=8, alpha=4.0, multiplier=0.7)
    nn.init.normal_(lora.lora_up.weight)
    monkeypatch.setattr(LoRAModule, "_merging_is_cheaper", lambda *a: merged)

    def output_and_grads(forward):
        xi = x.clone().requires_grad_()
        out = forward(xi)
        (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
        grads = [xi.grad] + [p.grad.clone() for p in lora.parameters()]
        lora.zero_grad()
        return [out.detach()] + grads

    want = output_and_grads(lambda xi: plain_lora(org, lora, xi))
    lora.apply_to()
    got = output_and_grads(org)
    lora.remove()
    for g, w in zip(got, want):
        assert g.shape == w.shape
        torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("merged", [True, False])
@pytest.mark.parametrize("kind", ["linear", "conv1x1"])
def test_both_forms_work_under_the_cpus_bf16_autocast(kind, merged, monkeypatch):
    """--mixed_precision bf16 on the CPU: the products run in bf16 and the result matches fp32 to
    bf16's precision (8 bits), the gradients reaching the fp32 LoRA weights included."""
    torch.manual_seed(0)
    org, x = (nn.Linear(64, 96), torch.randn(2, 50, 64)) if kind == "linear" else (nn.Conv2d(64, 96, 1), torch.randn(2, 64, 7, 5))
    org.requires_grad_(False)
    lora = LoRAModule("m", org, rank=8, alpha=8.0)
    nn.init.normal_(lora.lora_up.weight, std=0.1)
    monkeypatch.setattr(LoRAModule, "_merging_is_cheaper", lambda *a: merged)
    want = plain_lora(org, lora, x)
    want.square().sum().backward()
    want_grads = [p.grad.clone() for p in lora.parameters()]
    lora.zero_grad()
    lora.apply_to()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = org(x)
    lora.remove()
    assert got.dtype == torch.bfloat16
    got.float().square().sum().backward()
    torch.testing.assert_close(got.float(), want.detach(), rtol=2e-2, atol=2e-2)
    for p, w in zip(lora.parameters(), want_grads):
        assert p.grad.dtype == torch.float32
        assert torch.nn.functional.cosine_similarity(p.grad.flatten(), w.flatten(), dim=0) > 0.99


@pytest.mark.parametrize("with_bias", [True, False])
@pytest.mark.parametrize("add", [True, False])
def test_onednn_linear_matches_f_linear_with_gradients(with_bias, add):
    """cpu_linear.linear, the oneDNN product LoRA modules use for fp32 on the CPU: output and every
    gradient equal F.linear's (+ add_to), and only the gradients asked for are computed."""
    assert platform.machine() not in ("x86_64", "AMD64") or cpu_linear._operator_works(), \
        "oneDNN's linear operator is missing or wrong in this PyTorch build"
    torch.manual_seed(0)
    x = torch.randn(3, 70, 48, requires_grad=True)
    w = torch.randn(36, 48, requires_grad=True)
    b = torch.randn(36, requires_grad=True) if with_bias else None
    other = torch.randn(3, 70, 36, requires_grad=True) if add else None
    inputs = [t for t in (x, w, b, other) if t is not None]
    probe = torch.linspace(-1, 1, 3 * 70 * 36).view(3, 70, 36)

    def run(fn):
        out = fn()
        return [out.detach(), *torch.autograd.grad((out * probe).sum(), inputs)]

    want = run(lambda: F.linear(x, w, b) + (other if add else 0))
    got = run(lambda: cpu_linear.linear(x, w, b, other))
    for g, e in zip(got, want):
        torch.testing.assert_close(g, e, rtol=1e-5, atol=1e-4)
    frozen = w.detach()
    out = cpu_linear.linear(x, frozen, None)
    (grad_x,) = torch.autograd.grad(out.sum(), [x])
    torch.testing.assert_close(grad_x, torch.ones(3, 70, 36) @ frozen)


def test_onednn_linear_only_for_fp32_on_the_cpu_without_autocast():
    x, w = torch.randn(4, 8), torch.randn(5, 8)
    assert cpu_linear.usable(x, w) == cpu_linear._operator_works()
    assert not cpu_linear.usable(x.bfloat16(), w.bfloat16())
    assert not cpu_linear.usable(x, w.double())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert not cpu_linear.usable(x, w)


def test_merging_is_chosen_where_it_saves_work():
    lora = LoRAModule("m", nn.Linear(320, 320), rank=128, alpha=64)
    with torch.enable_grad():
        assert lora._merging_is_cheaper(64 * 64, 320, 320, True)  # SD1.5's first level at 512 px
        assert not lora._merging_is_cheaper(16 * 16, 1280, 1280, True)  # its third level
        assert not lora._merging_is_cheaper(77, 768, 768, True)  # the text encoder
    with torch.no_grad():  # samples: merging costs r in out, the factors t r (in + out)
        assert lora._merging_is_cheaper(32 * 32, 1280, 1280, True)
        assert not lora._merging_is_cheaper(16 * 16, 1280, 1280, True)


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc's thresholds are glibc's")
def test_freed_memory_is_kept_while_training_on_the_cpu_and_returned_after():
    """malloc's heap is the process's: after the rest of the suite, earlier allocations decide
    where a freed block lands, so the check runs in a fresh interpreter."""
    code = f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import test_train_speed as t; t.freed_memory_check()"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr


def freed_memory_check() -> None:
    torch.set_num_threads(1)
    reuse = FreedMemoryReuse().install("cuda")
    assert not reuse.active  # on a GPU the host's allocations are few: left alone
    reuse = FreedMemoryReuse().install("cpu")
    assert reuse.active
    try:
        kept = faults_of_a_second_64_mib_block()
    finally:
        reuse.uninstall()
    assert not reuse.active
    assert kept < 1000  # the freed block came back from malloc's heap
    assert mmapped_bytes_of_two_64_mib_blocks() >= 2**26  # glibc's default again: mmapped anew


class _Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                 "keepcost")]


def mmapped_bytes_of_two_64_mib_blocks() -> int:
    """How many more bytes malloc holds in mmapped blocks while two 64 MiB tensors are alive
    (mallinfo2's hblkhd). One may reuse a free chunk of the heap (malloc_trim cannot always give
    the heap's top back: where the address layout kept the heap from growing in one piece, glibc
    cannot shrink it), the other needs new memory, which above the mmap threshold is an mmap.
    Counted by malloc itself, so transparent huge pages and memory pressure, which change page
    faults, do not change it."""
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    libc.mallinfo2.restype = _Mallinfo2
    before = libc.mallinfo2().hblkhd
    blocks = [torch.empty(2**24).fill_(1) for _ in range(2)]
    grown = libc.mallinfo2().hblkhd - before
    del blocks
    return grown


def faults_of_a_second_64_mib_block() -> int:
    """Page faults of allocating and filling 64 MiB again, after the heap has settled."""
    faults = []
    for _ in range(4):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        torch.empty(2**24).fill_(1)
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    return faults[-1]
