"""Time per step and peak memory of a training run, estimated before it starts.

Two parts: per-step figures measured with bench/train_step.py (SD1.5-architecture model, LoRA on
the UNet and the text encoder, batch 1, cached latents, AdamW), keyed by the device they were
measured on and the resolution; and a simple model of memory: the weights, the LoRA's training
state (weights, gradients and AdamW's two moments: 16 bytes a parameter) and the activations,
which grow with the pixels of a batch. Another resolution or batch scales a measured figure by
its pixels; a device without measured figures gets a memory estimate and no time.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .config import TrainConfig
from .vram import GIB, cuda_available, model_sizes

RUNTIME_GIB = 0.8  # Python, torch, diffusers and transformers themselves (measured at 128 px)
BENCH_RANK = 128


@dataclass(frozen=True)
class Measured:
    """One figure from bench/train_step.py: facelora's step on `device` at `resolution` px."""

    device: str  # device_kind() of the machine it was measured on
    resolution: int
    precision: str  # "fp32" | "bf16"
    checkpointing: bool
    step_s: float  # median seconds per optimizer step
    peak_gib: float  # peak resident memory of the process (peak GPU memory on CUDA)
    source: str  # the command that measured it (its JSON output is in bench/RESULTS.md)


COMPARE = "python bench/train_step.py --compare-reference --threads 2 --no-flops --steps 5 --rounds 3"
TABLE = "python bench/train_step.py --threads 2 --no-flops --rounds 1 --steps 3"
EPYC_2 = "cpu: AMD EPYC x2, 2 threads"
MEASURED: tuple[Measured, ...] = (
    Measured(EPYC_2, 512, "fp32", False, 12.62, 7.454, COMPARE),
    Measured(EPYC_2, 512, "bf16", False, 8.194, 8.071, COMPARE),
    Measured(EPYC_2, 512, "fp32", True, 16.745, 6.109, TABLE + " --sizes 512 --checkpointing"),
    Measured(EPYC_2, 256, "fp32", False, 3.212, 5.934, TABLE + " --sizes 256"),
    Measured(EPYC_2, 256, "fp32", True, 4.652, 5.508, TABLE + " --sizes 256"),
)


def device_kind(device: str | None = None, threads: int | None = None) -> str:
    """'cuda: <GPU name>' or 'cpu: <CPU model> x<cores>, <n> thread(s)': the key of MEASURED."""
    import torch

    if _on_cuda(device):
        return f"cuda: {torch.cuda.get_device_name()}"
    threads = threads or torch.get_num_threads()
    return f"{cpu_machine()}, {threads} thread{'s' if threads > 1 else ''}"


def _on_cuda(device: str | None) -> bool:
    return (device or ("cuda" if cuda_available() else "cpu")).startswith("cuda")


def cpu_machine() -> str:
    """'cpu: <CPU model> x<cores>': device_kind without the thread count."""
    return f"cpu: {cpu_model()} x{os.cpu_count()}"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or "unknown CPU"


@dataclass
class Estimate:
    step_s: float | None  # None: nothing measured on this device
    total_s: float | None
    peak_gib: float
    basis: str  # what the figures come from

    def summary(self) -> str:
        time = f"about {self.step_s:.2g} s a step ({_duration(self.total_s)} in all)" if self.step_s is not None \
            else "step time not measured on this device"
        return f"Estimate: {time}, peak memory about {self.peak_gib:.1f} GiB ({self.basis})."

    def lines(self) -> list[str]:
        time = (f"about {self.step_s:.2g} s a step, {_duration(self.total_s)} in all" if self.step_s is not None
                else "no measured step time for this device (python bench/train_step.py measures one)")
        return [f"estimated time: {time}", f"estimated peak memory: about {self.peak_gib:.1f} GiB", f"({self.basis})"]


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    h, rest = divmod(int(round(seconds)), 3600)
    return f"{h} h {rest // 60:02d} min" if h else f"{max(1, rest // 60)} min"


