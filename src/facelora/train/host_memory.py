"""Freed host memory kept for the next step while a model trains on the CPU.

A training step allocates and frees the same activation tensors every step. glibc's malloc
serves each block above its mmap threshold (128 KiB, rising to at most 32 MiB) with a fresh
mmap and gives it back to the kernel on free, so every step faults its activations' pages in
anew: at 512 px about 0.9 million page faults (3.5 GB) a step, some 8% of the step's time
(bench/RESULTS.md). With the mmap and trim thresholds raised, freed blocks stay in malloc's heap
and the next step reuses them; peak resident memory stays the same, since the same tensors are
alive at the peak. When training ends the thresholds go back to glibc's defaults and the kept
memory is returned (malloc_trim), so a long-lived process does not hold it; glibc cannot give
back a main heap's top where the address layout kept the heap from growing in one piece (it is
reused by the next allocations instead). The GUI trains in a child process either way.

Other C libraries (macOS, Windows, musl) are left as they are.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform

import torch

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)
KEEP = 2**31 - 1  # the largest value mallopt takes (an int)
GLIBC_DEFAULT = 128 * 1024


class FreedMemoryReuse:
    """install() raises the thresholds (on the CPU, with glibc); uninstall() restores them and
    trims the heap. Both are safe to call when nothing was changed."""

    def __init__(self) -> None:
        self._libc: ctypes.CDLL | None = None

    def install(self, device: torch.device | str) -> "FreedMemoryReuse":
        if torch.device(device).type != "cpu" or platform.libc_ver()[0] != "glibc":
            return self
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        if libc.mallopt(M_MMAP_THRESHOLD, KEEP) and libc.mallopt(M_TRIM_THRESHOLD, KEEP):
            self._libc = libc
        return self

    def uninstall(self) -> None:
        if self._libc is None:
            return
        self._libc.mallopt(M_MMAP_THRESHOLD, GLIBC_DEFAULT)
        self._libc.mallopt(M_TRIM_THRESHOLD, GLIBC_DEFAULT)
        self._libc.malloc_trim(0)
        self._libc = None

    def __enter__(self) -> "FreedMemoryReuse":
        return self

    def __exit__(self, *exc: object) -> None:
        self.uninstall()

    @property
    def active(self) -> bool:
        return self._libc is not None
