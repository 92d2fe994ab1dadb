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
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .. import __version__
from ..errors import FaceloraError
from ..fileio import atomic_write_bytes, atomic_write_json, read_json
from ..lora_file import addnet_hash, read_shapes
from ..project import CELLS_DIR, Project
from . import axes, infotext, loras
from .gridimage import GridLayout, draw_grid, plan_layout
from .infotext import Infotext, LoraTag

Progress = Callable[[int, int, str], None]  # (done, total, what)

DEFAULT_WEIGHTS = "0.4,0.6,0.8,1.0"
DEFAULT_SEED = 1234
DEFAULT_NEGATIVE = "lowres, blurry, out of focus, deformed, disfigured, bad anatomy, watermark, text"
Z_KINDS = {"prompts": "prompts", "prompt": "prompts", "sr": "prompts", "prompt s/r": "prompts",
           "seeds": "seeds", "seed": "seeds", "cfg": "cfg", "cfg scale": "cfg", "steps": "steps",
           "probes": "probes"}


class GridError(FaceloraError, ValueError):
    """Grid options that cannot work together, or a project that has nothing to draw yet."""


class GridOptions(BaseModel):
    """What to draw. Text fields take A1111's axis syntax (commas, ranges, S/R)."""

    model_config = ConfigDict(extra="forbid")

    checkpoints: str = Field("all", description="'all' (every saved file, training order) or names/epochs: 'ohwx-000002,ohwx' or '2,4'.")
    weights: str = Field(DEFAULT_WEIGHTS, description="LoRA weights (Y): '0.4,0.6,0.8,1.0', '0.2-1.0 (+0.2)' or '0-1 [6]'.")
    prompt: str | None = Field(None, description="Prompt (may hold <lora:NAME:W>); default: '<trigger>, <class>, portrait photo, looking at viewer, detailed face'.")
    negative: str | None = Field(None, description="Negative prompt.")
    seeds: str | None = Field(None, description=f"Seeds, e.g. '1,2,3' (each cell holds one image per seed); one fixed seed ({DEFAULT_SEED}) by default; -1 = a random one, fixed for the grid.")
    z: str | None = Field(None, description="Third axis: prompts (Prompt S/R), seeds, cfg, steps, or probes (the project's eval/probes.toml: likeness, flexibility and bleed prompts).")
    z_values: str | None = Field(None, description="Values of the third axis.")
    xsr: str | None = Field(None, description="X as Prompt S/R: the first value must be in the prompt, e.g. '000004,000006,000008'.")
    ysr: str | None = Field(None, description="Y as Prompt S/R instead of weights.")
    sampler: str = Field("Euler a", description="Euler a, Euler, DPM++ 2M, DPM++ 2M Karras or DDIM.")
    steps: int = Field(20, ge=1, le=150, description="Sampling steps.")
    cfg: float = Field(7.0, ge=0, le=30, description="CFG scale.")
    size: str | None = Field(None, description="Image size WxH, e.g. 512x512; default: the training resolution.")
    base_model: str | None = Field(None, description="Base model; default: the project's pretrained_model_name_or_path.")
    clip_skip: int | None = Field(None, ge=1, le=12, description="Clip skip; default: the project's.")
    allow_pickle: bool = Field(False, description="Allow a .ckpt base model (read with weights_only=True).")
    device: Literal["auto", "cpu", "cuda", "mps"] = Field("auto", description="Where to run the pipeline: auto, cpu, cuda or mps.")


# --- the plan: every cell's prompt, LoRA and settings (no model needed) --------------------------


@dataclass
class Cell:
    index: int
    x: int
    y: int
    z: int
    s: int  # seed slot within the cell
    prompt: str
    negative: str
    seed: int
    steps: int
    cfg: float
    lora: LoraTag | None
    file: Path | None
    z_value: str | None = None
    probe: str | None = None  # the probe prompt's kind (likeness, flexibility, bleed) on a probes Z axis
    path: Path | None = None
    infotext: str = ""

    @property
    def weight(self) -> float | None:
        return None if self.lora is None else self.lora.weight

    def to_dict(self, root: Path) -> dict[str, Any]:
        return {
            "index": self.index, "x": self.x, "y": self.y, "z": self.z, "s": self.s,
            "file": self.file.name if self.file else None,
            "lora": self.lora.name if self.lora else None,
            "weight": self.weight,
            "unet_weight": self.lora.unet if self.lora and self.lora.unet_weight is not None else None,
            "z_value": self.z_value, "probe": self.probe, "seed": self.seed, "steps": self.steps, "cfg": self.cfg,
            "prompt": self.prompt, "negative": self.negative,
            "path": _rel(self.path, root) if self.path else None,
        }


