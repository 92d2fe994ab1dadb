"""Where to cut the square training image out of a photo, from the head's landmarks.

The tutorial's crop: "1:1, focused on the head; a little shoulder is fine". Every length here is
in the face's own unit L, brow line to chin along the face (faces.Head.length); the top of the
skull is taken 0.9 L above the brow line (faces.CROWN_ABOVE_BROW), the eyes sit about 0.13 L
below it. A framing is the square's side in L and the eye line's height in it:

    head (default)  2.8 L, eyes at 0.45 of the height: the crown ~0.23 L below the top, the chin
                    ~0.67 L above the bottom (the neck, the top of the shoulders)
    face            1.9 L, eyes at 0.40: forehead to just under the chin; the hair is cut
    bust            4.0 L, eyes at 0.36: the head ~0.4 L below the top, shoulders and chest

The face is centred across (halfway between the ears). A square that leaves the photo shrinks and
moves, but always keeps the whole head (crown to chin, ear to ear, plus HEAD_MARGIN) for `head`
and `bust`, the landmarks for `face`. It is never padded: black borders would be learned as part
of the person's photos. When no square inside the photo holds the head:
- the photo is a close-up (no square inside it could hold a whole head): it is cut as tight as it
  is, holding the face, and `missing` names what the framing wanted but the photo lacks;
- otherwise the head is cut by the photo's edge, and the photo is rejected with that reason.
`level` first turns the photo about the eyes so the eye line is horizontal, when the turned
square still lies inside the photo (corners are never filled).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from PIL import Image

from ..errors import ConfigError, Templated
from ..messages import Message, said
from ..faces import Head


@dataclass(frozen=True)
class Framing:
    side: float  # the square's side, in brow-to-chin lengths
    eyes: float  # the eye line's height from the top, as a share of the side
    whole_head: bool  # must hold the whole head; else the face (the landmarks) is enough


FRAMINGS = {"head": Framing(2.8, 0.45, True), "face": Framing(1.9, 0.40, False), "bust": Framing(4.0, 0.36, True)}
DEFAULT_FRAMING = "head"
HEAD_MARGIN = 0.05  # lengths kept around the whole head (and around the face's landmarks)
LEVEL_FROM = 0.5  # degrees: a flatter eye line is left as it is
LEVEL_TRIES = 12  # square sizes tried, largest first, for one that stays inside the photo when turned
TILTED = 5.0  # degrees of roll from which the verdict says "tilted"


class CropRejected(Templated):
    """No square inside the photo holds the head; str() is the reason, `template` and `values` its parts."""


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

    def holds(self, box: tuple[float, float, float, float], tolerance: float = 1.0) -> bool:
        l, t, r, b = box
        return (l >= self.left - tolerance and t >= self.top - tolerance
                and r <= self.right + tolerance and b <= self.bottom + tolerance)


@dataclass(frozen=True)
class Framed:
    """The square to cut, in the photo's pixels (or the levelled photo's, when `angle` is set)."""

    box: CropBox
    whole_head: bool  # the crop holds the whole head
    missing: tuple[str, ...] = ()  # what a close-up leaves out that the framing wanted: hair, chin
    roll: float = 0.0  # the eye line's roll in the photo, degrees
    angle: float = 0.0  # degrees the photo was turned (counter-clockwise) about `pivot` first
    pivot: tuple[float, float] = (0.0, 0.0)

    @property
    def matrix(self) -> np.ndarray:
        """2 x 3 affine map from the photo's pixels to the crop's (before scaling)."""
        m = _rotation(self.pivot, self.angle)
        m[:, 2] -= (self.box.left, self.box.top)
        return m

    def corners(self) -> np.ndarray:
        """The square's corners in the photo's pixels, clockwise from the top left."""
        back = np.linalg.inv(np.vstack([self.matrix, [0, 0, 1]]))[:2]
        s = self.box.side
        return np.array([(0, 0, 1.0), (s, 0, 1.0), (s, s, 1.0), (0, s, 1.0)]) @ back.T

    def cut(self, image: Image.Image) -> Image.Image:
        if not self.angle:
            return image.crop(tuple(self.box.as_list()))
        inverse = np.linalg.inv(np.vstack([self.matrix, [0, 0, 1]]))[:2]
        return image.transform((self.box.side, self.box.side), Image.Transform.AFFINE, tuple(inverse.ravel()),
                               Image.Resampling.BICUBIC)

    def verdict(self, framing: str) -> str:
        """What the crop shows, in words: whole head, tight (no hair), tilted, levelled."""
        if self.missing:
            words = "tight: no " + " or ".join(self.missing)
        else:
            words = "whole head" if self.whole_head else f"{framing} framing (tight by choice)"
        if self.angle:
            words += f", levelled {self.angle:+.0f}°"
        elif abs(self.roll) >= TILTED:
            words += f", tilted {self.roll:+.0f}°"
        return words


def frame(head: Head, width: int, height: int, framing: str = DEFAULT_FRAMING, side_ratio: float | None = None,
          level: bool = False) -> tuple[Framed, str | None]:
    """The square for `head` in a `width` x `height` photo (see the module's rules), and a note
    when levelling was asked for but could not be done."""
    framed, note = frame_said(head, width, height, framing, side_ratio, level)
    return framed, note.text if note else None


def frame_said(head: Head, width: int, height: int, framing: str = DEFAULT_FRAMING, side_ratio: float | None = None,
               level: bool = False) -> tuple[Framed, Message | None]:
    """frame(), its note as a template and values (for the GUI's language)."""
    if framing not in FRAMINGS:
        raise ConfigError("framing must be one of {names}", names=", ".join(FRAMINGS))  # a ValueError
    f = FRAMINGS[framing]
    side = (side_ratio or f.side) * head.length
    roll = head.roll
    if level and abs(roll) >= LEVEL_FROM:
        pivot = (float(head.eyes[0]), float(head.eyes[1]))
        framed = _levelled(head, pivot, width, height, f, side)
        if framed is not None:
            return framed, None
        note = said("not levelled: turned by {roll:+.0f}°, no square that holds the head stays inside the photo", roll=roll)
        return replace(_place(head, width, height, f, side), roll=roll), note
    return replace(_place(head, width, height, f, side), roll=roll), None


def _levelled(head: Head, pivot: tuple[float, float], width: int, height: int, f: Framing,
              side: float) -> Framed | None:
    """The largest square in the photo turned level about `pivot`, from the framing's side down to
    the smallest that holds the head, whose corners all lie inside the photo as it was."""
    roll = head.roll
    level = head.moved(_rotation(pivot, roll))
    smallest = max(_dims(_grow(level.head_box() if f.whole_head else level.face_box(), HEAD_MARGIN * level.length)))
    for s in np.linspace(side, min(smallest, side), LEVEL_TRIES):
        try:
            framed = replace(_place(level, width, height, f, float(s)), roll=roll, angle=roll, pivot=pivot)
        except CropRejected:
            return None
        corners = framed.corners()
        inside = (corners >= -0.5).all() and (corners <= (width + 0.5, height + 0.5)).all()
        if not framed.missing and inside:
            return framed
    return None


def _place(head: Head, width: int, height: int, f: Framing, side: float) -> Framed:
    length = head.length
    if length <= 1:
        raise CropRejected("the face's landmarks are not a face (the chin is not below the brows)")
    whole = _grow(head.head_box(), HEAD_MARGIN * length)
    wants_head = f.whole_head and side >= max(_dims(whole))
    need = whole if wants_head else _grow(head.face_box(), HEAD_MARGIN * length)
    s = min(max(side, *_dims(need)), width, height)  # never so small that it cuts what it must hold
    # the crown is an estimate (0.8-0.9 L above the brows): a photo that ends within the margin and
    # the estimate's spread of it still holds the head
    slack = 2 * HEAD_MARGIN * length
    if not _cut_edges(need, width, height, slack) and s >= max(_dims(need)) - slack:
        return Framed(_position(head, s, need, width, height, f), wants_head)
    cut = _cut_edges(head.features_box(), width, height)
    if cut:
        raise CropRejected("the face is cut by the photo's {edges} edge; use a photo that shows the whole face",
                           edges=" and ".join(cut))
    if min(width, height) >= max(_dims(need)):  # a square could hold it: the edge cuts it off
        raise CropRejected(_cut_reason(need, width, height, wants_head))
    # A close-up: the photo is tighter than the framing. Keep what it has, tell what it lacks.
    features = _grow(head.features_box(), HEAD_MARGIN * length)
    if s < max(_dims(features)) - 1:
        raise CropRejected("the face ({w:.0f} x {h:.0f} px) does not fit in a square inside the photo ({width} x "
                           "{height})", w=_dims(features)[0], h=_dims(features)[1], width=width, height=height)
    box = _position(head, s, features, width, height, f)
    crown_top, chin = head.head_box()[1], head.chin[1]
    missing = tuple(part for part, gone in (("hair", box.top > crown_top + 1), ("chin", box.bottom < chin - 1)) if gone)
    sides = box.left > whole[0] + HEAD_MARGIN * length or box.right < whole[2] - HEAD_MARGIN * length
    return Framed(box, False, missing or (("the sides of the head",) if sides else ()))


def _position(head: Head, side: float, need: tuple[float, float, float, float], width: int, height: int,
              f: Framing) -> CropBox:
    """The square of `side` nearest to the framing's place (face centred, eyes at their height)
    that holds `need` and stays inside the photo."""
    s = int(side + 1e-6)  # 2.8 x 100 is 279.99999... in floating point
    l, t, r, b = need
    left = min(max(head.centre[0] - s / 2, r - s, 0), l, width - s)
    top = min(max(head.eyes[1] - f.eyes * s, b - s, 0), t, height - s)
    left, top = int(round(left)), int(round(top))
    return CropBox(min(max(left, 0), width - s), min(max(top, 0), height - s), s)


def _cut_edges(box: tuple[float, float, float, float], width: int, height: int, tolerance: float = 1.0) -> list[str]:
    l, t, r, b = box
    return [name for name, out in (("top", t < -tolerance), ("bottom", b > height + tolerance),
                                   ("left", l < -tolerance), ("right", r > width + tolerance)) if out]


def _cut_reason(need: tuple[float, float, float, float], width: int, height: int, head: bool) -> Message:
    """What the photo's edges cut: one or two edges as templates of their own (the GUI translates
    the parts, words of its catalogue), more (a head larger than the photo) as one text."""
    edges = _cut_edges(need, width, height)
    what = {"top": "the top of the head" if head else "the forehead", "bottom": "the chin"}
    cut = [{"what": what.get(e, "the " + ("head" if head else "face")), "edge": e} for e in edges]
    if len(cut) == 1:
        return said("{what} is cut by the photo's {edge} edge; use a photo with room around the head", **cut[0])
    if len(cut) == 2:
        return said("{what} is cut by the photo's {edge} edge; {what2} is cut by the photo's {edge2} edge; use a "
                    "photo with room around the head", **cut[0], what2=cut[1]["what"], edge2=cut[1]["edge"])
    parts = "; ".join(f"{c['what']} is cut by the photo's {c['edge']} edge" for c in cut)
    return said("{parts}; use a photo with room around the head", parts=parts)


def _grow(box: tuple[float, float, float, float], by: float) -> tuple[float, float, float, float]:
    l, t, r, b = box
    return l - by, t - by, r + by, b + by


def _dims(box: tuple[float, float, float, float]) -> tuple[float, float]:
    return box[2] - box[0], box[3] - box[1]


def _rotation(pivot: tuple[float, float], degrees: float) -> np.ndarray:
    """2 x 3 affine map that turns an image counter-clockwise on screen by `degrees` about
    `pivot` (as PIL's Image.rotate does): it takes an eye line rolled by `degrees` to level."""
    a = np.radians(degrees)
    c, s = np.cos(a), np.sin(a)
    rot = np.array([[c, s], [-s, c]])
    p = np.asarray(pivot, dtype=np.float64)
    return np.hstack([rot, (p - rot @ p)[:, None]])
