"""Train: start, stop and resume training, which runs as its own process (`python -m facelora
train PROJECT`), and watch it: progress, ETA, the loss chart, the log, saved files and sample
images as they appear. Everything shown is read from the project's files, so closing the browser
changes nothing and reopening shows the run where it is."""

from __future__ import annotations

import html
import re
import threading
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

from ...errors import FaceloraError
from ...events import Event, EventLog, Likeness, Start
from ...fonts import font_path, has_cjk
from ...project import Project
from ...train import resume as saved
from ...train.options import TrainOptions
from .. import jobs
from . import tools
from ..common import Page, ticking, duration, friendly, note, num, table
from ..i18n import T, language, said_in, tr
from ..workspace import Workspace

KIND = "train"
CHART_POINTS = 1000
SERIES_COLOURS = {"loss": "#4c78a8", "average": "#f58518"}
LOG_LINES = 15  # the tail shown is as tall as the box, so its end is always in view
_logs: dict[Path, EventLog] = {}  # one incremental reader per project, shared by all browsers
_logs_lock = threading.Lock()


def events_of(p: Project) -> list[Event]:
    with _logs_lock:
        log = _logs.setdefault(p.events_path, EventLog(p.events_path))
        log.refresh()
        return jobs.whole_run(log.parsed)


def loading(events: list[Event], job: jobs.JobState) -> bool:
    """Whether the running job has not written its first event yet (it loads the model)."""
    if not (job.running and job.started and events):
        return False
    last_start = next((e for e in reversed(events) if isinstance(e, Start)), None)
    return last_start is None or (last_start.time or 0) < job.started - 1


def shown_events(events: list[Event], job: jobs.JobState, resuming: bool = False) -> list[Event]:
    """The run to show: while a job this page started is loading, nothing of the run before it,
    so its "Finished" is never shown after Start; a resumed run goes on from the run before, so
    that one stays in view (its saved files and loss curve) while the job loads."""
    return [] if loading(events, job) and not resuming else events


def nothing_to_resume(p: Project) -> str | None:
    """Why Resume has nothing to do (the last run finished, or there is none), else None."""
    prog = jobs.progress(events_of(p), running=False)
    if prog.status == "finished":
        return T("Nothing to resume: the last run finished at step {step}. Start trains a new run.", step=prog.step)
    if prog.status == "not started":
        return T("Nothing to resume: no run has started in this project yet. Press Start.")
    return None


STATE_LABELS = {"running": "Training", "finished": "Finished", "failed": "Failed", "stopped": "Stopped",
                "not started": "Not started", "starting": "Starting (loading the model and the images)",
                "stopping": "Stopping (saving what it has)"}


def state_note(p: Project, prog: jobs.Progress) -> str:
    """After a stop: whether Resume can go on, and from which step."""
    if prog.status != "stopped":
        return ""
    newest = saved.newest_state(p.state_dir)
    if newest is None:
        return note("No training state was saved (save_state is off): Resume cannot go on with this run; "
                    "Start trains a new one.", "warn")
    folder, step = newest
    return note(T("The training state of step {step} is saved ({folder}): Resume goes on from there.", step=step,
                  folder=folder.relative_to(p.root)), "info")


def notes_html(events: list[Event]) -> str:
    """The notes the run (its last start: a resume's own) printed at its start, in the page's language."""
    start = next((e for e in reversed(events) if isinstance(e, Start)), None)
    notes = start.said_notes() if start else []
    if not notes:
        return ""
    items = "".join(f"<li>{html.escape(said_in(n))}</li>" for n in notes)
    return f'<div id="train-notes"><b>{html.escape(tr("Notes at the start of the run"))}</b><ul>{items}</ul></div>'


STARTED = re.compile(r'data-started-pid="(\d+)"')


def started_reply(pid: int | None, resume: bool) -> str:
    """Start's and Resume's reply, marked with the job's process id, so that the tick replaces it
    by the run's state once that job has ended (action_after)."""
    said = T("Training resumed (process {pid})." if resume else "Training started (process {pid}).", pid=pid)
    return f'<div data-started-pid="{pid}">{note(said, "ok")}</div>'


