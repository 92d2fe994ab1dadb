"""How alike generated faces are to the person: dlib's 128-d identity descriptor of each image's
largest face, compared with the centroid of the training photos' descriptors.

- Reference: the prepared training crops. Their leave-one-out distances (each photo to the
  centroid of the others) are the baseline: how alike the real photos are to each other.
- Per image: face found or not, distance to the centroid, match (distance below the threshold,
  0.6 by default: dlib's "same person" line), distance to the nearest single training photo.
- Per group (one LoRA file at one weight, over prompts and seeds): detection rate, mean
  distance, match rate, and the spread of the generated faces among themselves. A spread far
  below the training photos' own spread means the LoRA draws one face over and over: clones
  of a training photo, the mark of an over-trained file.
- Best: the group with the highest match rate, then the lowest mean distance (to 0.01), then the
  lower weight, then the earlier file. Groups without a LoRA or at weight 0 are the base model
  and never the pick. When no image has a face there is no pick, and the report says so.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import faces
from ..errors import FaceloraError
from ..fileio import atomic_write_json, read_json

Progress = Callable[[int, int, str], None]  # (done, total, what)

MATCH_THRESHOLD = faces.MATCH_THRESHOLD
# A group's faces count as clones when their spread is below this fraction of the training
# photos' own spread (or below CLONE_SPREAD when there are too few photos for a baseline).
CLONE_RATIO = 0.5
CLONE_SPREAD = 0.15
RULE = ("Best = highest match rate, then lowest mean distance (to 0.01), then the lower weight, "
        "then the earlier file; the base model (no LoRA or weight 0) is never the pick.")


class LikenessError(FaceloraError, ValueError):
    """Nothing to compare with (no reference face) or nothing to score."""


def load_rgb(path: Path) -> np.ndarray:
    from PIL import Image, ImageOps

    with Image.open(path) as im:
        return np.asarray(ImageOps.exif_transpose(im).convert("RGB"))


# --- the reference ---------------------------------------------------------------------------


@dataclass
class Reference:
    """The training photos' descriptors, their centroid, and the leave-one-out baseline."""

    paths: list[Path]  # photos with a face, in the order of `vectors`
    vectors: list[np.ndarray]
    no_face: list[Path] = field(default_factory=list)

    @property
    def centroid(self) -> np.ndarray:
        return np.mean(np.stack(self.vectors), axis=0)

    def baseline(self) -> dict[str, Any]:
        loo = faces.leave_one_out(self.vectors) if len(self.vectors) >= 2 else []
        return {
            "photos": len(self.paths) + len(self.no_face),
            "faces": len(self.vectors),
            "mean": float(np.mean(loo)) if loo else None,
            "max": float(np.max(loo)) if loo else None,
            "per_photo": [{"path": str(p), "distance": round(d, 4)} for p, d in zip(self.paths, loo)],
            "no_face": [str(p) for p in self.no_face],
            "about": "each training photo's distance to the centroid of the others (leave-one-out)",
        }


def _cache_key(path: Path) -> str:
    st = path.stat()
    return f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"


def build_reference(paths: list[Path], cache: Path | None = None, progress: Progress | None = None) -> Reference:
    """Embed the reference photos. With `cache`, descriptors of unchanged files are reused."""
    paths = [Path(p) for p in paths]
    if not paths:
        raise LikenessError("No reference photos: the project's image/<repeats>_<trigger>/ folder is empty; run facelora prepare first.")
    stored: dict[str, Any] = read_json(cache, {}) if cache else {}
    ref = Reference([], [])
    fresh: dict[str, Any] = {}
    for i, p in enumerate(paths):
        key = _cache_key(p)
        if key in stored:
            vec = stored[key]
        else:
            _, d = faces.embed(load_rgb(p))
            vec = None if d is None else [float(x) for x in d]
        fresh[key] = vec
        if vec is None:
            ref.no_face.append(p)
        else:
            ref.paths.append(p)
            ref.vectors.append(np.asarray(vec, dtype=np.float64))
        if progress:
            progress(i + 1, len(paths), f"reference {p.name}")
    if cache and fresh != stored:
        atomic_write_json(cache, fresh)
    if not ref.vectors:
        raise LikenessError(
            f"None of the {len(paths)} reference photos has a face dlib can find, so there is nothing "
            f"to compare with. Use the prepared crops (facelora prepare) or clearer photos."
        )
    return ref


# --- images and groups -----------------------------------------------------------------------


@dataclass(frozen=True)
class GroupKey:
    """What an image was made with: one LoRA file (or none) at a weight, and where it sorts."""

    file: str | None
    weight: float | None
    order: int = 0  # the file's place in training order (ties go to the earlier file)
    label: str = ""

    @property
    def is_base(self) -> bool:
        return self.file is None or self.weight == 0


@dataclass
class ImageScore:
    path: str
    face: bool
    distance: float | None
    match: bool
    nearest: float | None = None  # distance to the closest single training photo
    box: list[int] | None = None
    group: str = ""
    vector: np.ndarray | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("vector")
        return d


