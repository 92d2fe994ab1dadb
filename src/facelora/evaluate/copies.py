"""Is a generated face a copy of one training photo? The identity descriptor alone cannot say:
every good image of the person is close to every photo of the person. A copy is close on
identity AND repeats that photo's pose and expression (the 68 landmarks' geometry, kept
unrotated so a tilted head differs), its framing (where the face sits in the frame and how big)
and its pixels (a perceptual hash of the face crop).

The bounds sit below what two different photos of one person share: distinct photos differ in
pose, expression or framing by more than the bounds even when dlib finds them very alike, so a
face within all four is closer to that one photo than the photos are to each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .. import faces

# Caps, measured on the astronaut's variants (tests/test_evaluate_copies.py): near copies (crops,
# resizes, colour changes) stay well inside them, other framings and poses fall outside one.
ID_CAP = 0.2  # dlib distance
SHAPE_CAP = 0.06  # RMS of the normalised landmarks (a 5 degree tilt is 0.09)
FRAME_CAP = 0.1  # face centre moved by this share of the frame (or its size by e^0.25)
HASH_CAP = 10  # differing bits of the 64-bit pHash
# The detector's box size comes in pyramid steps of about 0.18 in log scale, so size counts
# at 1/2.5 of a move of the centre.
_SIZE_PER_MOVE = 2.5


@dataclass(frozen=True)
class FaceLook:
    """What a face looks like beyond who it is."""

    shape: np.ndarray  # 68 x 2 landmarks, centred and scaled to unit RMS radius
    frame: tuple[float, float, float]  # box centre x, y as shares of the frame; box height share
    phash: object  # imagehash.ImageHash of the face crop

    def apart(self, other: "FaceLook") -> tuple[float, float, int]:
        """(landmark geometry, framing, pHash bits) between two faces."""
        shape = float(np.sqrt(np.mean(np.sum((self.shape - other.shape) ** 2, axis=1))))
        (x1, y1, h1), (x2, y2, h2) = self.frame, other.frame
        frame = max(abs(x1 - x2), abs(y1 - y2), abs(np.log(max(h1, 1e-6) / max(h2, 1e-6))) / _SIZE_PER_MOVE)
        return shape, float(frame), int(self.phash - other.phash)


@lru_cache(maxsize=None)
def _shape68():
    import dlib

    return dlib.shape_predictor(str(faces.models_dir() / "shape_predictor_68_face_landmarks.dat"))


def look(image: np.ndarray, face: faces.Face) -> FaceLook:
    import dlib
    import imagehash
    from PIL import Image

    h, w = image.shape[:2]
    rect = dlib.rectangle(round(face.left), round(face.top), round(face.right), round(face.bottom))
    parts = _shape68()(np.ascontiguousarray(image), rect).parts()
    pts = np.array([(p.x, p.y) for p in parts], dtype=np.float64)
    pts -= pts.mean(axis=0)
    pts /= max(float(np.sqrt(np.mean(np.sum(pts**2, axis=1)))), 1e-6)
    cx, cy = face.center
    # The head with a margin: the detector's box jitters by a few pixels, which a tight crop's
    # hash feels more than a copy's colour changes.
    half = 0.8 * max(face.width, face.height)
    crop = Image.fromarray(image).crop((round(cx - half), round(cy - half), round(cx + half), round(cy + half)))
    return FaceLook(pts, (cx / w, cy / h, face.height / h), imagehash.phash(crop))


@dataclass(frozen=True)
class Bounds:
    identity: float = ID_CAP
    shape: float = SHAPE_CAP
    frame: float = FRAME_CAP
    hash: int = HASH_CAP

    def holds(self, identity: float, apart: tuple[float, float, int]) -> bool:
        shape, frame, bits = apart
        return identity < self.identity and shape < self.shape and frame < self.frame and bits <= self.hash


@dataclass(frozen=True)
class CopyOf:
    photo: int  # index into the reference's photos
    identity: float
    shape: float
    frame: float
    hash: int


def find_copy(vector: np.ndarray, face_look: FaceLook, vectors: list[np.ndarray], looks: list[FaceLook],
              within: Bounds = Bounds()) -> CopyOf | None:
    """The training photo this face copies (the closest by identity among those within every
    bound), or None."""
    best: CopyOf | None = None
    for i, (v, lk) in enumerate(zip(vectors, looks)):
        d = faces.distance(vector, v)
        apart = face_look.apart(lk)
        if within.holds(d, apart) and (best is None or d < best.identity):
            best = CopyOf(i, round(d, 4), round(apart[0], 4), round(apart[1], 4), apart[2])
    return best
