"""Per-photo face analysis on several processes: dlib's calls hold the CPU one photo at a time, so a
set of photos goes to a small pool of processes and comes back in the order it went in.

The pool uses the 'spawn' start method (torch may already be loaded in the parent, and forking
it is unsafe); each worker loads dlib's models once. Starting a worker costs about 1.8 s of CPU
(python, the imports, dlib's models; bench/RESULTS.md), more than a dozen photos' worth of
saving on two cores, so smaller jobs stay in this process. FACELORA_WORKERS sets the number of
processes (1: no pool); the default, `auto`, is the cores this process may use. On an idle
2-core machine two processes prepare 13 photos in 0.452 s of wall time a photo against 0.55 s
in one, and score a 60-cell grid in 0.203 s a cell against 0.296 (bench/RESULTS.md, "Worker
processes"); on a machine loaded by other work the pool only adds its start cost. Inside `shared()` (a run's
prepare and score) every job uses one pool, so its workers start once and keep their models.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from concurrent.futures.process import BrokenProcessPool
from typing import TypeVar

from .errors import ConfigError

T = TypeVar("T")
R = TypeVar("R")

ENV = "FACELORA_WORKERS"
MIN_ITEMS = 12  # fewer items than this are done here: the pool's start would cost more than it gives


def cores() -> int:
    """The cores this process may run on (its affinity mask where the OS has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def worker_count(requested: int | None = None) -> int:
    """`requested`, else FACELORA_WORKERS (a number, or `auto`: the cores this process may run
    on), else `auto`; at least 1."""
    if requested is None:
        env = os.environ.get(ENV, "").strip().lower() or "auto"
        if env == "auto":
            requested = cores()
        elif env:
            try:
                requested = int(env)
            except ValueError:
                raise ConfigError("{name} must be a whole number of processes or 'auto', not '{env}'", name=ENV,
                                  env=env) from None
    return max(1, requested or 1)


class _Shared:
    """The pool a shared() block lends its jobs, started by the first job that needs one."""

    def __init__(self, workers: int):
        self.workers = workers
        self.executor: ProcessPoolExecutor | None = None


_shared: _Shared | None = None


@contextmanager
def shared(workers: int | None = None) -> Iterator[None]:
    """Every ordered() job inside runs on one pool of `workers` processes (worker_count), started
    when the first job needs it and stopped at the end; a block inside another uses the outer's."""
    global _shared
    if _shared is not None:
        yield
        return
    _shared = _Shared(worker_count(workers))
    try:
        yield
    finally:
        held, _shared = _shared, None
        if held.executor is not None:
            held.executor.shutdown(cancel_futures=True)


def _new_pool(n: int) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(n, mp_context=multiprocessing.get_context("spawn"))


def _pool(n: int) -> tuple[ProcessPoolExecutor, bool]:
    """The shared() block's pool (started now if it is not yet), else a new one of `n` processes;
    and whether the caller owns it (shuts it down)."""
    if _shared is None:
        return _new_pool(n), True
    if _shared.executor is None:
        _shared.executor = _new_pool(max(n, _shared.workers))
    return _shared.executor, False


def _drop(executor: ProcessPoolExecutor) -> None:
    """A broken pool is not lent again: the next job starts another."""
    if _shared is not None and _shared.executor is executor:
        _shared.executor = None
    executor.shutdown(wait=False, cancel_futures=True)


def ordered(fn: Callable[[T], R], items: Iterable[T], workers: int | None = None,
            beside: bool = False) -> Iterator[R]:
    """fn(item) for each item, in the items' order. With more than one worker and enough items,
    fn runs in worker processes (it and its items and results must pickle); otherwise here.
    `beside`: this process works on each result too, so it counts as one of the workers."""
    items = list(items)
    n = min(worker_count(workers) - beside, len(items))
    if n < 1 or (n == 1 and not beside) or len(items) < MIN_ITEMS:
        yield from map(fn, items)
        return
    pool, owned = _pool(n)
    futures: list[Future] = [pool.submit(fn, it) for it in items]
    try:
        for i, f in enumerate(futures):
            try:
                yield f.result()
            except BrokenProcessPool:  # a worker died (memory, a script without a main guard)
                _drop(pool)
                owned = False
                yield from map(fn, items[i:])  # the rest here: slower, but the same results
                return
    finally:
        for f in futures:
            f.cancel()
        if owned:
            pool.shutdown()
