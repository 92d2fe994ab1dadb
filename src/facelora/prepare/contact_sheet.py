"""The contact sheet: one picture of the whole set, to check at a glance what the training will
see. Accepted crops carry their number (the file name in the concept folder); rejected photos are
shown greyed with the reason, so nothing disappears without a word."""

from __future__ import annotations

import io
import math
import textwrap
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageOps

from ..fileio import atomic_write_bytes
from ..fonts import font_for

THUMB = 160
TEXT_H = 58
PAD = 8
MAX_COLUMNS = 8


@dataclass
class Cell:
    label: str  # "001" for an accepted crop, "rejected" for a photo that was not used
    image: Image.Image | None  # None when the file could not be decoded at all
    accepted: bool
    note: str = ""  # the photo's name, and the reason of a rejection or the warnings


def thumb(image: Image.Image) -> Image.Image:
    """A copy small enough for a cell, kept while the run goes on."""
    small = image.copy()
    small.thumbnail((THUMB, THUMB))
    return small


def open_thumb(path: Path) -> Image.Image | None:
    try:
        with Image.open(path) as im:
            im.draft("RGB", (THUMB, THUMB))
            im.thumbnail((THUMB, THUMB))
            return im.convert("RGB")
    except Exception:  # the contact sheet shows a grey square for what cannot be read
        return None


def _thumb(cell: Cell) -> Image.Image:
    if cell.image is None:
        return Image.new("RGB", (THUMB, THUMB), (90, 90, 90))
    im = ImageOps.contain(cell.image.convert("RGB"), (THUMB, THUMB), Image.Resampling.LANCZOS)
    if not cell.accepted:
        grey = ImageOps.grayscale(im).point(lambda v: 60 + v // 2)
        im = Image.merge("RGB", [grey] * 3)
    square = Image.new("RGB", (THUMB, THUMB), (40, 40, 40))
    square.paste(im, ((THUMB - im.width) // 2, (THUMB - im.height) // 2))
    return square


def render(cells: list[Cell]) -> Image.Image:
    """A grid of numbered thumbnails with their notes underneath."""
    cols = max(1, min(MAX_COLUMNS, math.ceil(math.sqrt(max(len(cells), 1)))))
    rows = max(1, math.ceil(len(cells) / cols))
    cw, ch = THUMB + PAD, THUMB + TEXT_H + PAD
    sheet = Image.new("RGB", (cols * cw + PAD, rows * ch + PAD), (24, 24, 24))
    draw = ImageDraw.Draw(sheet)
    notes = [cell.note for cell in cells]
    label_font, note_font = font_for(15, *(c.label for c in cells)), font_for(10, *notes)
    for i, cell in enumerate(cells):
        x, y = PAD + (i % cols) * cw, PAD + (i // cols) * ch
        sheet.paste(_thumb(cell), (x, y))
        colour = (255, 255, 255) if cell.accepted else (255, 120, 110)
        tag = cell.label
        bbox = draw.textbbox((x + 4, y + 3), tag, font=label_font)
        draw.rectangle((bbox[0] - 3, bbox[1] - 2, bbox[2] + 3, bbox[3] + 2), fill=(0, 0, 0))
        draw.text((x + 4, y + 3), tag, fill=colour, font=label_font)
        lines = textwrap.wrap(cell.note, width=30)[:4]
        for k, line in enumerate(lines):
            draw.text((x, y + THUMB + 3 + 13 * k), line, fill=(200, 200, 200) if cell.accepted else colour, font=note_font)
    return sheet


def write(cells: list[Cell], path: Path) -> Path:
    buf = io.BytesIO()
    render(cells).save(buf, "PNG")
    atomic_write_bytes(path, buf.getvalue())
    return path
