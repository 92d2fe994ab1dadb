"""Long jobs (training, grids) run as their own process: `python -m facelora <verb> PROJECT ...`,
the same command a person would type. The GUI only starts, stops and watches them, so closing or
reloading the browser (or restarting the GUI) leaves a job running, and the page shows its state
again from the files the job writes.

One job of a kind at a time per project: the lock files are facelora.locks' (a command typed at a
terminal holds them too, so the page shows it as well). Per project and job kind, the job's
terminal output (the log tail the page shows) goes to PROJECT/log/<kind>.out, and the options the
page chose to PROJECT/log/<kind>.options.json (the job reads them from there).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .. import events as ev
from pydantic import BaseModel

from .. import locks
from ..fileio import atomic_write_json, atomic_write_text, read_json
from ..locks import JobError, lock_path
from ..messages import Message
from ..project import Project


def facelora_command(*args: str) -> list[str]:
    """The command line of a facelora step, run by this Python (so the same installation)."""
    return [sys.executable, "-m", "facelora", *args]


@dataclass
class JobState:
    kind: str
    running: bool
    pid: int | None = None
    command: list[str] = field(default_factory=list)
    started: float | None = None
    stop_requested: float | None = None
    returncode: int | None = None  # of the last finished job, when this GUI saw it end
    output: str = ""  # the tail of the job's terminal output


def output_path(project: Project, kind: str) -> Path:
    return project.job_output(kind)


def tail(path: Path, lines: int = 30, max_bytes: int = 64 * 1024) -> str:
    """The last lines of a text file (progress bars' carriage returns keep only their last state)."""
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - max_bytes))
            data = f.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    text = data.replace("\r\n", "\n").rstrip("\n")
    out = [line.rsplit("\r", 1)[-1] for line in text.split("\n")]
    return "\n".join(out[-lines:])


def state(project: Project, kind: str, lines: int = 30) -> JobState:
    lock = locks.live_lock(project, kind)
    out = tail(output_path(project, kind), lines)
    if lock is not None:
        return JobState(kind, True, lock.get("pid"), lock.get("command", []), lock.get("started"),
                        lock.get("stop_requested"), None, out)
    last = read_json(project.job_last(kind)) or {}
    return JobState(kind, False, last.get("pid"), last.get("command", []), last.get("started"),
                    last.get("stop_requested"), last.get("returncode"), out)


def options_path(project: Project, kind: str) -> Path:
    return project.log_dir / f"{kind}.options.json"


def chosen_options(project: Project, kind: str) -> dict[str, Any]:
    """The options the page gave the project's running (or last) `kind` job."""
    return read_json(options_path(project, kind)) or {}


def start(project: Project, kind: str, args: list[str], env: dict[str, str] | None = None,
          options: BaseModel | None = None) -> JobState:
    """Start `python -m facelora <args>` as the project's `kind` job, or refuse when one runs.
    `options` (the step's options model) reach the job as a file, PROJECT/log/<kind>.options.json,
    given to it with `--options-file`: the command reads the same model the GUI filled in."""
    if options is not None:
        args = [*args, "--options-file", str(options_path(project, kind))]
    command = facelora_command(*args)
    path = locks.acquire(project, kind, command)
    if options is not None:  # written under the lock: a running job's file is never replaced
        try:
            atomic_write_text(options_path(project, kind), options.model_dump_json(indent=1))
        except BaseException:
            path.unlink(missing_ok=True)
            raise
    try:
        with output_path(project, kind).open("wb") as out:
            child = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                cwd=project.root, env={**os.environ, "PYTHONUNBUFFERED": "1", locks.GUI_JOB_ENV: kind, **(env or {})},
                start_new_session=True,  # its own process group: the GUI's Ctrl-C is not the job's
            )
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    locks.children[child.pid] = child
    locks.hold(path, kind, command, child.pid)
    threading.Thread(target=echo, args=(output_path(project, kind), kind, child), daemon=True).start()
    return state(project, kind)


def echo(path: Path, kind: str, child: subprocess.Popen, out: Any = None, every_s: float = 0.5) -> None:
    """Copy a job's output to the terminal that runs the GUI while the job lives, as kohya_ss
    shows training there (progress bars included: their carriage returns pass through)."""
    out = out or sys.stdout
    out.write(f"[facelora gui] {kind} started (process {child.pid}): {path} follows\n")
    out.flush()
    offset = 0
    while True:
        ended = child.poll() is not None
        try:
            with path.open("rb") as f:
                f.seek(offset)
                data = f.read()
        except OSError:
            data = b""
        if data:
            offset += len(data)
            out.write(data.decode("utf-8", errors="replace"))
            out.flush()
        if ended:
            break
        time.sleep(every_s)
    out.write(f"\n[facelora gui] {kind} ended (exit code {child.returncode}).\n")
    out.flush()


