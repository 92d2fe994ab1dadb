"""The grid's plan: every cell's prompt, LoRA tag, seed and settings, worked out from GridOptions
and the project's saved files before any model loads (grid.py renders it). Axis values use
AUTOMATIC1111's X/Y/Z plot syntax (axes.py); a probes Z axis takes the project's probe prompts.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..errors import FaceloraError
from ..project import Project
from . import axes, infotext, loras
from .infotext import LoraTag

Progress = Callable[[int, int, str], None]  # (done, total, what)
# Where a grid draws its cells until it is whole: eval/cells keeps the earlier grid's meanwhile,
# so an interrupted grid leaves the earlier grid.png, grid.json and cells as they were.
DRAWING_DIR = "cells-drawing"

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
        raise GridError("Size '{text}' must be WxH, e.g. 512x512 (or one number for a square).", text=text)
    w = int(m.group(1))
    h = int(m.group(2)) if m.lastindex == 2 else w
    if w % 8 or h % 8 or w < 64 or h < 64:
        raise GridError("Size {w}x{h}: both sides must be multiples of 8 and at least 64 (the VAE works in 8-pixel "
                        "blocks).", w=w, h=h)
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
            raise GridError("--z probes takes its prompts from {file}; leave out {what} (edit that file instead).",
                            file=str(project.probes_toml), what=what)
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
        raise GridError("Unknown Z axis '{z}': use prompts (Prompt S/R), seeds, cfg or steps.", z=options.z)
    if not options.z_values:
        raise GridError("The Z axis '{z}' needs values, e.g. --z {kind} \"...\".", z=options.z, kind=kind)
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
        raise GridError("Cell {xv} / {yv}: the prompt ends up with {n} <lora:...> tags: \"{p}\"", xv=xv, yv=yv,
                        n=len(found), p=p)
    tag = found[0] if found else None
    if x.kind == "files":
        tag = LoraTag(xv, tag.weight if tag else 1.0, tag.unet_weight if tag else None)
    if y.kind == "weights":
        if tag is None:
            raise GridError(
                "--weights set the weight of the prompt's <lora:NAME:W> tag, but the prompt for '{xv}' has none: "
                "\"{p}\". Put the tag in the prompt, e.g. <lora:{output_name}-{xv}:1>.", xv=xv, p=p,
                output_name=output_name)
        tag = LoraTag(tag.name, float(yv), None)
    return (infotext.set_lora_tag(p, tag) if tag else p), n, tag


def plan_grid(project: Project, options: GridOptions) -> GridPlan:
    """Every cell of the grid, with its final prompt and the LoRA file its tag names. Checks
    everything (sampler, size, axes, files) before any model is loaded."""
    from ..model.family import sampler_key

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
            "The project names no base model (pretrained_model_name_or_path): set it with 'facelora config set "
            "\"{root}\" base_model PATH' (or the GUI), or pass --base-model PATH (an SD1.5 .safetensors or "
            "diffusers folder).", root=str(project.root))
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
