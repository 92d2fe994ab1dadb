"""PROJECT/log/events.jsonl: what a training run tells the GUI and the report, one JSON object a
line, flushed as written. Every event kind and its keys are declared here once, as the dataclasses
below; training writes them through EventWriter, and every reader gets them back through parse()
(read_events for the whole file, EventLog to follow it as it grows), so a reader can only ask for
a key the writer has.

An event that carries a message (End, Skipped, Error) holds it three ways: "message"
(the English text, what the terminal printed), "template" and "values" (the same message as its
English template and the values filled in), so the GUI can show it in its own language; it is
written from a Message (facelora.messages). A line from before templates has "message" only, and
reads as it is. Start's notes are a list of the same three keys, one object a note (plain strings
in a file from before).

Every line has "event" (the kind) and "time" (a Unix time in seconds). A line's missing keys read
as their defaults and unknown keys are ignored, so files from older or newer versions still read.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar

from .filenames import LoraKind
from .messages import Message


@dataclass(frozen=True)
class Event:
    KIND: ClassVar[str] = ""
    time: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"event": self.KIND, **asdict(self)}


@dataclass(frozen=True)
class Start(Event):
    """A run (or a resumed part of one) begins; params holds every TrainConfig field."""

    KIND: ClassVar[str] = "start"
    run: str | None = None  # the TensorBoard run's folder name
    total_steps: int | None = None
    epochs: int | None = None
    steps_per_epoch: int | None = None
    images: int | None = None
    repeats: int | None = None
    batch_size: int | None = None
    samples_per_epoch: int | None = None
    first_step: int = 0
    device: str | None = None
    mixed_precision: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    notes: list[Any] = field(default_factory=list)  # each note's Message.keys(); a plain string in an old file

    def said_notes(self) -> list[Message]:
        """The run's start notes as messages (an old file's plain strings as their text)."""
        return [checked(n.get("message", ""), n.get("template", ""), n.get("values")) if isinstance(n, dict)
                else Message(str(n)) for n in self.notes]


@dataclass(frozen=True)
class Step(Event):
    """One optimizer step; a loss is None when it was not finite (JSON has no NaN)."""

    KIND: ClassVar[str] = "step"
    step: int = 0
    epoch: int = 0
    loss: float | None = None
    avg_loss: float | None = None
    lr_unet: float | None = None
    lr_te: float | None = None
    lr_dlr: float | None = None  # D-Adaptation / Prodigy's d*lr
    s_per_it: float | None = None


@dataclass(frozen=True)
class EpochEnd(Event):
    KIND: ClassVar[str] = "epoch"
    epoch: int = 0
    step: int = 0
    loss: float | None = None  # the epoch's mean loss


@dataclass(frozen=True)
class Validation(Event):
    """The validation loss on the held-out photos (train/validation.py), at an epoch's end or
    every validate_every_n_steps; `at` says which."""

    KIND: ClassVar[str] = "validation"
    step: int = 0
    epoch: int = 0
    loss: float | None = None
    at: str = "epoch"  # "epoch" | "step"
    images: int = 0  # held-out photos it was computed on


@dataclass(frozen=True)
class Saved(Event):
    """A LoRA file was written."""

    KIND: ClassVar[str] = "saved"
    path: str = ""
    step: int = 0
    epoch: int = 0
    kind: LoraKind = "epoch"  # which save: epoch, step, final or interrupted


@dataclass(frozen=True)
class Samples(Event):
    KIND: ClassVar[str] = "sample"
    path: list[str] = field(default_factory=list)  # the sample images of one epoch
    step: int = 0
    epoch: int = 0


@dataclass(frozen=True)
class Likeness(Event):
    """One epoch's samples scored against the training photos (evaluate/live.py); a score is
    None when there was nothing to measure it on (no face, no reference, no bleed prompt)."""

    KIND: ClassVar[str] = "likeness"
    epoch: int = 0
    step: int = 0
    images: int = 0  # the samples scored
    detection_rate: float = 0.0  # share of the likeness prompts' samples with a face
    match_rate: float | None = None
    mean_distance: float | None = None
    bleed: float | None = None
    copies: float | None = None
    message: str = ""  # the terminal's line (the GUI writes the scores in its own words)


@dataclass(frozen=True)
class Skipped(Event):
    """A step with a NaN/inf loss, skipped; count = how many in a row."""

    KIND: ClassVar[str] = "skipped"
    step: int = 0
    epoch: int = 0
    count: int = 0
    message: str = ""
    template: str = ""
    values: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class End(Event):
    """The run ended: finished, or interrupted (Ctrl-C, the GUI's Stop) with what it saved."""

    KIND: ClassVar[str] = "end"
    step: int = 0
    epoch: int = 0
    avg_loss: float | None = None
    files: list[str] = field(default_factory=list)
    interrupted: bool = False
    message: str = ""
    template: str = ""
    values: dict[str, Any] = field(default_factory=dict)
    seconds: float | None = None  # this process's run, from its start event


@dataclass(frozen=True)
class Error(Event):
    KIND: ClassVar[str] = "error"
    step: int = 0
    message: str = ""
    template: str = ""
    values: dict[str, Any] = field(default_factory=dict)


KINDS: dict[str, type[Event]] = {c.KIND: c for c in (Start, Step, EpochEnd, Validation, Saved, Samples, Likeness,
                                                       Skipped, End, Error)}


def message_of(event: Event) -> Message:
    """The message an event carries; an old line's (no template) as its English text alone."""
    return checked(getattr(event, "message", ""), getattr(event, "template", ""), getattr(event, "values", {}))


def checked(text: str, template: str, values: Any) -> Message:
    """A message as a line holds it: its template and values when they give the text written,
    else the text alone (a line from before templates, or a hand-edited one)."""
    if not template or not isinstance(values, dict):
        return Message(text)
    said = Message(template, values)
    try:
        return said if said.text == text else Message(text)
    except (KeyError, IndexError, ValueError, TypeError, AttributeError):
        return Message(text)


def parse(obj: Any) -> Event | None:
    """One line's object as its event; None for a line of no known kind."""
    cls = KINDS.get(obj.get("event")) if isinstance(obj, dict) else None
    if cls is None:
        return None
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in obj.items() if k in names})


