"""The set-wide audit, over the accepted photos once all are cropped: near-duplicates (pHash),
identity outliers (each face's distance to the average of the others; quality.py measures), and
the spread of head poses and expressions (facelora.headpose measures each photo)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from .. import headpose
from ..messages import said
from . import quality
from .options import PrepareOptions
from .report import Coverage, PrepareItem

DUPLICATE_NOTE = "near-duplicate of "  # how the audit's warnings begin (clear() drops them)
OUTLIER_NOTE = "identity outlier: "


def audit(items: list[PrepareItem], options: PrepareOptions) -> None:
    """Set-wide checks over the accepted photos: near-duplicates and identity outliers."""
    accepted = [it for it in items if it.status == "accepted"]
    dup = quality.near_duplicates([it.phash for it in accepted], options.duplicate_bits)
    for it, j in zip(accepted, dup):
        if j is not None:
            it.duplicate_of = accepted[j].source
            it.warn(said("near-duplicate of {name} (pHash within {bits} bits)", name=Path(accepted[j].source).name,
                         bits=options.duplicate_bits))
    with_desc = [it for it in accepted if it.descriptor]
    distances = quality.identity_distances([np.asarray(it.descriptor) for it in with_desc])
    flags = quality.outliers(distances, options.outlier_threshold)
    for it, d, flag in zip(with_desc, distances, flags):
        it.identity_distance = round(d, 4)
        it.identity_outlier = flag
        if flag:
            it.warn(said("identity outlier: {distance:.2f} from the others' average face (over {most}); is this "
                         "somebody else?", distance=d, most=options.outlier_threshold))


def clear(item: PrepareItem) -> None:
    """Forget an entry's audit (it is made again over the new set)."""
    item.warnings = [w for w in item.warnings if not w.startswith((DUPLICATE_NOTE, OUTLIER_NOTE))]
    item.warnings_said = [m for m in item.warnings_said if m.text in item.warnings]
    item.duplicate_of, item.identity_outlier, item.identity_distance = None, False, None


def measure_pose(points: np.ndarray, item: PrepareItem) -> None:
    """The photo's head pose and expression, from its 68 landmarks."""
    pose, mouth = headpose.estimate(points), headpose.mouth(points)
    item.yaw, item.pitch, item.expression = pose.yaw, pose.pitch, mouth.expression


def coverage(items: list[PrepareItem], plot: str | None = None) -> Coverage:
    """How the accepted photos spread over views and expressions, with a warning for a set that
    shows the face from one side only (no three-quarter view or profile) or with one expression:
    the LoRA learns the face as the photos show it. `plot`: the pose plot's name, when drawn."""
    measured = [it for it in items if it.status == "accepted" and it.yaw is not None]
    views = Counter(headpose.view(it.yaw) for it in measured)
    expressions = Counter(it.expression for it in measured)
    out = Coverage(photos=len(measured), views=dict(views), expressions=dict(expressions), plot=plot)
    n = len(measured)
    if n and not views["three-quarter"] and not views["profile"]:
        out.warn(said("no three-quarter view or profile: all {n} photo(s) face the camera (head turned under {most:.0f} "
                      "degrees); add some with the head turned to the side, or the LoRA will hardly draw the face "
                      "from another angle", n=n, most=headpose.FRONTAL))
    if n and len(expressions) == 1:
        out.warn(said("one expression ({expression}) in all {n} photo(s); add some with another (neutral, smile, "
                      "open mouth), or every image will wear it", expression=next(iter(expressions)), n=n))
    return out