def _same_machine(a: str, b: str) -> bool:
    """The same CPU model and core count, whatever the thread count."""
    return a.startswith("cpu:") and a.split(",")[0] == b.split(",")[0]


def _measured_here(rows: list[Measured], cuda: bool) -> list[Measured]:
    """The rows measured on this device: its exact device_kind, else the same CPU at another
    thread count. torch is loaded only where it tells rows apart (a GPU's name, or the thread
    count between rows of this CPU), so a plan on a CPU needs none."""
    if cuda:
        kind = device_kind("cuda")
        return [m for m in rows if m.device == kind]
    same = [m for m in rows if _same_machine(m.device, cpu_machine())]
    if len({m.device for m in same}) > 1:
        kind = device_kind("cpu")
        return [m for m in same if m.device == kind] or same
    return same


def _precision(cfg: TrainConfig, cuda: bool) -> str:
    if cfg.mixed_precision == "bf16" or (cuda and cfg.mixed_precision == "fp16"):
        return cfg.mixed_precision
    return "fp32"  # fp16 on the CPU trains in fp32 (config.check)


def fixed_gib(cfg: TrainConfig, cuda: bool, with_vae: bool = True) -> float:
    """Memory that does not grow with the batch: the frozen weights (half precision on CUDA when
    mixed precision is on; the VAE stays fp32) and the LoRA's training state."""
    weight_bytes = 2 if cuda and cfg.mixed_precision in ("fp16", "bf16") else 4
    sizes = model_sizes()
    base = (sizes.unet + sizes.text_encoder) * weight_bytes + (sizes.vae * 4 if with_vae else 0)
    lora = sizes.lora_parameters(cfg.network_dim, cfg.train_unet, cfg.train_text_encoder)
    return (base + 16 * lora) / GIB + (0 if cuda else RUNTIME_GIB)


def estimate(cfg: TrainConfig, total_steps: int, device: str | None = None,
             table: tuple[Measured, ...] = MEASURED) -> Estimate:
    """The time per optimizer step, the whole run's time (`total_steps`: the plan's, from
    facelora.plan.plan_for) and the peak memory of `cfg` on this machine (or `device`), from the
    measured figure nearest to it."""
    cuda = _on_cuda(device)
    precision = _precision(cfg, cuda)
    w, h = cfg.resolution_wh
    pixels = w * h * cfg.train_batch_size
    rows = [m for m in table if m.precision == precision and m.checkpointing == cfg.gradient_checkpointing] \
        or [m for m in table if m.precision == precision] or list(table)
    here = _measured_here(rows, cuda)
    pool = here or [m for m in rows if m.device.startswith("cuda") == cuda] or rows
    if not pool:
        return Estimate(None, None, fixed_gib(cfg, cuda), "no measured figures")
    row = min(pool, key=lambda m: abs(m.resolution**2 - w * h))
    scale = pixels / row.resolution**2
    bench = TrainConfig(network_dim=BENCH_RANK, network_alpha=BENCH_RANK // 2, mixed_precision=cfg.mixed_precision)
    activations = max(0.0, row.peak_gib - fixed_gib(bench, cuda, with_vae=False))
    peak = fixed_gib(cfg, cuda) + activations * scale
    # an optimizer step (what the plan counts) runs gradient_accumulation_steps batches
    step_s = row.step_s * scale * cfg.gradient_accumulation_steps if here else None
    basis = (f"measured {row.step_s:.3g} s and {row.peak_gib:.2f} GiB a step at {row.resolution} px, "
             f"{row.precision}{', checkpointing' if row.checkpointing else ''}, on {row.device}, scaled by "
             f"pixels x batch{' x gradient accumulation' if cfg.gradient_accumulation_steps > 1 else ''}; "
             f"source: {row.source}")
    return Estimate(step_s, step_s * total_steps if step_s is not None else None, peak, basis)