@dataclass
class GridPlan:
    cells: list[Cell]
    col_labels: list[str]
    row_labels: list[str]
    z_labels: list[str]
    x_kind: str  # "files" or "sr"
    y_kind: str  # "weights" or "sr"
    z_kind: str | None
    seeds: list[int]
    width: int
    height: int
    sampler: str
    clip_skip: int
    base_model: str
    notes: list[str] = field(default_factory=list)


def _rel(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)


def default_prompt(trigger: str, class_word: str | None) -> str:
    words = [trigger] + ([class_word] if class_word else [])
    return ", ".join(words + ["portrait photo", "looking at viewer", "detailed face"])


def parse_size(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"\s*(\d+)\s*[xX×,]\s*(\d+)\s*", text or "") or re.fullmatch(r"\s*(\d+)\s*", text or "")
    if not m:
        raise GridError(f"Size '{text}' must be WxH, e.g. 512x512 (or one number for a square).")
    w = int(m.group(1))
    h = int(m.group(2)) if m.lastindex == 2 else w
    if w % 8 or h % 8 or w < 64 or h < 64:
        raise GridError(f"Size {w}x{h}: both sides must be multiples of 8 and at least 64 (the VAE works in 8-pixel blocks).")
    return w, h


def _seeds(text: str | None) -> list[int]:
    values = axes.parse_numbers(text, "int", "seeds") if text and text.strip() else [DEFAULT_SEED]
    # A1111 fixes a -1 seed once for the whole grid, so every cell differs only by its axes.
    return [random.randrange(0, 2**32 - 1) if v == -1 else int(v) for v in values]


@dataclass
class Axis:
    kind: str | None  # X: files | sr; Y: weights | sr; Z: prompts | seeds | cfg | steps | None
    values: list[Any]
    labels: list[str]


def _x_axis(options: GridOptions, prompt: str, negative: str, models_dir: Path, output_name: str) -> Axis:
    """The LoRA files (names of `<lora:NAME>`), or Prompt S/R values."""
    if options.xsr:
        if options.checkpoints not in ("", "all"):
            raise GridError("Give the X axis either as --checkpoints or as --xsr (Prompt S/R), not both.")
        values = axes.parse_sr(options.xsr, prompt, negative, "--xsr")
        return Axis("sr", values, list(values))
    names = [lf.name for lf in loras.pick(options.checkpoints, models_dir, output_name)]
    return Axis("files", names, list(names))


def _y_axis(options: GridOptions, prompt: str, negative: str) -> Axis:
    """LoRA weights, or Prompt S/R values."""
    if options.ysr:
        values = axes.parse_sr(options.ysr, prompt, negative, "--ysr")
        return Axis("sr", values, list(values))
    weights = axes.parse_numbers(options.weights or DEFAULT_WEIGHTS, "float", "weights")
    return Axis("weights", weights, [f"weight {infotext.fmt_number(w)}" for w in weights])


def _probe_axis(options: GridOptions, project: Project) -> Axis:
    """One sub-grid per probe prompt of eval/probes.toml (written with the defaults on first use)."""
    from .probes import probes_file, read_probes

    for given, what in ((options.prompt, "--prompt"), (options.xsr, "--xsr"), (options.ysr, "--ysr"), (options.z_values, "--z-values")):
        if given:
            raise GridError(f"--z probes takes its prompts from {project.probes_toml}; leave out {what} (edit that file instead).")
    settings = project.settings()
    values = read_probes(probes_file(project.probes_toml), settings.trigger, settings.class_word)
    return Axis("probes", values, [str(v) for v in values])


