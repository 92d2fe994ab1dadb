"""The X/Y/Z grid: every saved LoRA file (X, in training order) at every weight (Y), optionally
once per value of a third axis (Z: prompts by S/R, seeds, CFG scale or steps), made with diffusers'
StableDiffusionPipeline on the training's base model, as AUTOMATIC1111's X/Y/Z plot makes it.

Each cell is a prompt with one `<lora:NAME:WEIGHT>` tag, as in A1111: the X axis sets the tag's
name (or, given as Prompt S/R, replaces text in the prompt), the Y axis its weight (or replaces
text). The tag is read back from the final prompt, so the prompt written into each image is the
one that made it. Every LoRA file is loaded once with diffusers' `load_lora_weights` (which
proves diffusers reads the file) and its weight set per cell with `set_adapters`, which scales
the text encoder's LoRA as well as the UNet's.

Writes PROJECT/eval/grid.png (labelled), eval/cells/*.png (each with A1111's `parameters` text)
and eval/grid.json (every cell: file, weight, Z value, seed, prompt, path).
"""

from __future__ import annotations

import io
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import __version__
from ..fileio import atomic_write_bytes, atomic_write_json, read_json
from ..lora_file import addnet_hash, read_shapes
from ..project import CELLS_DIR, Project
from . import infotext
from .adapter import NetworkAdapter, diffusers_reads
from .gridimage import GridLayout, draw_grid, plan_layout
from .gridplan import (DEFAULT_WEIGHTS, DRAWING_DIR, Cell, GridError, GridOptions, GridPlan, Progress, _rel, default_prompt,
                       parse_size, plan_grid)
from .infotext import Infotext, LoraTag

# What grid.py's callers import from it: the options and the plan live in gridplan.py.
__all__ = ["DEFAULT_WEIGHTS", "Cell", "GridError", "GridOptions", "GridPlan", "GridResult", "default_prompt",
           "make_grid", "parse_size", "plan_grid"]


# --- generation ---------------------------------------------------------------------------------


@dataclass
class GridResult:
    grid: Path
    json: Path
    cells: list[Cell]
    layout: GridLayout
    seconds: float
    tiny: bool
    notes: list[str] = field(default_factory=list)

    @property
    def seconds_per_image(self) -> float:
        return self.seconds / max(1, len(self.cells))


class LoraSlot:
    """The pipeline's one LoRA adapter: each file is loaded once, weighed per cell, and unloaded
    before the next file, so the base model is never changed for good."""

    NAME = "facelora"

    def __init__(self, pipe) -> None:
        self.pipe = pipe
        self.file: Path | None = None
        self.adapter: NetworkAdapter | None = None

    def use(self, file: Path | None) -> None:
        if file == self.file:
            return
        if self.file is not None:
            if self.adapter is not None:
                self.adapter.remove()
                self.adapter = None
            else:
                self.pipe.unload_lora_weights()
            self.file = None
        if file is not None and not diffusers_reads(list(read_shapes(file))):
            self.adapter = NetworkAdapter(self.pipe, file)  # LoHa, LoKr, DoRA: facelora applies them
            self.file = file
        elif file is not None:
            from ..model.sdmodel import no_progress_bars

            try:
                with no_progress_bars():  # transformers' own bar for the text encoder's adapter
                    self.pipe.load_lora_weights(str(file), adapter_name=self.NAME)
            except (ValueError, KeyError, RuntimeError, OSError) as e:
                first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                raise GridError(
                    "diffusers could not load {file} as a LoRA ({first}); A1111 and ComfyUI would likely refuse "
                    "it too. Is it an SD1.5 LoRA in Kohya's format?", file=file.name, first=first) from None
            self._check_applied(file)
            self.file = file

    def _check_applied(self, file: Path) -> None:
        """Every module of the file must have become a LoRA layer: diffusers only logs a warning
        for keys that fit no module, which would otherwise pass for a successful load."""
        in_file = sum(1 for k in read_shapes(file) if k.endswith(".lora_down.weight"))
        applied = sum(1 for part in (self.pipe.unet, self.pipe.text_encoder) for m in part.modules()
                      if self.NAME in getattr(m, "lora_A", {}))
        if applied != in_file:
            self.pipe.unload_lora_weights()
            raise GridError(
                "diffusers applied only {applied} of the {in_file} LoRA modules in {file}: the rest name modules "
                "this base model does not have (another architecture?) or that diffusers does not know, and "
                "A1111 or ComfyUI would skip them as well.", applied=applied, in_file=in_file, file=file.name)

    def weigh(self, tag: LoraTag) -> None:
        """Set the weight; `<lora:NAME:TE:UNET>` gives the text encoder and UNet their own."""
        if self.adapter is not None:
            self.adapter.weigh(tag.te, tag.unet)
            return
        weights: Any = tag.weight
        if tag.unet_weight is not None:
            parts = {part for part, names in self.pipe.get_list_adapters().items() if self.NAME in names}
            weights = {p: (tag.unet if p == "unet" else tag.te) for p in parts}
        self.pipe.set_adapters([self.NAME], adapter_weights=[weights])


