"""The scoreboard: every LoRA file at every weight, over the probe prompts' images (probes.py).

- likeness: on the likeness prompts (the trigger in neutral portraits), detection rate, mean
  distance to the photos' centroid, match rate;
- flexibility: the match rate on the flexibility prompts (poses and settings the photos lack);
- bleed: the share of faces in the bleed prompts' images (other people, no trigger) that match
  the person: the LoRA puts the face on everyone;
- copies: faces that copy one training photo (copies.py); clones: faces so alike among
  themselves that the LoRA draws one face over and over;
- validation loss, when training recorded one in the file.
Images without a probe kind (an A1111 folder, an older grid) count as likeness images.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import faces, parallel
from ..messages import Message, said
from .likeness import MATCH_THRESHOLD, ImageScore, Progress, Reference, Skipped, LikenessError, describe_file, score_described

# A group's faces count as clones when their spread is below this fraction of the training
# photos' own spread (or below CLONE_SPREAD when there are too few photos for a baseline).
CLONE_RATIO = 0.5
CLONE_SPREAD = 0.15
# Bleed: a warning when more than this share of the faces in the bleed images is the person.
BLEED_WARN = 0.25
RULE = ("Best = among the clean files and weights (no copy, clone or bleed warning), the highest "
        "match rate over the likeness and flexibility prompts, then the lowest mean distance (to 0.01), "
        "then the lower weight, then the earlier file; the base model (no LoRA or weight 0) is never "
        "the pick, and when no file with faces is clean there is no pick.")

TINY_NOISE = " (tiny test model: its images are noise, so this says nothing about likeness)"  # ends a verdict


@dataclass(frozen=True)
class GroupKey:
    """What an image was made with: one LoRA file (or none) at a weight, and where it sorts."""

    file: str | None
    weight: float | None
    order: int = 0  # the file's place in training order (ties go to the earlier file)
    label: str = ""
    validation_loss: float | None = None


@dataclass
class GroupScore:
    label: str
    file: str | None
    weight: float | None
    order: int
    images: int  # likeness images
    faces: int
    detection_rate: float
    mean_distance: float | None
    match_rate: float
    spread: float | None  # mean leave-one-out distance among the group's own faces
    clones: bool = False
    warning: str | None = None  # the first of `warnings` (kept for older readers)
    flex_images: int = 0
    flex_faces: int = 0
    flexibility: float | None = None  # match rate on the flexibility prompts
    bleed_images: int = 0
    bleed_faces: int = 0
    bleed: float | None = None  # share of the bleed images' faces that match the person
    copies: int = 0
    copy_of: list[str] = field(default_factory=list)
    validation_loss: float | None = None
    warnings: list[str] = field(default_factory=list)
    warnings_said: list[Message] = field(default_factory=list)  # each warning's template and values (the GUI's)

    def warn(self, message: Message) -> None:
        self.warnings.append(message.text)
        self.warnings_said.append(message)

    @property
    def clean(self) -> bool:
        return not self.warnings

    @property
    def alike(self) -> float:
        """Match rate over the likeness and flexibility images together."""
        n = self.images + self.flex_images
        matched = self.match_rate * self.images + (self.flexibility or 0.0) * self.flex_images
        return matched / n if n else 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _group(key: GroupKey, scores: list[ImageScore], clone_below: float) -> GroupScore:
    like = [s for s in scores if s.kind == "likeness"]
    flex = [s for s in scores if s.kind == "flexibility"]
    bleed = [s for s in scores if s.kind == "bleed" and s.face]
    found = [s for s in like if s.face]
    dists = [s.distance for s in found]
    vecs = [s.vector for s in like + flex if s.face and s.vector is not None]
    spread = float(np.mean(faces.leave_one_out(vecs))) if len(vecs) >= 2 else None
    copied = [s for s in scores if s.copy_of and s.kind != "bleed"]
    g = GroupScore(
        label=key.label, file=key.file, weight=key.weight, order=key.order, images=len(like), faces=len(found),
        detection_rate=_rate(len(found), len(like)) or 0.0,
        mean_distance=round(float(np.mean(dists)), 4) if dists else None,
        match_rate=_rate(sum(s.match for s in like), len(like)) or 0.0,
        spread=round(spread, 4) if spread is not None else None, clones=spread is not None and spread < clone_below,
        flex_images=len(flex), flex_faces=sum(s.face for s in flex), flexibility=_rate(sum(s.match for s in flex), len(flex)),
        bleed_images=sum(s.kind == "bleed" for s in scores), bleed_faces=len(bleed),
        bleed=_rate(sum(s.match for s in bleed), len(bleed)),
        copies=len(copied), copy_of=sorted({Path(s.copy_of).name for s in copied}), validation_loss=key.validation_loss,
    )
    if g.clones:
        g.warn(said("{label}: the {n} generated faces are nearly identical (spread {spread:.3f}, below {least:.3f}): "
                    "the LoRA repeats one face, a sign of over-training. Prefer an earlier file or a lower weight.",
                    label=key.label, n=len(vecs), spread=spread, least=clone_below))
    if g.copies:
        g.warn(said("{label}: {n} face(s) copy a training photo ({photos}): same face, pose, framing and pixels; the "
                    "LoRA reproduces its photos instead of the person.", label=key.label, n=g.copies,
                    photos=", ".join(g.copy_of)))
    if g.bleed is not None and g.bleed > BLEED_WARN:
        g.warn(said("{label}: {share:.0%} of the faces in the bleed prompts (other people, no trigger) are the "
                    "person: the LoRA puts the face on everyone.", label=key.label, share=g.bleed))
    g.warning = g.warnings[0] if g.warnings else None
    return g


def pick_best(groups: list[GroupScore], clean_only: bool = True) -> GroupScore | None:
    """The rule in RULE; None when no clean LoRA group has a face (with `clean_only` False: the
    same order over every group, warnings or not, for an install the user forces)."""
    candidates = [g for g in groups if g.file is not None and g.weight not in (None, 0) and g.faces + g.flex_faces > 0]
    clean = [g for g in candidates if g.clean or not clean_only]
    if not clean:
        return None
    return min(clean, key=lambda g: (-round(g.alike, 4), round(g.mean_distance if g.mean_distance is not None else 9, 2),
                                     g.weight, g.order))


@dataclass
class LikenessReport:
    threshold: float
    baseline: dict[str, Any]
    images: list[ImageScore]
    groups: list[GroupScore]
    best: GroupScore | None
    verdict: str
    rule: str = RULE
    warnings: list[str] = field(default_factory=list)
    verdict_said: Message | None = None  # the verdict's and the warnings' templates and values (the GUI's)
    warnings_said: list[Message] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    base_model: str | None = None
    tiny: bool = False
    seconds: float = 0.0
    heatmap: str | None = None
    probes: str | None = None  # the probe prompts file the grid used

    def to_dict(self) -> dict[str, Any]:
        return {
            "threshold": self.threshold, "rule": self.rule, "verdict": self.verdict,
            "best": self.best.to_dict() if self.best else None,
            "baseline": self.baseline,
            "groups": [g.to_dict() for g in self.groups],
            "images": [s.to_dict() for s in self.images],
            "warnings": self.warnings,
            "verdict_said": asdict(self.verdict_said) if self.verdict_said else None,
            "warnings_said": [asdict(m) for m in self.warnings_said],
            "skipped": [asdict(s) for s in self.skipped],
            "base_model": self.base_model, "tiny_test_model": self.tiny,
            "seconds": round(self.seconds, 2), "heatmap": self.heatmap, "probes": self.probes,
        }


def _verdict(best: GroupScore | None, groups: list[GroupScore], images: list[ImageScore], threshold: float,
             tiny: bool) -> Message:
    noise = TINY_NOISE if tiny else ""
    if not images:
        return said("No images were scored.")
    if not any(s.face for s in images):
        return said("No generated image has a face, so no file or weight can be picked{noise}.", noise=noise)
    if best is None:
        lora = [g for g in groups if g.file is not None and g.weight not in (None, 0) and g.faces + g.flex_faces]
        if lora:
            return said("No clean file: every file and weight with faces has a copy, clone or bleed warning ({n} "
                        "checked), so none is named{noise}.", n=len(lora), noise=noise)
        return said("Only base-model images (no LoRA or weight 0) have faces, so no file or weight can be "
                    "picked{noise}.", noise=noise)
    what = dict(file=best.file, weight=best.weight, noise=noise)
    if best.alike == 0:
        distance = best.mean_distance if best.mean_distance is not None else float("nan")
        return said("No image matches the person (distance below {threshold:g}); the closest clean one is {file} at "
                    "weight {weight:g} (mean distance {distance:.3f}){noise}.", threshold=threshold,
                    distance=distance, **what)
    if best.mean_distance is None:
        return said("Most alike: {file} at weight {weight:g}: {share:.0%} of its images match{noise}.",
                    share=best.alike, **what)
    return said("Most alike: {file} at weight {weight:g}: {share:.0%} of its images match, mean distance "
                "{distance:.3f}{noise}.", share=best.alike, distance=best.mean_distance, **what)


def score_images(items: list[tuple[Path, GroupKey] | tuple[Path, GroupKey, str]], ref: Reference,
                 threshold: float = MATCH_THRESHOLD, clone_ratio: float = CLONE_RATIO,
                 progress: Progress | None = None, base_model: str | None = None, tiny: bool = False,
                 workers: int | None = None) -> LikenessReport:
    """Score every image (item: path, group, optional probe kind) and summarise each group, in the
    order the groups first appear. Unreadable images are skipped with their reason. The faces are
    found on `workers` processes (parallel.worker_count: by default the cores this process may use)."""
    if not items:
        raise LikenessError("No images to score.")
    t0 = time.perf_counter()
    centroid = ref.centroid
    baseline = ref.baseline()
    clone_below = clone_ratio * baseline["mean"] if baseline["mean"] else CLONE_SPREAD
    scores: list[ImageScore] = []
    skipped: list[Skipped] = []
    by_group: dict[GroupKey, list[ImageScore]] = {}
    described = parallel.ordered(describe_file, [Path(it[0]) for it in items], workers)
    for i, ((path, key, *kind), (found, why)) in enumerate(zip(items, described)):
        if why is not None:
            skipped.append(Skipped(str(path), why))
        else:
            s = score_described(found, ref, threshold, centroid)
            s.path, s.group, s.kind = str(path), key.label, kind[0] if kind else "likeness"
            scores.append(s)
            by_group.setdefault(key, []).append(s)
        if progress:
            progress(i + 1, len(items), Path(path).name)
    if not scores:
        raise LikenessError("None of the {n} images is readable: {skipped}", n=len(items),
                            skipped="; ".join(s.line() for s in skipped[:3]))
    groups = [_group(k, v, clone_below) for k, v in by_group.items()]
    best = pick_best(groups)
    warnings = [w for g in groups for w in g.warnings_said]
    if baseline["no_face"]:
        warnings.append(said("{n} reference photo(s) have no face dlib can find and are left out.",
                             n=len(baseline["no_face"])))
    verdict = _verdict(best, groups, scores, threshold, tiny)
    return LikenessReport(threshold, baseline, scores, groups, best, verdict.text, warnings=[w.text for w in warnings],
                          verdict_said=verdict, warnings_said=warnings, skipped=ref.skipped + skipped, base_model=base_model, tiny=tiny,
                          seconds=time.perf_counter() - t0)