def _z_axis(options: GridOptions, prompt: str, negative: str) -> Axis:
    """One sub-grid per value: Prompt S/R, seeds, CFG scale or steps; [None] without a Z axis."""
    if not options.z:
        if options.z_values:
            raise GridError("--z-values needs --z (prompts, seeds, cfg or steps).")
        return Axis(None, [None], [])
    kind = Z_KINDS.get(options.z.strip().lower())
    if kind is None:
        raise GridError(f"Unknown Z axis '{options.z}': use prompts (Prompt S/R), seeds, cfg or steps.")
    if not options.z_values:
        raise GridError(f"The Z axis '{options.z}' needs values, e.g. --z {kind} \"...\".")
    if kind == "prompts":
        values = axes.parse_sr(options.z_values, prompt, negative, "--z prompts")
        return Axis(kind, values, list(values))
    if kind == "seeds":
        if options.seeds:
            raise GridError("Give seeds either with --seeds or as the Z axis (--z seeds ...), not both.")
        values = _seeds(options.z_values)
        return Axis(kind, values, [f"seed {v}" for v in values])
    if kind == "cfg":
        values = axes.parse_numbers(options.z_values, "float", "--z cfg")
        return Axis(kind, values, [f"CFG scale {infotext.fmt_number(v)}" for v in values])
    values = axes.parse_numbers(options.z_values, "int", "--z steps")
    if any(v < 1 for v in values):
        raise GridError("--z steps: every value must be at least 1.")
    return Axis(kind, values, [f"{v} steps" for v in values])


def _cell_prompt(prompt: str, negative: str, x: Axis, y: Axis, z: Axis, xv: Any, yv: Any, zv: Any,
                 output_name: str) -> tuple[str, str, LoraTag | None]:
    """One cell's prompts, as A1111 makes them: the S/R axes replace text (X, then Y, then Z);
    then a files X names the `<lora:...>` tag and a weights Y sets its weight."""
    p, n = (zv.prompt, negative) if z.kind == "probes" else (prompt, negative)
    for axis, value in ((x, xv), (y, yv), (z, zv)):
        if axis.kind in ("sr", "prompts"):
            p, n = axes.replace(p, n, axis.values[0], value)
    found = infotext.lora_tags(p)
    if len(found) > 1:
        raise GridError(f"Cell {xv} / {yv}: the prompt ends up with {len(found)} <lora:...> tags: \"{p}\"")
    tag = found[0] if found else None
    if x.kind == "files":
        tag = LoraTag(xv, tag.weight if tag else 1.0, tag.unet_weight if tag else None)
    if y.kind == "weights":
        if tag is None:
            raise GridError(
                f"--weights set the weight of the prompt's <lora:NAME:W> tag, but the prompt for "
                f"'{xv}' has none: \"{p}\". Put the tag in the prompt, e.g. <lora:{output_name}-{xv}:1>."
            )
        tag = LoraTag(tag.name, float(yv), None)
    return (infotext.set_lora_tag(p, tag) if tag else p), n, tag


