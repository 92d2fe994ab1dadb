"""Kohya's aspect-ratio buckets: the sizes images train at (enable_bucket), worked out from the
images' headers; the plan and the trainer batch the same buckets. It knows nothing of tensors."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image, UnidentifiedImageError

from .errors import FaceloraError

if TYPE_CHECKING:
    from .config import TrainConfig


class TrainDataError(FaceloraError):
    """An image that cannot be trained on; the message names it."""


def bucket_resolutions(max_reso: tuple[int, int], min_size: int, max_size: int, divisible: int) -> list[tuple[int, int]]:
    """Kohya's bucket list: every (w, h) with sides in [min_size, max_size], multiples of
    `divisible`, and area at most the training resolution's, plus the square."""
    max_area = max_reso[0] * max_reso[1]
    side = int(math.sqrt(max_area) // divisible) * divisible
    resos = {(side, side)}
    width = min_size
    while width <= max_size:
        height = min(max_size, int((max_area // width) // divisible) * divisible)
        if height >= min_size:
            resos.add((width, height))
            resos.add((height, width))
        width += divisible
    return sorted(resos)


def select_bucket(size: tuple[int, int], resos: list[tuple[int, int]]) -> tuple[int, int]:
    """The bucket whose aspect ratio is nearest the image's (Kohya's select_bucket)."""
    ratio = size[0] / size[1]
    return min(resos, key=lambda r: abs(r[0] / r[1] - ratio))


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) after EXIF orientation, read from the header only."""
    try:
        with Image.open(path) as im:
            w, h = im.size
            if im.getexif().get(0x0112, 1) in (5, 6, 7, 8):  # rotated by 90 degrees
                w, h = h, w
            return w, h
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise TrainDataError(f"Cannot read the training image {path}: {e}. Replace or remove it.") from None


@dataclass(frozen=True)
class Bucketing:
    """The sizes images train at: Kohya's aspect-ratio buckets (enable_bucket), or every image
    at the training resolution."""

    resolution: tuple[int, int]
    enable_bucket: bool = False
    min_bucket_reso: int = 256
    max_bucket_reso: int = 1024
    bucket_reso_steps: int = 64

    @classmethod
    def of(cls, cfg: "TrainConfig") -> "Bucketing":
        return cls(cfg.resolution_wh, cfg.enable_bucket, cfg.min_bucket_reso, cfg.max_bucket_reso,
                   cfg.bucket_reso_steps)

    def assign(self, images: list[Path]) -> dict[Path, tuple[int, int]]:
        """image -> the (width, height) it trains at."""
        if not self.enable_bucket:
            return {p: self.resolution for p in images}
        resos = bucket_resolutions(self.resolution, self.min_bucket_reso, self.max_bucket_reso, self.bucket_reso_steps)
        return {p: select_bucket(image_size(p), resos) for p in images}