def score_image(image: np.ndarray, ref: Reference, threshold: float = MATCH_THRESHOLD,
                centroid: np.ndarray | None = None) -> ImageScore:
    """One image against the reference. An image without a face (noise, a landscape) is a
    result, not an error: face False, distance None."""
    face, vec = faces.embed(image)
    if vec is None:
        return ImageScore("", False, None, False)
    c = ref.centroid if centroid is None else centroid
    d = faces.distance(vec, c)
    nearest = min(faces.distance(vec, r) for r in ref.vectors)
    return ImageScore("", True, round(d, 4), d < threshold, round(nearest, 4), face.as_list(), vector=vec)


@dataclass
class GroupScore:
    label: str
    file: str | None
    weight: float | None
    order: int
    images: int
    faces: int
    detection_rate: float
    mean_distance: float | None
    match_rate: float
    spread: float | None  # mean leave-one-out distance among the group's own faces
    clones: bool = False
    warning: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _group(key: GroupKey, scores: list[ImageScore], clone_below: float) -> GroupScore:
    found = [s for s in scores if s.face]
    dists = [s.distance for s in found]
    vecs = [s.vector for s in found if s.vector is not None]
    spread = float(np.mean(faces.leave_one_out(vecs))) if len(vecs) >= 2 else None
    clones = spread is not None and spread < clone_below
    warning = None
    if clones:
        warning = (f"{key.label}: the {len(vecs)} generated faces are nearly identical (spread {spread:.3f}, "
                   f"below {clone_below:.3f}): the LoRA repeats one face, a sign of over-training. "
                   f"Prefer an earlier file or a lower weight.")
    n = len(scores)
    return GroupScore(
        label=key.label, file=key.file, weight=key.weight, order=key.order, images=n, faces=len(found),
        detection_rate=round(len(found) / n, 4) if n else 0.0,
        mean_distance=round(float(np.mean(dists)), 4) if dists else None,
        match_rate=round(sum(s.match for s in scores) / n, 4) if n else 0.0,
        spread=round(spread, 4) if spread is not None else None, clones=clones, warning=warning,
    )


def pick_best(groups: list[GroupScore]) -> GroupScore | None:
    """The rule in RULE; None when no LoRA group has a face."""
    candidates = [g for g in groups if g.file is not None and g.weight not in (None, 0) and g.faces > 0]
    if not candidates:
        return None
    return min(candidates, key=lambda g: (-g.match_rate, round(g.mean_distance, 2), g.weight, g.order))


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
    base_model: str | None = None
    tiny: bool = False
    seconds: float = 0.0
    heatmap: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "threshold": self.threshold,
            "rule": self.rule,
            "verdict": self.verdict,
            "best": self.best.to_dict() if self.best else None,
            "baseline": self.baseline,
            "groups": [g.to_dict() for g in self.groups],
            "images": [s.to_dict() for s in self.images],
            "warnings": self.warnings,
            "base_model": self.base_model,
            "tiny_test_model": self.tiny,
            "seconds": round(self.seconds, 2),
            "heatmap": self.heatmap,
        }


def _verdict(best: GroupScore | None, images: list[ImageScore], threshold: float, tiny: bool) -> str:
    noise = " (tiny test model: its images are noise, so this says nothing about likeness)" if tiny else ""
    if not images:
        return "No images were scored."
    if not any(s.face for s in images):
        return f"No generated image has a face, so no file or weight can be picked{noise}."
    if best is None:
        return f"Only base-model images (no LoRA or weight 0) have faces, so no file or weight can be picked{noise}."
    what = f"{best.file} at weight {best.weight:g}"
    if best.match_rate == 0:
        return (f"No image matches the person (distance below {threshold:g}); the closest is {what} "
                f"(mean distance {best.mean_distance:.3f}){noise}.")
    return (f"Most alike: {what}: {best.match_rate:.0%} of its images match, mean distance "
            f"{best.mean_distance:.3f}{noise}.")


def score_images(items: list[tuple[Path, GroupKey]], ref: Reference, threshold: float = MATCH_THRESHOLD,
                 clone_ratio: float = CLONE_RATIO, progress: Progress | None = None,
                 base_model: str | None = None, tiny: bool = False) -> LikenessReport:
    """Score every image and summarise each group (in the order the groups first appear)."""
    if not items:
        raise LikenessError("No images to score.")
    t0 = time.perf_counter()
    centroid = ref.centroid
    baseline = ref.baseline()
    clone_below = clone_ratio * baseline["mean"] if baseline["mean"] else CLONE_SPREAD
    scores: list[ImageScore] = []
    by_group: dict[GroupKey, list[ImageScore]] = {}
    for i, (path, key) in enumerate(items):
        s = score_image(load_rgb(path), ref, threshold, centroid)
        s.path, s.group = str(path), key.label
        scores.append(s)
        by_group.setdefault(key, []).append(s)
        if progress:
            progress(i + 1, len(items), Path(path).name)
    groups = [_group(k, v, clone_below) for k, v in by_group.items()]
    best = pick_best(groups)
    warnings = [g.warning for g in groups if g.warning]
    if baseline["no_face"]:
        warnings.append(f"{len(baseline['no_face'])} reference photo(s) have no face dlib can find and are left out.")
    return LikenessReport(threshold, baseline, scores, groups, best, _verdict(best, scores, threshold, tiny),
                          warnings=warnings, base_model=base_model, tiny=tiny, seconds=time.perf_counter() - t0)
