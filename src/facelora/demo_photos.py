"""The demo's photo set: variants of scikit-image's astronaut (Eileen Collins, NASA, public
domain), read from the installed package, so the demo needs no download and ships no images.

The variants are what a real set differs by: framing, mirror image, light, colour, a slight tilt,
compression. They are all one person, which is what the likeness scorer should find.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageOps


def astronaut() -> Image.Image:
    from skimage import data

    return Image.fromarray(data.astronaut())


def _zoom(im: Image.Image, factor: float, dx: int = 0, dy: int = 0) -> Image.Image:
    """Enlarge around the face (about x=220, y=125 in the original) so the face gets bigger."""
    w, h = im.size
    big = im.resize((round(w * factor), round(h * factor)), Image.Resampling.LANCZOS)
    cx, cy = round((220 + dx) * factor), round((150 + dy) * factor)
    half = w // 2
    left = min(max(cx - half, 0), big.width - w)
    top = min(max(cy - half, 0), big.height - h)
    return big.crop((left, top, left + w, top + h))


def _jpeg(im: Image.Image, quality: int) -> Image.Image:
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


def variants() -> list[tuple[str, Image.Image]]:
    base = astronaut()
    return [
        ("original", base),
        ("mirrored", ImageOps.mirror(base)),
        ("closer", _zoom(base, 1.4)),
        ("closer-mirrored", ImageOps.mirror(_zoom(base, 1.6, dx=10))),
        ("brighter", ImageEnhance.Brightness(base).enhance(1.25)),
        ("darker", ImageEnhance.Brightness(_zoom(base, 1.2)).enhance(0.75)),
        ("warm", Image.merge("RGB", [c.point(lambda v, k=k: min(255, int(v * k))) for c, k in
                                     zip(base.split(), (1.12, 1.0, 0.88))])),
        ("high-contrast", ImageEnhance.Contrast(ImageOps.mirror(base)).enhance(1.3)),
        ("tilted-left", base.rotate(5, resample=Image.Resampling.BICUBIC, center=(220, 125))),
        ("tilted-right", ImageOps.mirror(base).rotate(-5, resample=Image.Resampling.BICUBIC, center=(292, 125))),
        ("jpeg", _jpeg(_zoom(base, 1.3, dx=-10), 70)),
        ("muted", ImageEnhance.Color(_zoom(base, 1.5)).enhance(0.6)),
    ]


def write_demo_photos(dest: Path) -> list[Path]:
    """Write the variants as JPEG/PNG files, the way a user's photo folder looks."""
    dest.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, (name, im) in enumerate(variants(), start=1):
        path = dest / f"astronaut {i:02d} {name}{'.jpg' if i % 2 else '.png'}"
        if not path.exists():
            im.save(path, quality=92) if path.suffix == ".jpg" else im.save(path)
        paths.append(path)
    return paths


def as_array(im: Image.Image) -> np.ndarray:
    return np.asarray(im.convert("RGB"))