def _png(image, text: str) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "PNG", pnginfo=infotext.png_info(text))
    return buf.getvalue()


def _cell_name(cell: Cell) -> str:
    lora = re.sub(r"[^\w.\-]+", "_", cell.lora.name) if cell.lora else "no-lora"
    w = f"-w{infotext.fmt_number(cell.weight)}" if cell.lora else ""
    z = f"-z{cell.z + 1}" if cell.z_value is not None else ""
    return f"{cell.index + 1:04d}-{lora}{w}{z}-seed{cell.seed}.png"


def _replace_cells(cells: list[Cell], grid_json: Path, root: Path, cells_dir: Path) -> None:
    """The whole grid's cells replace the cell images the earlier grid listed, so eval/cells holds
    only this grid."""
    old = read_json(grid_json)
    for c in (old or {}).get("cells", []):
        p = root / c["path"] if c.get("path") else None
        if p and p.suffix == ".png" and p.parent.name == CELLS_DIR:
            p.unlink(missing_ok=True)
    cells_dir.mkdir(parents=True, exist_ok=True)
    drawn = {c.path.parent for c in cells if c.path is not None}
    for c in cells:
        if c.path is not None:
            c.path = c.path.replace(cells_dir / c.path.name)
    for folder in drawn:
        shutil.rmtree(folder, ignore_errors=True)


def text_embeds(model, text: str, clip_skip: int, device):
    """The text encoder's conditioning for `text` without its <lora:...> tags, with A1111's clip skip."""
    from ..model.sampling import embed

    return embed(model, infotext.strip_lora_tags(text), clip_skip, device)


def generate(plan: GridPlan, pipe, model, cells_dir: Path, progress: Progress | None = None) -> None:
    """Make every cell's image: the outer loop runs over LoRA files, so each loads once."""
    import torch

    from ..model.family import sampler_display
    from ..model.sampling import render

    sampler_name = sampler_display(plan.sampler)
    hashes: dict[Path, str] = {}
    order: list[Path | None] = []
    for c in plan.cells:
        if c.file not in order:
            order.append(c.file)
    slot = LoraSlot(pipe)
    done, total = 0, len(plan.cells)
    device = pipe.device
    embeds: dict[tuple[str, int, Any], torch.Tensor] = {}
    for file in order:
        if progress:
            progress(done, total, f"loading {file.name if file else 'no LoRA'}")
        slot.use(file)
        if file is not None:
            hashes[file] = addnet_hash(file)[:12]
        embeds.clear()  # text embeddings depend on the LoRA and its weight
        for c in (c for c in plan.cells if c.file == file):
            if c.lora is not None:
                slot.weigh(c.lora)
            key = (c.lora.text() if c.lora else "")
            for text in (c.prompt, c.negative):
                if (text, plan.clip_skip, key) not in embeds:
                    embeds[(text, plan.clip_skip, key)] = text_embeds(model, text, plan.clip_skip, device)
            image = render(pipe, embeds[(c.prompt, plan.clip_skip, key)], embeds[(c.negative, plan.clip_skip, key)],
                           c.seed, c.steps, c.cfg, plan.width, plan.height)
            params = {
                "Steps": c.steps, "Sampler": sampler_name, "CFG scale": infotext.fmt_number(c.cfg),
                "Seed": c.seed, "Size": f"{plan.width}x{plan.height}", "Model": model.name or Path(plan.base_model).stem,
                "Clip skip": plan.clip_skip if plan.clip_skip > 1 else None,
                "Lora hashes": infotext.format_lora_hashes({c.lora.name: hashes[file]}) if c.lora else None,
                "Version": f"facelora {__version__}",
            }
            c.infotext = Infotext(c.prompt, c.negative, params).text()
            c.path = cells_dir / _cell_name(c)
            atomic_write_bytes(c.path, _png(image, c.infotext))
            done += 1
            if progress:
                progress(done, total, c.path.name)
    slot.use(None)


