"""What a run tells the world: the terminal (a parameter table, the plan, a progress bar and a
`model saved:` line per file), TensorBoard (Kohya's tags), and PROJECT/log/events.jsonl (its
event kinds and keys are facelora.events'), which the GUI tails to show a run's state live.
Only the main process writes (see Reporter(enabled=...)).
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from .. import events as ev
from ..config import TrainConfig
from ..messages import Message
from ..plan import Plan
from ..tables import plan_table

PLAIN_EVERY_S = 30.0  # without a terminal (the GUI's log), a progress line this often


WIDE_VALUE = 30  # room a value gets beside its name before the table drops to one pair


def params_table(cfg: TrainConfig, width: int = 160) -> Table:
    """Every parameter of the run as name = value, in two pairs of columns where the terminal is
    wide enough and one pair where it is not; a name is never broken (a value folds instead)."""
    t = Table(title="Parameters", show_header=False, title_justify="left", box=None, pad_edge=False)
    items = [(k, _show(v)) for k, v in cfg.model_dump().items()]
    pairs = 2 if width >= 2 * (max(len(k) for k, _ in items) + 1) + 2 * WIDE_VALUE else 1
    for _ in range(pairs):
        t.add_column(style="bold", no_wrap=True)
        t.add_column(overflow="fold")
    rows = math.ceil(len(items) / pairs)
    for i in range(rows):
        t.add_row(*[x for k, v in items[i::rows] for x in (k, v)], *[""] * (2 * pairs - 2 * len(items[i::rows])))
    return t


def _show(v: Any) -> str:
    if isinstance(v, list):
        return " ".join(str(x) for x in v) or "[]"
    return str(v)


class Reporter:
    """Terminal, TensorBoard and events.jsonl for one run. With enabled=False (a process other
    than the main one) it does nothing."""

    def __init__(self, events_path: Path, tensorboard_dir: Path | None, enabled: bool = True,
                 console: Console | None = None):
        self.enabled = enabled
        self.console = console or Console(highlight=False)
        self.tensorboard_dir = tensorboard_dir
        self._events = ev.EventWriter(events_path)
        self._tb = None
        self._progress: Progress | None = None
        self._task = None
        self._total = 0
        self._epochs = 0
        self._first_step = 0
        self._t0 = 0.0
        self._last_plain = 0.0

    # --- plumbing --------------------------------------------------------------------------

    def event(self, event: ev.Event) -> None:
        if self.enabled:
            self._events.write(event)

    def print(self, *args: Any, **kw: Any) -> None:
        if self.enabled:
            (self._progress.console if self._progress else self.console).print(*args, **kw)

    def note(self, msg: str) -> None:
        self.print(f"[yellow]note:[/] {msg}")

    def _scalars(self, values: dict[str, float], step: int) -> None:
        if self._tb is not None:
            for tag, v in values.items():
                if v is not None and math.isfinite(v):
                    self._tb.add_scalar(tag, v, step)

    # --- the run ---------------------------------------------------------------------------

    def start(self, cfg: TrainConfig, plan: Plan, device: str, first_step: int = 0,
              notes: list[Message] | None = None, used: tuple[tuple[str, str], ...] = ()) -> None:
        """used: what the run really uses where cfg alone does not say (precision, attention). The
        notes print in English; the Start event holds each as its template and values."""
        if not self.enabled:
            return
        notes = list(notes or [])
        self.console.print(params_table(cfg, self.console.width))
        self.console.print(plan_table(plan, "Training run", (("device", device),
                                                             *(used or (("precision", cfg.mixed_precision),)))))
        for n in notes:
            self.note(n.text)
        self.event(ev.Start(run=self.tensorboard_dir.name if self.tensorboard_dir else None,
                            total_steps=plan.total_steps, epochs=plan.epochs, steps_per_epoch=plan.steps_per_epoch,
                            images=plan.images, repeats=plan.repeats, batch_size=plan.batch_size,
                            samples_per_epoch=plan.samples_per_epoch, first_step=first_step, device=device,
                            mixed_precision=cfg.mixed_precision, params=cfg.model_dump(mode="json"),
                            notes=[n.plain().keys() for n in notes]))
        if self.tensorboard_dir is not None:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(log_dir=str(self.tensorboard_dir))
            self._tb.add_text("parameters", json.dumps(cfg.model_dump(), indent=1, default=str).replace("\n", "  \n"))
        self._total, self._epochs, self._first_step = plan.total_steps, plan.epochs, first_step
        self._t0 = self._last_plain = time.monotonic()
        if self.console.is_terminal:
            self._progress = Progress(
                TextColumn("epoch {task.fields[epoch]}/{task.fields[epochs]}"),
                BarColumn(),
                TextColumn("step {task.completed}/{task.total}"),
                TimeElapsedColumn(), TextColumn("<"), TimeRemainingColumn(),
                TextColumn("{task.fields[speed]}  loss {task.fields[loss]}  avg {task.fields[avg]}"),
                console=self.console,
            )
            self._progress.start()
            self._task = self._progress.add_task("train", total=plan.total_steps, completed=first_step,
                                                 epoch=1, epochs=plan.epochs, speed="", loss="-", avg="-")

    def step(self, step: int, epoch: int, loss: float, avg_loss: float, lrs: dict[str, float]) -> None:
        if not self.enabled:
            return
        done = step - self._first_step
        s_per_it = (time.monotonic() - self._t0) / done if done > 0 else None
        self.event(ev.Step(step=step, epoch=epoch, loss=_num(loss), avg_loss=_num(avg_loss),
                           lr_unet=lrs.get("lr/unet"), lr_te=lrs.get("lr/textencoder"), lr_dlr=lrs.get("lr/d*lr"),
                           s_per_it=round(s_per_it, 4) if s_per_it else None))
        self._scalars({"loss/current": loss, "loss/average": avg_loss, **lrs}, step)
        speed = f"{s_per_it:.2f}s/it" if s_per_it else ""
        if self._progress is not None:
            self._progress.update(self._task, completed=step, epoch=epoch, speed=speed,
                                  loss=f"{loss:.4f}", avg=f"{avg_loss:.4f}")
        elif time.monotonic() - self._last_plain >= PLAIN_EVERY_S or step in (self._first_step + 1, self._total):
            self._last_plain = time.monotonic()
            eta = (self._total - step) * s_per_it if s_per_it else 0
            self.console.print(f"epoch {epoch}/{self._epochs}  step {step}/{self._total}  {speed}  "
                               f"ETA {_hms(eta)}  loss {loss:.4f}  avg {avg_loss:.4f}")

    def skipped(self, step: int, epoch: int, count: int, message: Message) -> None:
        self.event(ev.Skipped(step=step, epoch=epoch, count=count, **message.keys()))
        self.note(message.text)

    def epoch_end(self, epoch: int, step: int, mean_loss: float) -> None:
        self.event(ev.EpochEnd(epoch=epoch, step=step, loss=_num(mean_loss)))
        self._scalars({"loss/epoch": mean_loss}, epoch)

    def validation(self, step: int, epoch: int, loss: float, at: str, images: int) -> None:
        """The validation loss, under Kohya's TensorBoard tags (an epoch's against the epoch)."""
        self.event(ev.Validation(step=step, epoch=epoch, loss=_num(loss), at=at, images=images))
        if at == "epoch":
            self._scalars({"loss/validation/epoch_average": loss}, epoch)
        else:
            self._scalars({"loss/validation/step_average": loss}, step)
        self.print(f"validation loss {loss:.4f} ({images} held-out photos, {at} {epoch if at == 'epoch' else step})")

    def saved(self, path: Path, step: int, epoch: int, kind: str) -> None:
        self.event(ev.Saved(path=str(path), step=step, epoch=epoch, kind=kind))
        self.print(f"model saved: {path}")

    def removed(self, path: Path) -> None:
        self.print(f"removed {path.name} (save_last_n_epochs)")

    def samples(self, paths: list[Path], step: int, epoch: int) -> None:
        self.event(ev.Samples(path=[str(p) for p in paths], step=step, epoch=epoch))
        for p in paths:
            self.print(f"sample saved: {p}")

    def likeness(self, scores: dict[str, float], step: int, epoch: int, images: int, message: str) -> None:
        """One epoch's samples scored (evaluate/live.py's `likeness/...` keys), beside its loss."""
        values = {k.removeprefix("likeness/"): v for k, v in scores.items()}
        self.event(ev.Likeness(epoch=epoch, step=step, images=images, message=message, **values))
        self._scalars(scores, epoch)
        self.print(f"epoch {epoch}: {message}")

    def end(self, step: int, epoch: int, avg_loss: float | None, files: list[Path], message: Message,
            interrupted: bool = False) -> None:
        self._stop_bar()
        seconds = round(time.monotonic() - self._t0, 3) if self._t0 else None
        self.event(ev.End(step=step, epoch=epoch, avg_loss=_num(avg_loss), files=[str(f) for f in files],
                          interrupted=interrupted, seconds=seconds, **message.keys()))
        if message.text:
            self.print(message.text)

    def error(self, step: int, message: Message) -> None:
        self._stop_bar()
        self.event(ev.Error(step=step, **message.keys()))

    def close(self) -> None:
        self._stop_bar()
        if self._tb is not None:
            self._tb.close()
            self._tb = None
        self._events.close()

    def _stop_bar(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


def _num(v: float | None) -> float | None:
    """JSON has no NaN: a non-finite loss is written as null."""
    return None if v is None or not math.isfinite(v) else float(v)


def _hms(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"
