"""The audit of a photo set: what makes a photo a poor teacher of a face.

- blur: the variance of the Laplacian over the face, measured on the face resized to 128 px so
  large and small faces compare (a sharp face scores hundreds, a soft one tens);
- near-duplicates: perceptual hashes (imagehash's pHash) of the crops within a few bits;
- identity outliers: each photo's dlib descriptor against the centroid of all the others
  (faces.leave_one_out); a photo of somebody else stands far from the rest.
"""

from __future__ import annotations

from collections.abc import Sequence

import imagehash
import numpy as np
from PIL import Image
from scipy import ndimage

from .. import faces
from ..faces import Face
from .options import DUPLICATE_BITS, OUTLIER_DISTANCE

BLUR_SIZE = 128


def blur(rgb: np.ndarray, face: Face) -> float:
    """Variance of the Laplacian of the grey face, resized to BLUR_SIZE square: higher is sharper."""
    h, w = rgb.shape[:2]
    l, t, r, b = max(int(face.left), 0), max(int(face.top), 0), min(int(round(face.right)), w), min(int(round(face.bottom)), h)
    # only the face's pixels become an image, not the whole photo
    face_only = Image.fromarray(np.ascontiguousarray(rgb[t:b, l:r]))
    grey = face_only.convert("L").resize((BLUR_SIZE, BLUR_SIZE), Image.Resampling.BILINEAR)
    return float(ndimage.laplace(np.asarray(grey, dtype=np.float64)).var())


def phash(image: Image.Image) -> imagehash.ImageHash:
    return imagehash.phash(image)


def hash_distance(a: str, b: str) -> int:
    """Bits that differ between two pHashes written as hex."""
    return imagehash.hex_to_hash(a) - imagehash.hex_to_hash(b)


def near_duplicates(hashes: Sequence[str | None], max_bits: int = DUPLICATE_BITS) -> list[int | None]:
    """For each crop, the index of an earlier crop it nearly repeats (None when it is new)."""
    out: list[int | None] = []
    for i, h in enumerate(hashes):
        match = None
        if h is not None:
            for j in range(i):
                if hashes[j] is not None and out[j] is None and hash_distance(h, hashes[j]) <= max_bits:
                    match = j
                    break
        out.append(match)
    return out


def identity_distances(descriptors: Sequence[np.ndarray]) -> list[float]:
    """Each photo's distance to the centroid of the others (0 for a set of one)."""
    return faces.leave_one_out(list(descriptors))


def outliers(distances: Sequence[float], threshold: float = OUTLIER_DISTANCE) -> list[bool]:
    """Which photos stand out: farther than `threshold` from the others (needs three photos)."""
    if len(distances) < 3:
        return [False] * len(distances)
    return [d > threshold for d in distances]