def action_after(action: str | None, prog: jobs.Progress, job: jobs.JobState) -> str | None:
    """The banner once the job a Start or Resume reply announced has ended: the run's state (it
    no longer says "Training resumed" over a finished run); None while it stands as it is."""
    started = STARTED.search(action or "")
    if started is None or (job.running and job.pid == int(started.group(1))):
        return None
    kind = {"failed": "error", "stopped": "warn", "finished": "ok"}.get(prog.status, "info")
    return note(STATE_LABELS[prog.status], kind)


def status_html(prog: jobs.Progress, job: jobs.JobState, more: str = "") -> str:
    label = STATE_LABELS[prog.status]
    starting = job.running and (prog.status != "running" or (prog.step == 0 and not prog.losses))
    if starting:  # a resumed run shows the run before it meanwhile, but not its end
        label, more = STATE_LABELS["starting"], ""
    if job.running and job.stop_requested:
        label = STATE_LABELS["stopping"]
    label = tr(label)
    total = prog.total_steps
    frac = min(1.0, prog.step / total) if total else 0.0
    rows = [
        ("state", label + (T(" (process {pid})", pid=job.pid) if job.running and job.pid else "")),
        ("step", T("{n} of {total}", n=prog.step, total=total) if total else prog.step),
        ("epoch", T("{n} of {total}", n=prog.epoch, total=prog.epochs) if prog.epochs else prog.epoch),
        ("loss", "-" if prog.loss is None else T("{loss}  (average {avg})", loss=f"{prog.loss:.4f}",
                                                 avg=f"{prog.avg_loss:.4f}")
         if prog.avg_loss is not None else f"{prog.loss:.4f}"),
        ("learning rate", "-" if prog.lr_unet is None else T("UNet {unet}, text encoder {te}", unet=num(prog.lr_unet),
                                                             te="-" if prog.lr_te is None else num(prog.lr_te))),
        ("elapsed", duration(prog.elapsed_s)),
        ("time left", duration(prog.eta_s) if prog.status == "running" else "-"),
    ]
    bar = f'<div class="fl-bar" id="train-bar"><div style="width:{frac * 100:.1f}%"></div></div>'
    kind = {"failed": "error", "stopped": "warn", "finished": "ok"}.get(prog.status, "info")
    msg = note(said_in(prog.said), kind) if prog.message and not starting else ""
    if not job.running and job.returncode not in (None, 0) and prog.status in ("running", "not started"):
        msg += note(T("The training process exited with code {code}; the log below says why.",
                      code=job.returncode), "error")
    status = "running" if starting else prog.status
    return (f'<div id="train-state" data-status="{html.escape(status)}" data-step="{prog.step}">'
            f'{bar}{table(rows)}{msg}{more}</div>')


def loss_frame(prog: jobs.Progress, max_points: int = CHART_POINTS) -> pd.DataFrame:
    """Loss and average loss against step, typed even when empty (the chart takes its axis types
    from the first frame it gets). A long run is thinned to about `max_points` steps (always
    keeping the last), so the page is not sent thousands of points every second."""
    losses = prog.losses
    if len(losses) > max_points:
        every = -(-len(losses) // max_points)
        losses = losses[::every] + ([losses[-1]] if (len(losses) - 1) % every else [])
    rows = [(s, loss, "loss") for s, loss, _ in losses]
    rows += [(s, avg, "average") for s, _, avg in losses if avg is not None]
    return pd.DataFrame({
        "step": pd.Series([r[0] for r in rows], dtype="int64"),
        "loss": pd.Series([r[1] for r in rows], dtype="float64"),
        "series": pd.Series([r[2] for r in rows], dtype="object"),
    })


def loss_chart(prog: jobs.Progress):
    """The loss chart (matplotlib, sent as a picture): loss and average loss against step, with
    whole steps on the x axis, never half-steps; its words in the page's language. None before
    the first step."""
    frame = loss_frame(prog)
    if frame.empty:
        return None
    from matplotlib.figure import Figure
    from matplotlib.font_manager import FontProperties
    from matplotlib.ticker import MaxNLocator

    words = [tr(w) for w in ("step", "loss", *SERIES_COLOURS)]
    font = FontProperties(fname=font_path(has_cjk("".join(words))))
    fig = Figure(figsize=(9, 2.6), dpi=100)
    ax = fig.subplots()
    for (series, colour), word in zip(SERIES_COLOURS.items(), words[2:]):
        part = frame[frame["series"] == series]
        ax.plot(part["step"], part["loss"], color=colour, lw=1.4, label=word, marker="o" if len(part) < 3 else None)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=10))
    first, last = int(frame["step"].min()), int(frame["step"].max())
    if last - first < 2:  # a view narrower than two steps would get fractional ticks
        ax.set_xlim(first - 1, last + 1)
    ax.set_xlabel(words[0], fontproperties=font)
    ax.set_ylabel(words[1], fontproperties=font)
    ax.grid(alpha=0.3)
    ax.legend(prop=font, loc="upper right")
    fig.tight_layout()
    return fig