def plan_grid(project: Project, options: GridOptions) -> GridPlan:
    """Every cell of the grid, with its final prompt and the LoRA file its tag names. Checks
    everything (sampler, size, axes, files) before any model is loaded."""
    from ..model.sampling import sampler_key

    sampler_key(options.sampler)
    settings = project.settings()
    cfg = project.train_config()
    models_dir, output_name = Path(cfg.output_dir), cfg.output_name
    prompt = options.prompt if options.prompt is not None else default_prompt(settings.trigger, settings.class_word)
    negative = options.negative if options.negative is not None else DEFAULT_NEGATIVE
    width, height = parse_size(options.size) if options.size else cfg.resolution_wh
    base_model = options.base_model or cfg.pretrained_model_name_or_path
    if not base_model:
        raise GridError(
            "The project names no base model (pretrained_model_name_or_path): set it with "
            "'facelora config' / the GUI, or pass --base-model PATH (an SD1.5 .safetensors or diffusers folder)."
        )
    if len(infotext.lora_tags(prompt)) > 1:
        raise GridError("The prompt has several <lora:...> tags; the grid compares one LoRA file at a time, so keep one.")

    x = _x_axis(options, prompt, negative, models_dir, output_name)
    if x.kind == "files" and not infotext.lora_tags(prompt):
        prompt = infotext.set_lora_tag(prompt, LoraTag(x.values[0], 1.0))  # X names it, Y weighs it
    y = _y_axis(options, prompt, negative)
    probing = bool(options.z) and Z_KINDS.get(options.z.strip().lower()) == "probes"
    z = _probe_axis(options, project) if probing else _z_axis(options, prompt, negative)
    seeds = _seeds(options.seeds)

    cells: list[Cell] = []
    resolved: dict[str, Path] = {}
    for zi, zv in enumerate(z.values):
        for yi, yv in enumerate(y.values):
            for xi, xv in enumerate(x.values):
                p, n, tag = _cell_prompt(prompt, negative, x, y, z, xv, yv, zv, output_name)
                if tag is not None and tag.name not in resolved:
                    resolved[tag.name] = loras.resolve(tag.name, models_dir, output_name)
                for si, seed in enumerate([int(zv)] if z.kind == "seeds" else seeds):
                    cells.append(Cell(
                        index=len(cells), x=xi, y=yi, z=zi, s=si, prompt=p, negative=n, seed=seed,
                        steps=int(zv) if z.kind == "steps" else options.steps,
                        cfg=float(zv) if z.kind == "cfg" else options.cfg,
                        lora=tag, file=resolved[tag.name] if tag else None,
                        z_value=None if z.kind is None else str(zv),
                        probe=zv.kind if z.kind == "probes" else None,
                    ))
    plan = GridPlan(cells, x.labels, y.labels, z.labels, x.kind, y.kind, z.kind,
                    list(z.values) if z.kind == "seeds" else seeds, width, height,
                    options.sampler, options.clip_skip or cfg.clip_skip, base_model)
    if z.kind != "seeds" and len(seeds) > 1:
        plan.notes.append(f"Each cell holds {len(seeds)} images, seeds {', '.join(map(str, seeds))} from left to right.")
    return plan


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

    def use(self, file: Path | None) -> None:
        if file == self.file:
            return
        if self.file is not None:
            self.pipe.unload_lora_weights()
            self.file = None
        if file is not None:
            from ..model.sdmodel import no_progress_bars

            try:
                with no_progress_bars():  # transformers' own bar for the text encoder's adapter
                    self.pipe.load_lora_weights(str(file), adapter_name=self.NAME)
            except (ValueError, KeyError, RuntimeError, OSError) as e:
                first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                raise GridError(
                    f"diffusers could not load {file.name} as a LoRA ({first}); A1111 and ComfyUI would "
                    f"likely refuse it too. Is it an SD1.5 LoRA in Kohya's format?"
                ) from None
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
                f"diffusers applied only {applied} of the {in_file} LoRA modules in {file.name}: the rest "
                f"name modules this base model does not have (another architecture?) or that diffusers "
                f"does not know, and A1111 or ComfyUI would skip them as well."
            )

    def weigh(self, tag: LoraTag) -> None:
        """Set the weight; `<lora:NAME:TE:UNET>` gives the text encoder and UNet their own."""
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


def _forget_old_cells(grid_json: Path, root: Path) -> None:
    """Remove the cell images an earlier grid listed, so eval/cells holds only this grid."""
    old = read_json(grid_json)
    if old is None:
        return
    for c in old.get("cells", []):
        p = root / c["path"] if c.get("path") else None
        if p and p.suffix == ".png" and p.parent.name == CELLS_DIR:
            p.unlink(missing_ok=True)


def text_embeds(model, text: str, clip_skip: int, device):
    """The text encoder's conditioning for `text` without its <lora:...> tags, with A1111's clip skip."""
    from ..model.sampling import embed

    return embed(model, infotext.strip_lora_tags(text), clip_skip, device)


def generate(plan: GridPlan, pipe, model, cells_dir: Path, progress: Progress | None = None) -> None:
    """Make every cell's image: the outer loop runs over LoRA files, so each loads once."""
    import torch

    from ..model.sampling import render, sampler_display

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
    if model_and_pipe is None:
        from ..model.sampling import load_pipeline

        model, pipe = load_pipeline(plan.base_model, plan.sampler, options.device, options.allow_pickle)
    else:
        from ..model.sampling import make_scheduler

        model, pipe = model_and_pipe
        pipe.scheduler = make_scheduler(model, plan.sampler)
    tiny = bool(getattr(model, "is_tiny", False))
    _forget_old_cells(grid_json, project.root)
    generate(plan, pipe, model, cells_dir, progress)

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
