"""Likeness for a project's grid (eval/grid.json -> eval/likeness.json + eval/heatmap.png), and
for images made anywhere (an A1111 X/Y/Z plot's sub-images), grouped by the `<lora:NAME:W>` tag
in each image's `parameters` text."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from ..dataset import list_images
from ..fileio import atomic_write_json
from ..project import Project, parse_lora_filename
from . import infotext, loras
from .heatmap import write_heatmap
from .likeness import (
    CLONE_RATIO,
    MATCH_THRESHOLD,
    GroupKey,
    LikenessError,
    LikenessReport,
    Progress,
    build_reference,
    score_images,
)

class ScoreOptions(BaseModel):
    """Every choice `score` makes; the CLI's options and a GUI job's options file are these fields."""

    model_config = ConfigDict(extra="forbid")

    threshold: float = Field(MATCH_THRESHOLD, gt=0, description="a face matches below this distance (dlib: 0.6)")
    clone_ratio: float = Field(CLONE_RATIO, gt=0, description="faces spread less than this share of the training photos' spread are clones")
    install_to: Path | None = Field(None, description="copy the best file into this LoRA folder (e.g. A1111's models/Lora) with its weight")
    overwrite: bool = Field(False, description="when installing: replace a different file of the same name")


@dataclass
class Installed:
    path: Path
    weight: float


def _label(file: str | None, weight: float | None) -> str:
    if file is None:
        return "no LoRA"
    return f"{file} @ {infotext.fmt_number(weight)}" if weight is not None else file


def reference_photos(project: Project) -> list[Path]:
    """The prepared training crops: the images in image/<repeats>_<trigger>/."""
    folder, _ = project.concept_dir()
    return list_images(folder)


def score_project(project: Project, options: ScoreOptions | None = None, progress: Progress | None = None) -> LikenessReport:
    """Score every cell of the project's last grid against its training photos; write
    eval/likeness.json and eval/heatmap.png (and install the best file when asked)."""
    options = options or ScoreOptions()
    grid_path = project.grid_json
    if not grid_path.is_file():
        raise LikenessError(f"No grid to score in {project.eval_dir}: make one first with 'facelora grid \"{project.root}\"'.")
    grid = json.loads(grid_path.read_text(encoding="utf-8"))
    ref = build_reference(reference_photos(project), project.reference_cache)
    items = []
    for c in grid["cells"]:
        path = project.root / c["path"]
        if not path.is_file():
            raise LikenessError(f"The grid's cell {c['path']} is missing; make the grid again.")
        file = Path(c["file"]).stem if c.get("file") else None
        items.append((path, GroupKey(file, c.get("weight") if file else None, c["x"], _label(file, c.get("weight")))))
    report = score_images(items, ref, options.threshold, options.clone_ratio, progress,
                          base_model=grid.get("base_model"), tiny=bool(grid.get("tiny_test_model")))
    heat = write_heatmap(report, project.heatmap_png)
    _relative_to(report, project.root)
    report.heatmap = _rel(heat, project.root) if heat else None
    atomic_write_json(project.likeness_json, report.to_dict())
    return report


def _rel(path: str | Path, root: Path) -> str:
    try:
        return Path(path).resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)


def _relative_to(report: LikenessReport, root: Path) -> None:
    """Paths inside the project are written relative to it, so the folder can move."""
    for s in report.images:
        s.path = _rel(s.path, root)
    for item in report.baseline.get("per_photo", []):
        item["path"] = _rel(item["path"], root)
    report.baseline["no_face"] = [_rel(p, root) for p in report.baseline.get("no_face", [])]


def install_best(project: Project, report: LikenessReport, dest_dir: Path, overwrite: bool = False) -> Installed:
    """Copy the report's best file into a LoRA folder with its weight recorded."""
    if report.best is None:
        raise LikenessError(f"Nothing to install: {report.verdict}")
    cfg = project.train_config()
    source = loras.resolve(report.best.file, Path(cfg.output_dir), cfg.output_name)
    dest = loras.install(source, dest_dir, report.best.weight, project.settings().trigger, overwrite)
    return Installed(dest, report.best.weight)


def group_of(path: Path) -> GroupKey:
    """Group an image by the `<lora:...>` tags in its `parameters` text."""
    try:
        info = infotext.read_png_infotext(path)
    except OSError:
        info = None
    if info is None:
        return GroupKey(None, None, 10**9 + 1, "no infotext")
    tags = infotext.lora_tags(info.prompt)
    if not tags:
        return GroupKey(None, None, -1, "no LoRA")
    if len(tags) > 1:
        label = " + ".join(_label(t.name, t.weight) for t in tags)
        return GroupKey(label, None, 10**9, label)
    t = tags[0]
    return GroupKey(t.name, t.weight, parse_lora_filename(t.name).order(), _label(t.name, t.weight))


def score_folder(reference_dir: Path, images_dir: Path, options: ScoreOptions | None = None,
                 progress: Progress | None = None) -> LikenessReport:
    """Score images made anywhere against reference photos of the person."""
    options = options or ScoreOptions()
    for d, what in ((reference_dir, "--reference"), (images_dir, "--images")):
        if not Path(d).is_dir():
            raise LikenessError(f"{what} {d} is not a folder.")
    photos = list_images(Path(reference_dir))
    images = list_images(Path(images_dir))
    if not images:
        raise LikenessError(f"No images (.png .jpg .jpeg .webp .bmp) in {images_dir}.")
    ref = build_reference(photos)
    items = [(p, group_of(p)) for p in images]
    items.sort(key=lambda it: (it[1].order, it[1].file or "", it[1].weight if it[1].weight is not None else -1))
    return score_images(items, ref, options.threshold, options.clone_ratio, progress)
