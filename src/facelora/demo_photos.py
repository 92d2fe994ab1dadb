"""The demo's photo set: variants of scikit-image's astronaut (Eileen Collins, NASA, public
domain), read from the installed package, so the demo needs no download and ships no images.

The variants are what a real set differs by: framing, mirror image, light, colour, a slight tilt,
compression. They are all one person, which is what the likeness scorer should find.
`framing_variants` are the harder cases prepare's framing must handle (with Grace Hopper, from
matplotlib): edges, tilts, close-ups, other people.
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
        ("tilted-left", _tilted(base, 5, (220, 125))),
        ("tilted-right", _tilted(ImageOps.mirror(base), -5, (292, 125))),
        ("jpeg", _jpeg(_zoom(base, 1.3, dx=-10), 70)),
        ("muted", ImageEnhance.Color(_zoom(base, 1.5)).enhance(0.6)),
    ]


def grace_hopper() -> Image.Image:
    """matplotlib's Grace Hopper (public domain), read from the installed package."""
    import matplotlib.cbook as cbook

    with Image.open(cbook.get_sample_data("grace_hopper.jpg")) as im:
        return im.convert("RGB")


def _canvas(size: tuple[int, int], *pasted: tuple[Image.Image, tuple[int, int]]) -> Image.Image:
    canvas = Image.new("RGB", size, (128, 132, 138))
    for im, at in pasted:
        canvas.paste(im, at)
    return canvas


def _scaled(im: Image.Image, factor: float) -> Image.Image:
    return im.resize((round(im.width * factor), round(im.height * factor)), Image.Resampling.LANCZOS)


def _tilted(im: Image.Image, degrees: float, centre: tuple[int, int]) -> Image.Image:
    """`im` turned about `centre`, its corners filled from its own edges (no black wedges)."""
    pad = round(max(im.size) * 0.3)
    wide = Image.fromarray(np.pad(np.asarray(im), ((pad, pad), (pad, pad), (0, 0)), mode="edge"))
    turned = wide.rotate(degrees, resample=Image.Resampling.BICUBIC, center=(centre[0] + pad, centre[1] + pad))
    return turned.crop((pad, pad, pad + im.width, pad + im.height))


def framing_variants() -> list[tuple[str, Image.Image, str]]:
    """Photos that test the framing, each with what prepare must do: "whole head", "tight" (a
    close-up, accepted with a warning) or the words of the rejection. The astronaut's face box is
    about (175, 76)-(265, 166) of 512 x 512, her crown near y = 14; Grace Hopper's about
    (180, 139)-(366, 325) of 512 x 600."""
    a, g = astronaut(), grace_hopper()
    small_a, small_g = _scaled(a, 0.75), _scaled(g, 0.22)
    big_a, far_g = _scaled(a, 1.3), _scaled(g, 0.26)
    return [
        ("astronaut", a, "whole head"),
        ("grace hopper", g, "whole head"),
        ("small on a large canvas", _canvas((1600, 1200), (small_a, (700, 500))), "whole head"),
        ("at the left edge", _canvas((900, 700), (a, (-140, 100))), "whole head"),
        ("at the right edge", _canvas((900, 700), (a, (900 - 512 + 130, 100))), "whole head"),
        ("at the top edge", _canvas((900, 700), (a, (200, 0))), "whole head"),
        ("at the bottom edge", _canvas((900, 700), (a, (200, 700 - 200))), "whole head"),
        ("cut by the left edge", _canvas((900, 700), (a, (-215, 100))), "face is cut by the photo's left edge"),
        ("cut at the top", _canvas((900, 700), (a, (200, -60))), "top of the head is cut by the photo's top edge"),
        ("tilted 8", _tilted(a, 8, (220, 125)), "whole head"),
        ("tilted 15", _tilted(a, -15, (220, 125)), "whole head"),
        ("grace tilted 15", _tilted(g, 15, (272, 232)), "whole head"),
        ("close-up", a.crop((150, 55, 295, 200)).resize((600, 600), Image.Resampling.LANCZOS), "tight"),
        ("grace close-up", g.crop((170, 120, 380, 330)).resize((700, 700), Image.Resampling.LANCZOS), "tight"),
        ("small face beside", _canvas((512, 512), (a, (0, 0)), (small_g.crop((25, 20, 95, 90)), (300, 70))),
         "another person's face"),
        ("small face far away", _canvas((780, 666), (big_a, (0, 0)), (far_g, (640, 200))), "whole head"),
        ("crowd", _canvas((2400, 1600), *[(_scaled(a, 0.7), (60 + 600 * i, 400 + 80 * (i % 2))) for i in range(4)]),
         "several people"),
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