def read_events(path: Path) -> list[Event]:
    """The whole file, skipping a last line that is still being written."""
    if not Path(path).is_file():
        return []
    out = []
    for line in Path(path).read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            event = parse(json.loads(line))
        except ValueError:
            continue
        if event is not None:
            out.append(event)
    return out


def current_run(events: list[Event]) -> list[Event]:
    """The events since the last Start (a resumed run appends a new one)."""
    starts = [i for i, e in enumerate(events) if isinstance(e, Start)]
    return events[starts[-1]:] if starts else list(events)


class EventWriter:
    """Appends events to the file, each line flushed as written; opens the file on the first."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._file = None

    def write(self, event: Event) -> None:
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("a", encoding="utf-8")
        if event.time is None:
            line = {**event.to_dict(), "time": round(time.time(), 3)}
        else:
            line = event.to_dict()
        self._file.write(json.dumps(line, ensure_ascii=False, default=str) + "\n")
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class EventLog:
    """The file read incrementally (the GUI polls it every second; a long run writes thousands of
    lines). `events` holds each line's object as read, `parsed` the same lines as Events. A line
    still being written is read on the next call. A shorter file means a new run: it is read from
    the start again."""

    def __init__(self, path: Path):
        self.path = path
        self.events: list[dict[str, Any]] = []
        self.parsed: list[Event] = []
        self._offset = 0
        self._stamp: tuple[int, int] | None = None  # (inode, size) at the last read

    def refresh(self) -> bool:
        """Read new lines; True when something changed."""
        try:
            st = self.path.stat()
        except OSError:
            changed = bool(self.events)
            self.events, self.parsed, self._offset, self._stamp = [], [], 0, None
            return changed
        stamp = (st.st_ino, st.st_size)
        if stamp == self._stamp:
            return False
        if self._stamp is None or st.st_ino != self._stamp[0] or st.st_size < self._offset:
            self.events, self.parsed, self._offset = [], [], 0
        with self.path.open("rb") as f:
            f.seek(self._offset)
            data = f.read()
        end = data.rfind(b"\n") + 1
        for line in data[:end].splitlines():
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            event = parse(obj)
            if event is not None:
                self.events.append(obj)
                self.parsed.append(event)
        self._offset += end
        self._stamp = stamp
        return True

    def current_run(self) -> list[Event]:
        return current_run(self.parsed)
