"""The set-wide audit, over the accepted photos once all are cropped: near-duplicates (pHash)
and identity outliers (each face's distance to the average of the others; quality.py measures)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import quality
from .options import PrepareOptions
from .report import PrepareItem

DUPLICATE_NOTE = "near-duplicate of "
OUTLIER_NOTE = "identity outlier: "


def audit(items: list[PrepareItem], options: PrepareOptions) -> None:
    """Set-wide checks over the accepted photos: near-duplicates and identity outliers."""
    accepted = [it for it in items if it.status == "accepted"]
    dup = quality.near_duplicates([it.phash for it in accepted], options.duplicate_bits)
    for it, j in zip(accepted, dup):
        if j is not None:
            it.duplicate_of = accepted[j].source
            it.warnings.append(f"{DUPLICATE_NOTE}{Path(accepted[j].source).name} (pHash within {options.duplicate_bits} bits)")
    with_desc = [it for it in accepted if it.descriptor]
    distances = quality.identity_distances([np.asarray(it.descriptor) for it in with_desc])
    flags = quality.outliers(distances, options.outlier_threshold)
    for it, d, flag in zip(with_desc, distances, flags):
        it.identity_distance = round(d, 4)
        it.identity_outlier = flag
        if flag:
            it.warnings.append(
                f"{OUTLIER_NOTE}{d:.2f} from the others' average face (over {options.outlier_threshold}); "
                f"is this somebody else?"
            )


def clear(item: PrepareItem) -> None:
    """Forget an entry's audit (it is made again over the new set)."""
    item.warnings = [w for w in item.warnings if not w.startswith((DUPLICATE_NOTE, OUTLIER_NOTE))]
    item.duplicate_of, item.identity_outlier, item.identity_distance = None, False, None
