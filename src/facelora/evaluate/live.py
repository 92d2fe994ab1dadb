"""Likeness while training: the samples of one epoch (sample_every_n_epochs) scored as they are
made, as scalars for TensorBoard (`likeness/...`), events.jsonl and the terminal line of that
epoch. A sample prompt that names the trigger is a likeness prompt; one that does not (another
person, the class word alone) is a bleed prompt: the person's face should not appear there.
"""

from __future__ import annotations

import re
from pathlib import Path

from .board import GroupKey, score_images
from .likeness import Reference

_KEY = GroupKey("samples", 1.0, 0, "samples")


def _kind(prompt: str, trigger: str) -> str:
    return "likeness" if re.search(rf"(?<!\w){re.escape(trigger)}(?!\w)", prompt) else "bleed"


def score_samples(samples: list[tuple[Path, str]], ref: Reference, trigger: str) -> dict[str, float]:
    """{"likeness/detection_rate", "likeness/match_rate", "likeness/mean_distance" (when a face
    was found), "likeness/copies", and "likeness/bleed" when a bleed prompt's image has a face}
    for (image, prompt) pairs; unreadable images are left out."""
    report = score_images([(p, _KEY, _kind(prompt, trigger)) for p, prompt in samples], ref)
    g = report.groups[0]
    out = {"likeness/detection_rate": g.detection_rate, "likeness/match_rate": g.match_rate,
           "likeness/copies": float(g.copies)}
    if g.mean_distance is not None:
        out["likeness/mean_distance"] = g.mean_distance
    if g.bleed is not None:
        out["likeness/bleed"] = g.bleed
    return out


def describe(scores: dict[str, float]) -> str:
    """The terminal's words for one epoch's scores."""
    parts = [f"faces {scores['likeness/detection_rate']:.0%}", f"match {scores['likeness/match_rate']:.0%}"]
    if "likeness/mean_distance" in scores:
        parts.append(f"distance {scores['likeness/mean_distance']:.3f}")
    if "likeness/bleed" in scores:
        parts.append(f"bleed {scores['likeness/bleed']:.0%}")
    if scores.get("likeness/copies"):
        parts.append(f"copies {scores['likeness/copies']:.0f}")
    return "likeness: " + ", ".join(parts)
