"""The prepare report (prepare-report.json): one entry per input photo, accepted or rejected,
with the reason, the framing and the measures; and the counts a person reads first."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from ..errors import Templated
from ..messages import Message, said_as
from .crop import TILTED
from .options import PrepareOptions


class PrepareItem(BaseModel):
    """One input photo's fate. Boxes are [left, top, right, bottom] in source pixels; `output`
    and `caption_file` are relative to the project folder."""

    source: str
    status: Literal["accepted", "rejected"]
    reason: str | None = None
    reason_said: Message | None = None  # the reason as its template and values, for the GUI's language
    number: int | None = None
    output: str | None = None
    caption_file: str | None = None
    caption: str | None = None
    caption_from: str | None = None  # template, tagger, beside photo, existing file
    face_box: list[int] | None = None
    faces: int | None = None
    face_px: int | None = None  # the face's height in source pixels: brow line to chin (landmarks)
    framing: str | None = None  # the verdict: whole head, tight: no hair, tilted, levelled
    whole_head: bool | None = None  # the crop holds the whole head, crown to chin
    missing: list[str] = Field(default_factory=list)  # what a close-up lacks that the framing wanted
    roll: float | None = None  # the eye line's tilt in the photo, degrees clockwise
    yaw: float | None = None  # the head's turn, degrees, > 0 towards the picture's right (headpose)
    pitch: float | None = None  # the head's tilt, degrees, > 0 chin up
    expression: str | None = None  # neutral, smile or open mouth (headpose.Mouth)
    levelled: float | None = None  # degrees the photo was turned before cutting (--level)
    crop_box: list[int] | None = None  # in the levelled photo's pixels when `levelled` is set
    crop_corners: list[list[float]] | None = None  # levelled: the square's corners in the photo, clockwise
    scale: float | None = None  # output pixels per source pixel
    upscaler: str | None = None
    drift: float | None = None  # descriptor distance from the source face to the output face
    blur: float | None = None
    phash: str | None = None
    duplicate_of: str | None = None
    identity_distance: float | None = None
    identity_outlier: bool = False
    warnings: list[str] = Field(default_factory=list)
    warnings_said: list[Message] = Field(default_factory=list)  # each warning's template and values (warn)
    sha256: str | None = None
    key: str | None = None
    descriptor: list[float] | None = None
    reused: bool = False  # taken from the last run unchanged
    earlier_run: bool = False  # from an earlier run's photos, not among this run's inputs

    def reject(self, message: Message) -> None:
        """Rejected for `message`: its English in `reason` (the CLI's), its template beside it."""
        self.status, self.reason, self.reason_said = "rejected", message.text, message

    def warn(self, message: Message) -> None:
        self.warnings.append(message.text)
        self.warnings_said.append(message)

    def said(self) -> list[Message]:
        """The reason, or the warnings, as messages; a text with no template (an old report) as its text."""
        if self.reason:
            return said_as([self.reason], [self.reason_said] if self.reason_said else [])
        return said_as(self.warnings, self.warnings_said)


class Coverage(BaseModel):
    """How the accepted photos spread over head poses and expressions (audit.coverage)."""

    photos: int = 0  # accepted photos with a measured pose
    views: dict[str, int] = Field(default_factory=dict)  # frontal, three-quarter, profile
    expressions: dict[str, int] = Field(default_factory=dict)
    warnings: list[str] = Field(default_factory=list)
    warnings_said: list[Message] = Field(default_factory=list)  # each warning's template and values (warn)
    plot: str | None = None  # the yaw-pitch scatter, relative to the project

    def warn(self, message: Message) -> None:
        self.warnings.append(message.text)
        self.warnings_said.append(message)

    def said(self) -> list[Message]:
        return said_as(self.warnings, self.warnings_said)


class NotInReport(Templated, KeyError):
    """A photo the report has no entry of (the caller named a photo that was not prepared)."""


class PrepareReport(BaseModel):
    photos: str
    project: str
    concept_dir: str
    trigger: str
    class_word: str | None
    options: PrepareOptions
    complete: bool = False
    created: str = ""
    contact_sheet: str | None = None
    resolution_note: str | None = None  # set when this run changed the project's training resolution
    resolution_said: Message | None = None  # the note as its template and values, for the GUI's language
    framings: dict[str, int] = Field(default_factory=dict)  # accepted crops: whole head, tight, tilted, levelled
    coverage: Coverage | None = None
    items: list[PrepareItem] = Field(default_factory=list)

    def warnings_said(self) -> list[Message]:
        """What prepare warns of the whole set (the pose coverage), as messages."""
        return self.coverage.said() if self.coverage else []

    def resolution_message(self) -> Message | None:
        """The resolution note as its message (its text alone in a report written before the templates)."""
        if not self.resolution_note:
            return None
        return said_as([self.resolution_note], [self.resolution_said] if self.resolution_said else [])[0]

    @property
    def accepted(self) -> list[PrepareItem]:
        return [i for i in self.items if i.status == "accepted"]

    @property
    def rejected(self) -> list[PrepareItem]:
        return [i for i in self.items if i.status == "rejected"]

    def item(self, source: str | Path) -> PrepareItem:
        """The entry of one input photo (by its path)."""
        key = str(Path(source).resolve())
        for it in self.items:
            if it.source == key:
                return it
        raise NotInReport("{source} is not one of the report's photos.", source=str(source))

    @property
    def tight(self) -> list[PrepareItem]:
        """Accepted photos tighter than the framing (a close-up: no hair, no chin)."""
        return [i for i in self.accepted if i.missing]

    def count_framings(self) -> dict[str, int]:
        """How many accepted crops hold the whole head, are tight, tilted, levelled."""
        counts: Counter[str] = Counter()
        for it in self.accepted:
            counts["whole head" if it.whole_head else "tight"] += 1
            counts["levelled"] += it.levelled is not None
            counts["tilted"] += it.levelled is None and abs(it.roll or 0) >= TILTED
        return {k: v for k, v in counts.items() if v}
