"""One job of a kind at a time per project, whoever started it: the GUI (gui/jobs.py starts
`python -m facelora ...` processes) or a person at a terminal (the CLI's prepare, train, grid,
score and run hold the same lock while they work). The GUI shows a job as running, and refuses a
conflicting one, from these files alone.

Per project and job kind, under PROJECT/log/:
  <kind>.lock   JSON {pid, kind, command, started, start_time} while the job runs
  <kind>.last   JSON of the lock of the last finished job, with its exit code when known
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .errors import FaceloraError
from .fileio import atomic_write_json, clear_write_errors, read_json
from .project import Project

# Jobs that must not run beside each other in one project: training reads the image folder that
# prepare rewrites, and a grid reads the files training is still writing.
CONFLICTS = {"train": ("prepare",), "prepare": ("train",), "grid": (), "score": ("grid",)}
STALE_START_S = 60  # a lock without a pid older than this is left from a crash while starting


class JobError(FaceloraError):
    """A job that cannot start or stop, with what to do."""


# --- processes ----------------------------------------------------------------------------------

children: dict[int, subprocess.Popen] = {}  # processes this GUI started, so they can be reaped


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (state first); None without /proc."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def proc_start_time(pid: int) -> str | None:
    """The kernel's start time of a process (field 22 of /proc/PID/stat), to tell it from a later
    process that reuses the pid. None where /proc does not exist."""
    fields = _stat(pid)
    return fields[19] if fields else None


def alive(pid: int, start_time: str | None = None) -> bool:
    child = children.get(pid)
    if child is not None:
        return child.poll() is None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    fields = _stat(pid)
    if fields is None:
        return True  # no /proc: os.kill said it exists
    if fields[0] == "Z":
        return False
    return start_time is None or fields[19] == start_time


def returncode(pid: int) -> int | None:
    """The exit code of a finished child of this GUI (forgotten once read); None for others."""
    child = children.pop(pid, None)
    return child.returncode if child is not None else None


# --- lock files ---------------------------------------------------------------------------------


def lock_path(project: Project, kind: str) -> Path:
    return project.job_lock(kind)


def live_lock(project: Project, kind: str) -> dict[str, Any] | None:
    """The lock of a running job of this kind; a lock left by a job that ended is moved to
    `<kind>.last` (with its exit code when this GUI started it)."""
    path = lock_path(project, kind)
    lock = read_json(path)
    if lock is None:
        if path.exists() and time.time() - path.stat().st_mtime > STALE_START_S:
            path.unlink(missing_ok=True)  # unreadable and old: left by a crash while writing
        return None if not path.exists() else {"pid": None, "started": path.stat().st_mtime}
    pid = lock.get("pid")
    if pid is None:
        if time.time() - float(lock.get("started", 0)) < STALE_START_S:
            return lock  # another request is starting it right now
    elif alive(pid, lock.get("start_time")):
        return lock
    lock["returncode"] = returncode(pid) if pid else None
    lock["ended"] = time.time()
    atomic_write_json(project.job_last(kind), lock)
    path.unlink(missing_ok=True)
    return None


def acquire(project: Project, kind: str, command: list[str]) -> Path:
    """Create the `kind` lock (pid still empty), or refuse when that job or a conflicting one runs."""
    for other in (kind, *CONFLICTS.get(kind, ())):
        lock = live_lock(project, other)
        if lock is not None:
            if other != kind:
                raise JobError("A {other} job is already running for this project (process {pid}); {kind} cannot "
                               "run beside it. Wait for it to end, or stop it first.", other=other,
                               pid=lock.get("pid") or "starting", kind=kind)
            raise JobError("A {kind} job is already running for this project (process {pid}). Wait for it to "
                           "end, or stop it first.", kind=kind, pid=lock.get("pid") or "starting")
    path = lock_path(project, kind)
    try:
        with clear_write_errors(path):
            project.log_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump({"pid": None, "kind": kind, "command": command, "started": time.time()}, f)
    except FileExistsError:
        raise JobError("A {kind} job is just starting for this project; wait a moment.", kind=kind) from None
    return path


def hold(path: Path, kind: str, command: list[str], pid: int) -> None:
    atomic_write_json(path, {"pid": pid, "kind": kind, "command": command, "started": time.time(),
                             "start_time": proc_start_time(pid)})


@contextmanager
def running_here(project: Project, kind: str, what: str) -> Iterator[None]:
    """Hold the `kind` lock while this process does the job itself (prepare runs inside the GUI,
    to show its progress bar), so a job that conflicts with it is refused meanwhile."""
    command = [what]
    path = acquire(project, kind, command)
    try:
        hold(path, kind, command, os.getpid())
        yield
    finally:
        path.unlink(missing_ok=True)


GUI_JOB_ENV = "FACELORA_JOB"  # set by the GUI in the job it starts: that job's lock is held already


@contextmanager
def held(project: Project, kind: str, what: str) -> Iterator[None]:
    """running_here for a command typed at a terminal; nothing in a job the GUI started (the GUI
    holds its lock) or in the processes of a multi-process run (their launcher holds it)."""
    if os.environ.get(GUI_JOB_ENV) == kind or "LOCAL_RANK" in os.environ:
        yield
        return
    with running_here(project, kind, what):
        yield

