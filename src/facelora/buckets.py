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


def no_upscale_bucket(size: tuple[int, int], max_area: int, steps: int) -> tuple[int, int]:
    """Kohya's bucket_no_upscale (BucketManager.select_bucket): an image larger than the training
    area is scaled down to it, keeping its shape, with one side rounded to `steps` (the side that
    keeps the aspect ratio better); a smaller one keeps its size. The bucket is that size rounded
    down to `steps`, so the image is cropped, never enlarged. min/max_bucket_reso do not apply."""
    w, h = size
    if w * h > max_area:
        ratio = w / h
        width = math.sqrt(max_area * ratio)

        def rounded(x: float) -> int:
            x = int(x + 0.5)
            return x - x % steps

        by_width, by_height = rounded(width), rounded(max_area / width)
        height_of_width = rounded(by_width / ratio)
        ratio_of_width = by_width / height_of_width if height_of_width else math.inf
        ratio_of_height = rounded(by_height * ratio) / by_height if by_height else math.inf
        if abs(ratio_of_width - ratio) < abs(ratio_of_height - ratio):
            w, h = by_width, int(by_width / ratio + 0.5)
        else:
            w, h = int(by_height * ratio + 0.5), by_height
    return w - w % steps, h - h % steps


def steps_multiples(min_size: int, max_size: int, steps: int) -> tuple[int, int]:
    """min/max_bucket_reso as sd-scripts takes them (adjust_min_max_bucket_reso_by_steps): the
    smallest rounded down, the largest up, to multiples of bucket_reso_steps."""
    return min_size - min_size % steps, max_size + (-max_size) % steps


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) after EXIF orientation, read from the header only."""
    try:
        with Image.open(path) as im:
            w, h = im.size
            if im.getexif().get(0x0112, 1) in (5, 6, 7, 8):  # rotated by 90 degrees
                w, h = h, w
            return w, h
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise TrainDataError("Cannot read the training image {path}: {error}. Replace or remove it.", path=str(path),
                             error=str(e)) from None


@dataclass(frozen=True)
class Bucketing:
    """The sizes images train at: Kohya's aspect-ratio buckets (enable_bucket), or every image
    at the training resolution."""

    resolution: tuple[int, int]
    enable_bucket: bool = False
    min_bucket_reso: int = 256
    max_bucket_reso: int = 1024
    bucket_reso_steps: int = 64
    bucket_no_upscale: bool = False

    @classmethod
    def of(cls, cfg: "TrainConfig") -> "Bucketing":
        return cls(cfg.resolution_wh, cfg.enable_bucket, cfg.min_bucket_reso, cfg.max_bucket_reso,
                   cfg.bucket_reso_steps, cfg.bucket_no_upscale)

    def assign(self, images: list[Path]) -> dict[Path, tuple[int, int]]:
        """image -> the (width, height) it trains at."""
        if not self.enable_bucket:
            return {p: self.resolution for p in images}
        steps = self.bucket_reso_steps
        if self.bucket_no_upscale:
            area = self.resolution[0] * self.resolution[1]
            return {p: self._checked(p, no_upscale_bucket(image_size(p), area, steps)) for p in images}
        resos = bucket_resolutions(self.resolution, *steps_multiples(self.min_bucket_reso, self.max_bucket_reso, steps),
                                   steps)
        return {p: select_bucket(image_size(p), resos) for p in images}

    def keeps_scale(self, size: tuple[int, int]) -> bool:
        """Whether an image of `size` trains at its own scale, cropped to its bucket (sd-scripts'
        bucket_no_upscale resizes only images larger than the training area)."""
        w, h = self.resolution
        return self.enable_bucket and self.bucket_no_upscale and size[0] * size[1] <= w * h

    def _checked(self, path: Path, bucket: tuple[int, int]) -> tuple[int, int]:
        if 0 in bucket:
            raise TrainDataError("The training image {path} is smaller than bucket_reso_steps ({step} px) on one side: "
                                 "with bucket_no_upscale it is never enlarged. Replace it, or turn bucket_no_upscale "
                                 "off.", path=str(path), step=self.bucket_reso_steps)
        return bucket
