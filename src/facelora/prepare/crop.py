"""Where to cut the square training image out of a photo, from the face box.

A face LoRA learns best from 1:1 crops of the head with a little of the shoulders: a square of
about 2.6 face heights, centred about 0.4 face heights below the centre of the face box (dlib's
box runs from the brows to the chin, so the hair sits above it and the neck below).

A square that would leave the photo is made smaller around the same centre, down to the
smaller of the wanted side and `MIN_FACE_RATIO` face heights; if it still leaves the photo it is
moved inside, as long as it keeps the whole face. It is never padded: black borders would be
learned as part of the person's photos. When no square inside the photo holds the face (the
face is cut by the photo's edge), the photo is rejected with that reason.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..faces import Face

FACE_RATIO = 2.6  # crop side / face-box height
FACE_OFFSET = 0.4  # crop centre below the face-box centre, in face heights
MIN_FACE_RATIO = 2.0  # shrink around the centre no further than this; move the square instead


class CropRejected(Exception):
    """No square inside the photo holds the face; str() is the reason."""


@dataclass(frozen=True)
class CropBox:
    left: int
    top: int
    side: int

    @property
    def right(self) -> int:
        return self.left + self.side

    @property
    def bottom(self) -> int:
        return self.top + self.side

    def as_list(self) -> list[int]:
        return [self.left, self.top, self.right, self.bottom]

    def holds(self, face: Face, tolerance: float = 0.5) -> bool:
        return (face.left >= self.left - tolerance and face.top >= self.top - tolerance
                and face.right <= self.right + tolerance and face.bottom <= self.bottom + tolerance)


def clip_face(face: Face, width: int, height: int) -> Face:
    """The part of the face box inside the photo (dlib's boxes may stick out a few pixels)."""
    return Face(max(face.left, 0.0), max(face.top, 0.0), min(face.right, float(width)),
                min(face.bottom, float(height)), face.detector, face.score)


def square_crop(face: Face, width: int, height: int, face_ratio: float = FACE_RATIO,
                face_offset: float = FACE_OFFSET) -> CropBox:
    """The square to cut from a `width` x `height` photo for `face` (see the module's rules)."""
    if face_ratio <= 0:
        raise ValueError("face_ratio must be positive")
    cx, cy = face.center
    cy += face_offset * face.height
    inside = clip_face(face, width, height)
    if inside.width <= 0 or inside.height <= 0:
        raise CropRejected("the face box lies outside the photo")

    wanted = face_ratio * face.height
    centred = 2 * min(cx, width - cx, cy, height - cy)  # the largest square around (cx, cy)
    floor = min(wanted, MIN_FACE_RATIO * face.height)
    side = min(wanted, max(centred, floor), width, height)
    side = int(round(side))
    if side < max(inside.width, inside.height) - 0.5:
        raise CropRejected(
            f"the face ({inside.width:.0f} x {inside.height:.0f} px) does not fit in a square inside "
            f"the photo ({width} x {height}); use a photo with more room around the face"
        )
    left = int(round(min(max(cx - side / 2, 0), width - side)))
    top = int(round(min(max(cy - side / 2, 0), height - side)))
    box = CropBox(left, top, side)
    if not box.holds(inside):
        # The square had to move so far that the face no longer fits: move it onto the face.
        left = int(round(min(max(left, inside.right - side), inside.left, width - side)))
        top = int(round(min(max(top, inside.bottom - side), inside.top, height - side)))
        box = CropBox(max(left, 0), max(top, 0), side)
        if not box.holds(inside):
            raise CropRejected(
                f"no square of {side} px inside the photo ({width} x {height}) holds the whole face; "
                f"use a photo with more room around the face"
            )
    return box
