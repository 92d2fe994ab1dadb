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

import numpy as np

from .. import faces

# Caps, measured on the astronaut's variants (tests/test_evaluate_scoreboard.py and
# test_evaluate_likeness.py, /tmp calibration 2026-12-01): near copies (crops, resizes, colour
# changes) stay well inside them, other framings and poses fall outside one. With the framing
# from the landmarks, the near copies' framing is at most 0.065 apart from their photo, and the
# closest distinct framing that nothing else tells apart (a 340 px crop of the astronaut against
# a 1.2x zoom of her) 0.22; with the detector's box it was 0.042 against 0.095.
ID_CAP = 0.2  # dlib distance
SHAPE_CAP = 0.06  # RMS of the normalised landmarks (a 5 degree tilt is 0.09)
FRAME_CAP = 0.1  # face centre moved by this share of the frame (or its size by e^0.1)
HASH_CAP = 10  # differing bits of the 64-bit pHash
HASH_MARGIN = 0.8  # the pHash's square reaches this many landmark-box sides from the face's centre
LOOK_VERSION = 2  # bump when a look is measured differently (2: framing and crop from the landmarks)


@dataclass(frozen=True)
class FaceLook:
    """What a face looks like beyond who it is."""

    shape: np.ndarray  # 68 x 2 landmarks, centred and scaled to unit RMS radius
    frame: tuple[float, float, float]  # landmarks' centre x, y as shares of the frame; their height's share
    phash: object  # imagehash.ImageHash of the face crop

    def apart(self, other: "FaceLook") -> tuple[float, float, int]:
        """(landmark geometry, framing, pHash bits) between two faces."""
        shape = float(np.sqrt(np.mean(np.sum((self.shape - other.shape) ** 2, axis=1))))
        (x1, y1, h1), (x2, y2, h2) = self.frame, other.frame
        frame = max(abs(x1 - x2), abs(y1 - y2), abs(np.log(max(h1, 1e-6) / max(h2, 1e-6))))
        return shape, float(frame), int(self.phash - other.phash)


def look(image: np.ndarray, face: faces.Face) -> FaceLook:
    """The face's landmark geometry, framing and pHash, all taken from its 68 landmarks: they
    settle on the face wherever within its jitter the detector's box lands (HOG's boxes come in
    pyramid steps of 8 px at the scale it looks at), so a copy's framing and crop are its photo's."""
    import imagehash
    from PIL import Image

    h, w = image.shape[:2]
    pts = faces.landmarks(image, face)
    (left, top), (right, bottom) = pts.min(axis=0), pts.max(axis=0)
    cx, cy, size = (left + right) / 2, (top + bottom) / 2, max(right - left, bottom - top)
    shape = pts - pts.mean(axis=0)
    shape /= max(float(np.sqrt(np.mean(np.sum(shape**2, axis=1)))), 1e-6)
    # The head with a margin: a tight crop's hash feels a few pixels' shift more than a copy's
    # colour changes.
    half = HASH_MARGIN * size
    crop = Image.fromarray(image).crop((round(cx - half), round(cy - half), round(cx + half), round(cy + half)))
    return FaceLook(shape, (cx / w, cy / h, (bottom - top) / h), imagehash.phash(crop))


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