def saved_html(p: Project, prog: jobs.Progress) -> str:
    if not prog.saved:
        return note("No LoRA file saved yet.")
    items = "".join(f"<li>{html.escape(Path(s).name)}</li>" for s in prog.saved)
    where = html.escape(T("Saved LoRA files (in {folder})", folder=p.models_dir))
    return f'<div id="saved-files"><b>{where}</b><ul>{items}</ul></div>'


def likeness_html(prog: jobs.Progress) -> str:
    """The samples' likeness per epoch (live likeness), under the saved files."""
    if not prog.likeness:
        return ""
    rows = "".join(f"<li>{html.escape(T('epoch {epoch}: {scores}', epoch=e.epoch, scores=likeness_words(e)))}</li>"
                   for e in prog.likeness)
    return f'<div id="train-likeness"><b>{html.escape(T("Likeness of the samples"))}</b><ul>{rows}</ul></div>'


def likeness_words(e: Likeness) -> str:
    """An epoch's likeness scores: in English the terminal's words, in another language the same
    scores in its words."""
    if language() == "en" or not e.message:
        return e.message.removeprefix("likeness: ")
    if not e.detection_rate and e.bleed is None:
        return tr("no faces in the samples")
    parts = [T("faces {rate:.0%}", rate=e.detection_rate)]
    if e.match_rate is not None:
        parts.append(T("match {rate:.0%}", rate=e.match_rate))
    if e.mean_distance is not None:
        parts.append(T("distance {d:.3f}", d=e.mean_distance))
    if e.bleed is not None:
        parts.append(T("bleed {rate:.0%}", rate=e.bleed))
    if e.copies:
        parts.append(T("copies {n:.0f}", n=e.copies))
    return tr(", ").join(parts)


def _layout(ws: Workspace, current: gr.State) -> dict[str, Any]:
    w: dict[str, Any] = {}
    with gr.Tab("Train", id="train"):
        gr.Markdown("Training runs in its own process: closing this page does not stop it, and "
                    "reopening shows it again. **Stop** asks it to save what it has and end (as Ctrl-C); "
                    "**Resume** goes on from the last saved state. The terminal that runs `facelora gui` "
                    "shows the same progress.")
        with gr.Row():
            w["start"] = gr.Button("Start training", variant="primary", elem_id="train-start")
            w["resume"] = gr.Button("Resume", elem_id="train-resume")
            w["stop"] = gr.Button("Stop", variant="stop", elem_id="train-stop")
        w["allow_pickle"] = gr.Checkbox(False, label="Allow a .ckpt base model", elem_id="train-allow-pickle",
                                        info="A .ckpt is a pickle that can run code when loaded; it is read with "
                                             "weights_only=True, but tick this only for files you trust.")
        w["overwrite"] = gr.Checkbox(False, label="Replace the earlier run's files", elem_id="train-overwrite",
                                     info="Start refuses while files of an earlier run of the same output_name "
                                          "are in output_dir: tick this to delete them, or change output_name.")
        w["action"] = gr.HTML(elem_id="train-action")
        w["status"] = gr.HTML(elem_id="train-status")
        w["chart"] = gr.Plot(label="Loss", format="png", elem_id="loss-chart")
        with gr.Row():
            w["saved"] = gr.HTML(elem_id="train-saved")
            w["samples"] = gr.Gallery(label="Sample images", columns=4, height=220, elem_id="train-samples")
        w["log"] = gr.Textbox(label="Log (the end of log/train.out)", lines=LOG_LINES, max_lines=LOG_LINES,
                              autoscroll=True, interactive=False, elem_id="train-log")
        tools.build(ws, current)
        w["seen"] = gr.State(None)
        w["timer"] = gr.Timer(1.0)
    return w


