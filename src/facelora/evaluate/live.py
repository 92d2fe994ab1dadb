"""Likeness while training: the samples of one epoch (sample_every_n_epochs) scored as they are
made, as scalars for TensorBoard (`likeness/...`), events.jsonl and the terminal line of that
epoch. A sample prompt that names the trigger is a likeness prompt; one that does not (another
person, the class word alone) is a bleed prompt: the person's face should not appear there.

LiveLikeness is what training holds: the training photos' faces are embedded on the first epoch
that makes samples, once per run. When they hold no face dlib finds (tiny test crops), the
samples are still searched for faces, and the terminal says there was nothing to compare with.
"""

from __future__ import annotations

import re
from pathlib import Path

from .board import GroupKey, score_images
from .likeness import LikenessError, Reference, build_reference, find_face, read_image

_KEY = GroupKey("samples", 1.0, 0, "samples")


def _kind(prompt: str, trigger: str) -> str:
    return "likeness" if re.search(rf"(?<!\w){re.escape(trigger)}(?!\w)", prompt) else "bleed"


def score_samples(samples: list[tuple[Path, str]], ref: Reference, trigger: str) -> dict[str, float]:
    """{"likeness/detection_rate", "likeness/match_rate", "likeness/mean_distance" (when a face
    was found), "likeness/copies", and "likeness/bleed" when a bleed prompt's image has a face}
    for (image, prompt) pairs; unreadable images are left out."""
    report = score_images([(p, _KEY, _kind(prompt, trigger)) for p, prompt in samples], ref, workers=1)  # training holds the cores
    g = report.groups[0]
    out = {"likeness/detection_rate": g.detection_rate, "likeness/match_rate": g.match_rate,
           "likeness/copies": float(g.copies)}
    if g.mean_distance is not None:
        out["likeness/mean_distance"] = g.mean_distance
    if g.bleed is not None:
        out["likeness/bleed"] = g.bleed
    return out


def faces_found(samples: list[tuple[Path, str]], trigger: str) -> dict[str, float]:
    """{"likeness/detection_rate"}: the share of the likeness prompts' samples with a face, when
    there is no reference to compare them with."""
    like = [p for p, prompt in samples if _kind(prompt, trigger) == "likeness"]
    images = [image for image, _ in map(read_image, like) if image is not None]
    found = sum(find_face(image) is not None for image in images)
    return {"likeness/detection_rate": round(found / len(images), 4) if images else 0.0}


class LiveLikeness:
    """Each epoch's samples scored against the training photos (embedded on first use)."""

    def __init__(self, photos: list[Path], trigger: str, cache: Path | None = None):
        self.photos, self.trigger, self.cache = photos, trigger, cache
        self.reference: Reference | None = None
        self.no_reference: str | None = None  # why there is nothing to compare with

    def score(self, samples: list[tuple[Path, str]]) -> tuple[dict[str, float], str]:
        """(the scores, the terminal's words for them)."""
        if self.reference is None and self.no_reference is None:
            try:
                self.reference = build_reference(self.photos, self.cache)
            except LikenessError:
                self.no_reference = "no face found in the training photos, so nothing to compare with"
        if self.reference is None:
            scores = faces_found(samples, self.trigger)
        else:
            scores = score_samples(samples, self.reference, self.trigger)
        text = describe(scores)
        return scores, f"{text} ({self.no_reference})" if self.no_reference else text


def describe(scores: dict[str, float]) -> str:
    """The terminal's words for one epoch's scores."""
    if not scores["likeness/detection_rate"] and "likeness/bleed" not in scores:
        return "likeness: no faces in the samples"
    parts = [f"faces {scores['likeness/detection_rate']:.0%}"]
    if "likeness/match_rate" in scores:
        parts.append(f"match {scores['likeness/match_rate']:.0%}")
    if "likeness/mean_distance" in scores:
        parts.append(f"distance {scores['likeness/mean_distance']:.3f}")
    if "likeness/bleed" in scores:
        parts.append(f"bleed {scores['likeness/bleed']:.0%}")
    if scores.get("likeness/copies"):
        parts.append(f"copies {scores['likeness/copies']:.0f}")
    return "likeness: " + ", ".join(parts)
