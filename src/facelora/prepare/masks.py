"""The loss mask of a training image, written as the PNG's alpha channel, which Kohya's
`--masked_loss --alpha_mask` (and facelora's) read as the per-pixel weight of the loss: 255 over
the head (face, skull and close hair), a softer weight over the hair around it and the neck and
shoulders below, and `unmasked_weight` everywhere else, so the background still trains a little
(the model keeps its sense of the scene; a weight of 0 lets the background drift). Edges are
feathered so no hard line is learnt."""

from __future__ import annotations

from PIL import Image, ImageDraw, ImageFilter

from .options import UNMASKED_WEIGHT

Box = tuple[float, float, float, float]  # (left, top, right, bottom) in the image's pixels

SOFT_WEIGHT = 0.6  # hair beyond the head's oval, neck and shoulders
HAIR_MARGIN = 0.18  # the hair's halo around the head's oval, in head heights
FEATHER = 0.06  # blur radius of the edges, in head heights


def head_mask(size: tuple[int, int], head: Box, unmasked_weight: float = UNMASKED_WEIGHT,
              soft_weight: float = SOFT_WEIGHT) -> Image.Image:
    """The mask ("L", `size`) for a head whose box (crown to chin, ear to ear) is `head`."""
    left, top, right, bottom = head
    w, h = right - left, bottom - top
    cx = (left + right) / 2
    mask = Image.new("L", size, round(255 * unmasked_weight))
    draw = ImageDraw.Draw(mask)
    soft = round(255 * max(soft_weight, unmasked_weight))
    # neck and shoulders: a wide oval from just above the chin down past the image's edge
    draw.ellipse((cx - 1.4 * w, bottom - 0.1 * h, cx + 1.4 * w, bottom + 1.3 * h), fill=soft)
    draw.ellipse((left - HAIR_MARGIN * h, top - HAIR_MARGIN * h, right + HAIR_MARGIN * h, bottom), fill=soft)
    draw.ellipse((left, top, right, bottom), fill=255)
    return mask.filter(ImageFilter.GaussianBlur(max(1.0, FEATHER * h)))


def with_head_mask(image: Image.Image, head: Box, unmasked_weight: float = UNMASKED_WEIGHT) -> Image.Image:
    """The image as RGBA, its alpha the head_mask of `head` (a box in its pixels)."""
    return with_mask(image, head_mask(image.size, head, unmasked_weight))


def with_mask(image: Image.Image, mask: Image.Image) -> Image.Image:
    """The image as RGBA with `mask` as its alpha: the colours stay as they are (PNG keeps
    straight alpha), so the VAE, which reads the RGB alone, sees the same photo."""
    out = image.convert("RGB")
    out.putalpha(mask)
    return out