def grid_title(plan: GridPlan, model_name: str, tiny: bool) -> str:
    seeds = plan.seeds if plan.z_kind != "seeds" else []
    parts = [f"base: {model_name}" + (" (tiny test model: noise, not a result)" if tiny else ""),
             plan.sampler, f"{plan.cells[0].steps} steps" if plan.z_kind != "steps" else "",
             f"CFG {infotext.fmt_number(plan.cells[0].cfg)}" if plan.z_kind != "cfg" else "",
             f"{plan.width}x{plan.height}", ("seed " if len(seeds) == 1 else "seeds ") + ", ".join(map(str, seeds)) if seeds else ""]
    return " · ".join(p for p in parts if p)


def make_grid(project: Project, options: GridOptions | None = None, progress: Progress | None = None,
              model_and_pipe: tuple[Any, Any] | None = None) -> GridResult:
    """Draw the grid for `project`: plan, generate, lay out, write grid.png, cells and grid.json.
    `model_and_pipe` reuses an already loaded (model, pipeline) (tests, the GUI)."""
    options = options or GridOptions()
    t0 = time.perf_counter()
    plan = plan_grid(project, options)
    cells_dir, grid_json = project.cells_dir, project.grid_json
    if progress:  # the bar shows its total from the start: loading the model takes a while
        progress(0, len(plan.cells), f"loading {Path(plan.base_model).name or plan.base_model}")
    if model_and_pipe is None:
        from ..model.sampling import load_pipeline

        model, pipe = load_pipeline(plan.base_model, plan.sampler, options.device, options.allow_pickle)
    else:
        from ..model.sampling import make_scheduler

        model, pipe = model_and_pipe
        pipe.scheduler = make_scheduler(model, plan.sampler)
    tiny = bool(getattr(model, "is_tiny", False))
    drawing = project.eval_dir / DRAWING_DIR
    shutil.rmtree(drawing, ignore_errors=True)  # an interrupted grid's cells
    generate(plan, pipe, model, drawing, progress)

    per_cell = 1 if plan.z_kind == "seeds" else len(plan.seeds)
    title = grid_title(plan, model.name or Path(plan.base_model).name, tiny)
    layout = plan_layout(plan.width, plan.height, per_cell, plan.col_labels, plan.row_labels, plan.z_labels, title)
    from PIL import Image

    images = {}
    for c in plan.cells:
        with Image.open(c.path) as im:
            images[(c.x, c.y, c.z, c.s)] = im.convert("RGB")
    sheet = draw_grid(images, layout, plan.col_labels, plan.row_labels, plan.z_labels, title)
    grid_png = project.grid_png
    buf = io.BytesIO()
    sheet.save(buf, "PNG")
    _replace_cells(plan.cells, grid_json, project.root, cells_dir)
    atomic_write_bytes(grid_png, buf.getvalue())
    seconds = time.perf_counter() - t0
    atomic_write_json(grid_json, {
        "version": 1,
        "made_by": f"facelora {__version__}",
        "base_model": plan.base_model,
        "tiny_test_model": tiny,
        "note": "tiny test model: its images are noise, not results" if tiny else None,
        "sampler": plan.sampler, "size": [plan.width, plan.height], "clip_skip": plan.clip_skip,
        "x": {"kind": plan.x_kind, "labels": plan.col_labels},
        "y": {"kind": plan.y_kind, "labels": plan.row_labels},
        "z": {"kind": plan.z_kind, "labels": plan.z_labels} if plan.z_kind else None,
        "seeds": plan.seeds,
        "probes": _rel(project.probes_toml, project.root) if plan.z_kind == "probes" else None,
        "grid": _rel(grid_png, project.root),
        "layout": layout.to_dict(),
        "seconds": round(seconds, 2),
        "cells": [c.to_dict(project.root) for c in plan.cells],
    })
    return GridResult(grid_png, grid_json, plan.cells, layout, seconds, tiny, plan.notes)