def stop(project: Project, kind: str, wait_s: float = 30.0) -> JobState:
    """Ask the job to stop as Ctrl-C does (SIGINT: training saves what it has and exits), then wait
    up to `wait_s`. Asked a second time, a job that is still running is ended with SIGTERM."""
    lock = locks.live_lock(project, kind)
    if lock is None or not lock.get("pid"):
        raise JobError("No {kind} job is running for this project.", kind=kind)
    pid = lock["pid"]
    sig = signal.SIGTERM if lock.get("stop_requested") is not None else signal.SIGINT
    try:
        os.killpg(pid, sig)  # a job this GUI started leads its own process group
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(pid, sig)  # a command typed at a terminal: that process alone
        except ProcessLookupError:
            pass
    lock["stop_requested"] = time.time()
    if lock_path(project, kind).exists():
        atomic_write_json(lock_path(project, kind), lock)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline and locks.alive(pid, lock.get("start_time")):
        time.sleep(0.2)
    return state(project, kind)


# --- the Train page's view of events.jsonl ------------------------------------------------------


@dataclass
class Progress:
    """What the Train page shows, worked out from the events alone."""

    status: str  # "not started" | "running" | "finished" | "failed" | "stopped"
    step: int = 0
    total_steps: int | None = None
    epoch: int = 0
    epochs: int | None = None
    loss: float | None = None
    avg_loss: float | None = None
    lr_unet: float | None = None
    lr_te: float | None = None
    elapsed_s: float | None = None
    eta_s: float | None = None
    message: str = ""  # the English; `said` is the same message as its template, for the page's language
    said: Message = field(default_factory=Message)
    losses: list[tuple[int, float, float | None]] = field(default_factory=list)  # (step, loss, avg)
    saved: list[str] = field(default_factory=list)
    samples: list[str] = field(default_factory=list)
    likeness: list[ev.Likeness] = field(default_factory=list)  # one per epoch with samples


def whole_run(events: list[ev.Event]) -> list[ev.Event]:
    """The events of the last run, resumed parts included: a resumed part appends a Start with
    first_step > 0, and its files continue the same run."""
    starts = [i for i, e in enumerate(events) if isinstance(e, ev.Start)]
    fresh = [i for i in starts if not events[i].first_step]
    return events[(fresh or starts or [0])[-1]:]


def progress(run: Iterable[ev.Event | dict[str, Any]], running: bool) -> Progress:
    """Step, epoch, loss, ETA and files from one run's events (as Events, or as the objects read
    from the file; resumed parts included). ETA = remaining steps x the mean time of the steps so
    far in the last part (a resumed part starts counting again); the saved files and the loss
    curve are the whole run's."""
    events = [e if isinstance(e, ev.Event) else ev.parse(e) for e in run]
    events = [e for e in events if e is not None]
    if not events:
        return Progress("running" if running else "not started")
    p = Progress("running")
    start = events[0]
    first_step_at, first_step = None, None
    for e in events:
        if isinstance(e, ev.Start):  # the run, or a resumed part of it, begins
            start, p.status, first_step_at = e, "running", None
            p.said = Message()
            p.total_steps, p.epochs = e.total_steps, e.epochs
        elif isinstance(e, ev.Step):
            p.step, p.epoch = e.step or p.step, e.epoch or p.epoch
            p.loss, p.avg_loss, p.lr_unet, p.lr_te = e.loss, e.avg_loss, e.lr_unet, e.lr_te
            if e.loss is not None:
                p.losses.append((p.step, float(e.loss), e.avg_loss))
            if first_step_at is None and e.time is not None:
                first_step_at, first_step = e.time, p.step
            if e.time is not None and first_step_at is not None and p.step > first_step and p.total_steps:
                per_step = (e.time - first_step_at) / (p.step - first_step)
                p.eta_s = max(0.0, (p.total_steps - p.step) * per_step)
        elif isinstance(e, ev.EpochEnd):
            p.epoch = e.epoch or p.epoch
        elif isinstance(e, ev.Saved) and e.path and e.path not in p.saved:
            p.saved.append(e.path)
        elif isinstance(e, ev.Samples):
            p.samples.extend(e.path)
        elif isinstance(e, ev.Likeness):
            p.likeness.append(e)
        elif isinstance(e, ev.End):
            p.status = "stopped" if e.interrupted else "finished"
            p.step, p.eta_s, p.said = e.step or p.step, 0.0, ev.message_of(e)
        elif isinstance(e, ev.Error):
            p.status = "failed"
            p.said = ev.message_of(e) if e.message else Message("training stopped with an error")
        if start.time is not None and e.time is not None:
            p.elapsed_s = e.time - start.time
    if p.status == "running" and not running:
        # the process is gone without an 'end' event: killed, or it crashed before writing one
        p.status = "stopped"
        p.said = p.said if p.said.text else Message("The training process ended without finishing (see the "
                                                        "log below).")
    p.message = p.said.text
    return p
