"""Who is in a photo: the person (the largest face), and anybody else who would end up in the
training image with them.

- Weak HOG detections on the person's own body (a spacesuit's patch, a collar) are not people:
  they are dropped when they lie below the person's chin, within a few face widths.
- A second face taller than `second_face_ratio` of the person's means several people.
- Any other face inside the crop, even partly (IN_CROP_SHARE of its box), would be learned as
  part of the person: that photo is rejected too. The crop is searched again at a scale that shows faces down to OTHER_FACE_SHARE of the
  person's face height (at least MIN_OTHER_PX source pixels), unless the first pass already saw
  faces that small: a 60 px face beside a 300 px one in a 3000 px photo is found.
"""

from __future__ import annotations

import numpy as np

from .. import faces
from ..messages import Message, said
from ..faces import Face
from .crop import Framed

BODY_WIDTHS = 2.5  # the body, below the chin, spans this many face widths either side of the face
OTHER_FACE_SHARE = 0.2  # the crop is searched for faces down to this share of the person's height
MIN_OTHER_PX = 40  # ... and no smaller than this many source pixels (what the first pass sees on a small photo)
IN_CROP_SHARE = 0.2  # a face this much inside the crop is in the training image (half a face shows)
_FIRST_PASS_MIN_PX = 40  # HOG's smallest face on a photo the first pass sees whole and upsampled


class SeveralPeople(Exception):
    """Another person would be in the training image; str() is the reason."""


def on_body(candidate: Face, person: Face) -> bool:
    """A weak detection below the person's chin, over their body: a false alarm, not a face."""
    cx, cy = candidate.center
    return (candidate.score < faces.WEAK_SCORE and cy > person.bottom
            and abs(cx - person.center[0]) < BODY_WIDTHS * person.width)


def subject(found: list[Face]) -> tuple[Face, list[Face]]:
    """The person's face (the largest) and the other faces worth counting."""
    person = found[0]
    return person, [f for f in found[1:] if not on_body(f, person)]


def second_face_reason(person: Face, others: list[Face], second_face_ratio: float) -> Message | None:
    """'several people: ...' when another face is nearly as large as the person's."""
    if others and others[0].height > second_face_ratio * person.height:
        return said("several people: a second face {share:.0%} of the subject's height (use --allow-multiple "
                    "to keep the largest face)", share=others[0].height / person.height)
    return None


def in_crop(rgb: np.ndarray, person: Face, others: list[Face], framed: Framed) -> list[Face]:
    """The other faces that show in the crop; small faces are looked for again in the crop's
    region."""
    corners = framed.corners()
    region = (*corners.min(axis=0), *corners.max(axis=0))
    min_px = max(OTHER_FACE_SHARE * person.height, MIN_OTHER_PX)
    first_pass_px = _FIRST_PASS_MIN_PX * max(1.0, max(rgb.shape[:2]) / 800)
    found = list(others)
    if min_px < first_pass_px:
        found += [f for f in faces.find_small(rgb, min_px, region) if not _same(f, person)
                  and not any(_same(f, o) for o in others)]
    return [f for f in found if not on_body(f, person) and _share_inside(f, framed) >= IN_CROP_SHARE]


def _share_inside(face: Face, framed: Framed) -> float:
    """How much of the face's box (moved into the crop) lies inside the crop."""
    corners = np.array([(x, y, 1.0) for x in (face.left, face.right) for y in (face.top, face.bottom)])
    moved = corners @ framed.matrix.T
    (l, t), (r, b) = moved.min(axis=0), moved.max(axis=0)
    side = framed.box.side
    w, h = max(0.0, min(r, side) - max(l, 0)), max(0.0, min(b, side) - max(t, 0))
    return w * h / max((r - l) * (b - t), 1e-9)


def _same(a: Face, b: Face) -> bool:
    """Two detections of one face: the centre of one inside the other."""
    cx, cy = a.center
    return b.left <= cx <= b.right and b.top <= cy <= b.bottom
