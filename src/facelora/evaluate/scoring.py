"""Likeness for a project's grid (eval/grid.json -> eval/likeness.json + eval/heatmap.png), and
for images made anywhere (an A1111 X/Y/Z plot's sub-images), grouped by the `<lora:NAME:W>` tag
in each image's `parameters` text."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from ..dataset import list_images
from ..fileio import atomic_write_json, load_json
from ..filenames import parse_lora_filename
from ..paths import inside
from ..project import Project
from . import infotext, loras
from .board import CLONE_RATIO, GroupKey, LikenessReport, pick_best, score_images
from .heatmap import write_heatmap
from .likeness import MATCH_THRESHOLD, LikenessError, Progress, build_reference

# Where a LoRA file's validation loss is read from its metadata (Kohya's name, then facelora's).
VALIDATION_LOSS_KEYS = ("ss_validation_loss", "facelora_validation_loss")


class ScoreOptions(BaseModel):
    """Every choice `score` makes; the CLI's options and a GUI job's options file are these fields."""

    model_config = ConfigDict(extra="forbid")

    threshold: float = Field(MATCH_THRESHOLD, gt=0, description="a face matches below this distance (dlib: 0.6)")
    clone_ratio: float = Field(CLONE_RATIO, gt=0, description="faces spread less than this share of the training photos' spread are clones")
    install_to: Path | None = Field(None, description="copy the best file into this LoRA folder (e.g. A1111's models/Lora) with its weight")
    overwrite: bool = Field(False, description="when installing: replace a different file of the same name")
    force: bool = Field(False, description="when installing: install the best file even when every file has a copy, clone or bleed warning")


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
        raise LikenessError("No grid to score in {folder}: make one first with 'facelora grid \"{root}\"'.",
                            folder=str(project.eval_dir), root=str(project.root))
    grid = load_json(grid_path, "the grid's index")
    cells = grid.get("cells") if isinstance(grid, dict) else None
    if not isinstance(cells, list) or not all(isinstance(c, dict) and {"path", "x"} <= c.keys() for c in cells):
        raise LikenessError("{path} is not a grid index (no list of cells): make the grid again.", path=str(grid_path))
    cfg = project.train_config()
    losses: dict[str, float | None] = {}
    items = []
    for c in cells:
        path = inside(project.root, c["path"], "A grid cell")
        if not path.is_file():
            raise LikenessError("The grid's cell {path} is missing; make the grid again.", path=c["path"])
        file = Path(c["file"]).stem if c.get("file") else None
        if file is not None and file not in losses:
            losses[file] = validation_loss(Path(cfg.output_dir) / c["file"])
        key = GroupKey(file, c.get("weight") if file else None, c["x"], _label(file, c.get("weight")), losses.get(file))
        items.append((path, key, c.get("probe") or "likeness"))
    ref = build_reference(reference_photos(project), project.reference_cache)
    report = score_images(items, ref, options.threshold, options.clone_ratio, progress,
                          base_model=grid.get("base_model"), tiny=bool(grid.get("tiny_test_model")))
    report.probes = grid.get("probes")
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
        s.copy_of = _rel(s.copy_of, root) if s.copy_of else None
    for s in report.skipped:
        s.path = _rel(s.path, root)
    for item in report.baseline.get("per_photo", []):
        item["path"] = _rel(item["path"], root)
    report.baseline["no_face"] = [_rel(p, root) for p in report.baseline.get("no_face", [])]


def validation_loss(lora: Path) -> float | None:
    """The validation loss training recorded in the file's metadata, if it did."""
    try:
        meta = loras.read_metadata(lora)
    except (OSError, ValueError):
        return None
    for key in VALIDATION_LOSS_KEYS:
        try:
            return float(meta[key])
        except (KeyError, ValueError):
            continue
    return None


def install_best(project: Project, report: LikenessReport, dest_dir: Path, overwrite: bool = False,
                 force: bool = False) -> Installed:
    """Copy the report's best file into a LoRA folder with its weight recorded. Only a clean
    pick is installed; `force` installs the best of the files with warnings when none is clean."""
    best = report.best or (pick_best(report.groups, clean_only=False) if force else None)
    if best is None:
        hint = " (--force installs the best of them anyway)" if pick_best(report.groups, clean_only=False) else ""
        raise LikenessError("Nothing to install: {verdict}{hint}", verdict=report.verdict, hint=hint)
    cfg = project.train_config()
    source = loras.resolve(best.file, Path(cfg.output_dir), cfg.output_name)
    dest = loras.install(source, dest_dir, best.weight, project.settings().trigger, overwrite)
    return Installed(dest, best.weight)


def group_of(path: Path) -> GroupKey:
    """Group an image by the `<lora:...>` tags in its `parameters` text."""
    try:
        info = infotext.read_png_infotext(path)
    except (OSError, ValueError, SyntaxError):  # unreadable: score_images skips it with the reason
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
            raise LikenessError("{what} {path} is not a folder.", what=what, path=str(d))
    photos = list_images(Path(reference_dir))
    images = list_images(Path(images_dir))
    for folder, found in ((reference_dir, photos), (images_dir, images)):
        if not found:
            raise LikenessError("No images (.png .jpg .jpeg .webp .bmp) in {folder}.", folder=str(folder))
    ref = build_reference(photos)
    items = [(p, group_of(p)) for p in images]
    items.sort(key=lambda it: (it[1].order, it[1].file or "", it[1].weight if it[1].weight is not None else -1))
    return score_images(items, ref, options.threshold, options.clone_ratio, progress)
