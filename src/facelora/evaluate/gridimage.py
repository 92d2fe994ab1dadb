"""The grid picture, laid out as AUTOMATIC1111's X/Y/Z plot: X values across the top, Y values
down the left side, one sub-grid per Z value (side by side, each under its own title). A cell made
with several seeds holds its images side by side. Text is drawn with facelora.fonts (DejaVu Sans,
or a CJK font for Chinese, Japanese or Korean labels)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from PIL import Image, ImageDraw, ImageFont

from ..fonts import font_for

BACKGROUND = (255, 255, 255)
INK = (0, 0, 0)


def font_size(cell_w: int, cell_h: int) -> int:
    """A1111 sizes labels from the cell ((w + h) / 25); small test cells still get readable text."""
    return max(12, (cell_w + cell_h) // 28)


def _text_w(text: str, f: ImageFont.FreeTypeFont) -> int:
    return round(f.getlength(text))


def wrap(text: str, f: ImageFont.FreeTypeFont, width: int) -> list[str]:
    """Lines no wider than `width`: break at spaces, else after '-', '_' or ',', else anywhere."""
    lines: list[str] = []
    for para in str(text).split("\n"):
        line = ""
        for ch in para:
            trial = line + ch
            if line and _text_w(trial, f) > width:
                cut = max(line.rfind(c) for c in " -_,")
                if cut > 0:
                    lines.append(line[: cut + 1].rstrip())
                    line = line[cut + 1:].lstrip() + ch
                else:
                    lines.append(line)
                    line = ch.lstrip()
            else:
                line = trial
        lines.append(line)
    return lines


@dataclass(frozen=True)
class GridLayout:
    """Pixel geometry of the grid; `origin` says where each image goes. Stored in grid.json."""

    cell_w: int
    cell_h: int
    per_cell: int  # images side by side in one cell (seeds)
    cols: int  # X values
    rows: int  # Y values
    subgrids: int  # Z values (1 without a Z axis)
    left: int  # width of the row-label column
    top: int  # height of the column-label band
    title_h: int  # the heading over everything
    z_title_h: int  # each sub-grid's own title (0 without a Z axis)
    gap: int  # between sub-grids
    font_px: int
    spacing: int = 0  # between cells, when a cell holds several images


    @property
    def tile_w(self) -> int:
        return self.cell_w * self.per_cell

    @property
    def sub_w(self) -> int:
        return self.left + self.cols * self.tile_w + (self.cols - 1) * self.spacing

    @property
    def sub_h(self) -> int:
        return self.z_title_h + self.top + self.rows * self.cell_h

    @property
    def width(self) -> int:
        return self.subgrids * self.sub_w + (self.subgrids - 1) * self.gap

    @property
    def height(self) -> int:
        return self.title_h + self.sub_h

    def origin(self, x: int, y: int, z: int = 0, s: int = 0) -> tuple[int, int]:
        """Top-left pixel of image (x, y) of sub-grid z, seed slot s."""
        sx = z * (self.sub_w + self.gap)
        return (sx + self.left + x * (self.tile_w + self.spacing) + s * self.cell_w,
                self.title_h + self.z_title_h + self.top + y * self.cell_h)

    def to_dict(self) -> dict:
        return {**asdict(self), "width": self.width, "height": self.height}


def plan_layout(cell_w: int, cell_h: int, per_cell: int, col_labels: list[str], row_labels: list[str],
                z_labels: list[str], title: str) -> GridLayout:
    px = font_size(cell_w, cell_h)
    f = font_for(px, title, *col_labels, *row_labels, *z_labels)
    pad = px // 2
    line_h = round(px * 1.25)
    tile_w = cell_w * per_cell
    col_lines = max((len(wrap(t, f, tile_w - 2 * pad)) for t in col_labels), default=0)
    top = col_lines * line_h + 2 * pad if col_labels else 0
    cap = max(cell_w, 8 * px)
    left = min(max((_text_w(line, f) for t in row_labels for line in wrap(t, f, cap)), default=0), cap)
    left = left + 2 * pad if row_labels else 0
    cols, rows = max(1, len(col_labels)), max(1, len(row_labels))
    subgrids = max(1, len(z_labels))
    spacing = max(4, px // 2) if per_cell > 1 else 0  # so a cell's images read as one cell
    sub_w = left + cols * tile_w + (cols - 1) * spacing
    z_title_h = max((len(wrap(t, f, sub_w - 2 * pad)) for t in z_labels), default=0) * line_h + 2 * pad if z_labels else 0
    gap = 2 * px if subgrids > 1 else 0
    total_w = subgrids * sub_w + (subgrids - 1) * gap
    title_h = len(wrap(title, f, total_w - 2 * pad)) * line_h + 2 * pad if title else 0
    return GridLayout(cell_w, cell_h, per_cell, cols, rows, subgrids, left, top, title_h, z_title_h, gap, px, spacing)


def _draw_block(draw: ImageDraw.ImageDraw, text: str, f, box: tuple[int, int, int, int], line_h: int) -> None:
    """Text centred in box (left, top, right, bottom), wrapped to its width."""
    l, t, r, b = box
    pad = f.size // 2
    lines = wrap(text, f, max(1, r - l - 2 * pad))
    y = t + (b - t - len(lines) * line_h) // 2
    for line in lines:
        draw.text(((l + r) / 2, y + line_h / 2), line, fill=INK, font=f, anchor="mm")
        y += line_h


def draw_grid(images: dict[tuple[int, int, int, int], Image.Image], layout: GridLayout, col_labels: list[str],
              row_labels: list[str], z_labels: list[str], title: str) -> Image.Image:
    """Paste `images[(x, y, z, s)]` and draw the labels."""
    lay = layout
    sheet = Image.new("RGB", (lay.width, lay.height), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    f = font_for(lay.font_px, title, *col_labels, *row_labels, *z_labels)
    line_h = round(lay.font_px * 1.25)
    if title:
        _draw_block(draw, title, f, (0, 0, lay.width, lay.title_h), line_h)
    for z in range(lay.subgrids):
        sx = z * (lay.sub_w + lay.gap)
        if z_labels:
            _draw_block(draw, z_labels[z], f, (sx, lay.title_h, sx + lay.sub_w, lay.title_h + lay.z_title_h), line_h)
        band = lay.title_h + lay.z_title_h
        for x, label in enumerate(col_labels):
            cx = sx + lay.left + x * (lay.tile_w + lay.spacing)
            _draw_block(draw, label, f, (cx, band, cx + lay.tile_w, band + lay.top), line_h)
        for y, label in enumerate(row_labels):
            cy = band + lay.top + y * lay.cell_h
            _draw_block(draw, label, f, (sx, cy, sx + lay.left, cy + lay.cell_h), line_h)
    for (x, y, z, s), im in images.items():
        if im.size != (lay.cell_w, lay.cell_h):
            im = im.resize((lay.cell_w, lay.cell_h), Image.Resampling.LANCZOS)
        sheet.paste(im.convert("RGB"), lay.origin(x, y, z, s))
    return sheet
