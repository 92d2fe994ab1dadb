"""What every benchmark prints about the machine it ran on: figures mean little without it."""

from __future__ import annotations

import os
import platform
import resource
import time
from pathlib import Path


def machine(**extra) -> dict:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform(),
            # other processes slow these figures down; this says how busy the machine was
            "load_average": [round(x, 2) for x in os.getloadavg()], **extra}


# Dense (no sparsity) bf16 tensor-core peaks in FLOP/s, from the vendors' data sheets (SXM parts
# for H100/H200/A100); fp16 is the same on these cards. Looked up by a name the GPU's contains.
DENSE_BF16_PEAKS = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "RTX 4090": 165e12, "RTX 3090": 71e12}


def dense_bf16_peak(gpu_name: str | None) -> float | None:
    """The GPU's dense bf16 peak FLOP/s, or None for a GPU not in the table."""
    return next((v for k, v in DENSE_BF16_PEAKS.items() if gpu_name and k in gpu_name), None)


def cpu_seconds() -> float:
    """This process's CPU time and that of its finished children (facelora's worker processes,
    counted once their pool has closed)."""
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + kids.ru_utime + kids.ru_stime