def build(ws: Workspace, current: gr.State) -> Page:
    w = _layout(ws, current)
    seen, status, chart, saved, samples, log, action = (w[k] for k in ("seen", "status", "chart", "saved", "samples",
                                                                          "log", "action"))

    @friendly()
    def start(project_name: str, pickle_ok: bool, overwrite: bool, resume: bool = False) -> str:
        p = ws.open(project_name)
        if resume and (why := nothing_to_resume(p)):
            return note(why, "warn")
        options = TrainOptions(resume=resume, allow_pickle=bool(pickle_ok), overwrite=bool(overwrite) and not resume)
        job = jobs.start(p, KIND, ["train", str(p.root)], options=options)
        return started_reply(job.pid, resume)

    @friendly()
    def stop(project_name: str) -> str:
        p = ws.open(project_name)
        job = jobs.stop(p, KIND, wait_s=20)
        if job.running:
            return note("Training is saving and stopping; press Stop again to end it at once.", "warn")
        return note("Training stopped.", "ok")

    w["start"].click(start, [current, w["allow_pickle"], w["overwrite"]], [action])
    w["resume"].click(lambda n, ok, o: start(n, ok, o, resume=True), [current, w["allow_pickle"], w["overwrite"]],
                      [action])
    w["stop"].click(stop, [current], [action])

    @ticking(7)
    def values(project_name: str, last: dict[str, Any] | None, shown_action: str | None = None):
        """Everything the tab shows; a component whose data did not change since this browser's
        last tick is skipped (the chart and the gallery are not sent again every second)."""
        try:
            p = ws.open(project_name)
        except (FaceloraError, OSError):
            return None, "", gr.skip(), "", None, "", gr.skip()
        job = jobs.state(p, KIND, lines=LOG_LINES)
        events = shown_events(events_of(p), job, resuming=bool(jobs.chosen_options(p, KIND).get("resume")))
        prog = jobs.progress(events, job.running)
        sample_files = [str(f) for f in (p.root / s for s in prog.samples) if f.is_file()]  # relative: to the project
        keys = {"project": str(p.root), "status": (len(events), job.running, job.stop_requested, job.returncode),
                "chart": len(prog.losses), "saved": (len(prog.saved), len(prog.likeness)), "samples": len(sample_files),
                "log": job.output[-300:]}
        old = last if last and last.get("project") == keys["project"] else {}

        def fresh(name: str) -> bool:
            return old.get(name) != keys[name]

        banner = action_after(shown_action, prog, job)
        return (keys,
                status_html(prog, job, state_note(p, prog) + notes_html(events)) if fresh("status") else gr.skip(),
                loss_chart(prog) if fresh("chart") else gr.skip(),
                saved_html(p, prog) + likeness_html(prog) if fresh("saved") else gr.skip(),
                (sample_files or None) if fresh("samples") else gr.skip(),
                job.output if fresh("log") else gr.skip(),
                gr.skip() if banner is None else banner)

    outputs = [seen, status, chart, saved, samples, log, action]
    w["timer"].tick(values, [current, seen, action], outputs, show_progress="hidden")

    def refresh(project_name: str):
        return values(project_name, None)[1:-1] + ("",)

    return Page(refresh, outputs[1:])

