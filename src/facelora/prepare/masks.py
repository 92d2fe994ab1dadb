"""The loss mask of a training image, written as the PNG's alpha channel, which Kohya's
`--masked_loss --alpha_mask` (and facelora's) read as the per-pixel weight of the loss, or (with
mask_dir) as a grey PNG of the photo's name in a folder Kohya's `conditioning_data_dir` names,
whose red channel `--masked_loss` reads (train/data.py reads both): 255 over
the head (face, skull and close hair), a softer weight over the hair around it and the neck and
shoulders below, and `unmasked_weight` everywhere else, so the background still trains a little
(the model keeps its sense of the scene; a weight of 0 lets the background drift). Edges are
feathered so no hard line is learnt."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

from ..fileio import atomic_write_bytes

from .options import UNMASKED_WEIGHT, PrepareOptions

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


def with_mask(image: Image.Image, mask: Image.Image) -> Image.Image:
    """The image as RGBA with `mask` as its alpha: the colours stay as they are (PNG keeps
    straight alpha), so the VAE, which reads the RGB alone, sees the same photo."""
    out = image.convert("RGB")
    out.putalpha(mask)
    return out


class HeadMasks:
    """Where prepare puts each photo's head mask: nowhere (no head_mask), in the photo's alpha
    channel, or (mask_dir) as mask_dir/<the photo's folder>/<its name>.png, the layout of Kohya's
    conditioning_data_dir for that folder."""

    def __init__(self, project_root: Path, folder: Path, options: PrepareOptions):
        self.on, self.weight = options.head_mask, options.unmasked_weight
        self.folder = Path(project_root) / options.mask_dir / folder.name if self.on and options.mask_dir else None

    def photo(self, image: Image.Image, head: Box | None, png: Path) -> Image.Image:
        """The image to write as `png`: with the mask as its alpha, or as it is (its mask then
        written beside, in the conditioning folder)."""
        if not self.on or head is None:
            return image
        mask = head_mask(image.size, head, self.weight)
        if self.folder is None:
            return with_mask(image, mask)
        self.folder.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(self.folder / f"{png.stem}.png", _png_bytes(mask))
        return image

    def missing(self, png: Path) -> bool:
        """Whether the conditioning mask of `png` should be there and is not (then made again)."""
        return self.folder is not None and not (self.folder / f"{png.stem}.png").is_file()

    def remove(self, png: Path) -> None:
        """A withdrawn photo and its conditioning mask (an extra mask is an error in Kohya)."""
        png.unlink(missing_ok=True)
        if self.folder is not None:
            (self.folder / f"{png.stem}.png").unlink(missing_ok=True)


def _png_bytes(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "PNG", compress_level=1)
    return buf.getvalue()
