"""What every benchmark prints about the machine it ran on: figures mean little without it."""

from __future__ import annotations

import os
import platform
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
