"""`facelora grid` and `facelora score`: the X/Y grid of saved files and weights, and how alike
its faces are to the person."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.markup import escape
from rich.table import Table

from ..errors import FaceloraError
from ..evaluate.gridplan import DRAWING_DIR, GridOptions
from ..evaluate.scoring import ScoreOptions
from ..locks import held
from ..project import Project
from .app import (AsJson, OptionsFile, app, console, default_of, err, friendly, note, option_of, options_from_file,
                  options_of, reading_files, with_bar)


def likeness_table(report) -> Table:
    """One row per (file, weight): how often a face appears, how close it is, how often it matches,
    and the scoreboard's other scores (flexibility, bleed, copies, validation loss). The file names
    are never cut, and a score no row has (flex, bleed, val loss) is left out, so the table fits
    an 80-column terminal."""
    from rich import box

    from ..evaluate.board import BLEED_WARN

    def pct(v):
        return "—" if v is None else f"{v:.0%}"

    best = report.best
    columns: dict[str, list[str]] = {name: [] for name in (
        "file", "weight", "images", "faces", "distance", "match", "flex", "bleed", "copies", "spread", "val loss", "")}
    for g in report.groups:
        flags = [w for w, on in (("clones", g.clones), ("copies", g.copies),
                                 ("bleed", g.bleed is not None and g.bleed > BLEED_WARN)) if on]
        flag = "[bold green]best[/]" if best is not None and g is best else (f"[yellow]{', '.join(flags)}[/]" if flags else "")
        row = (escape(g.file or g.label), "" if g.weight is None else f"{g.weight:g}", str(g.images),
               f"{g.faces} ({g.detection_rate:.0%})", "-" if g.mean_distance is None else f"{g.mean_distance:.3f}",
               f"{g.match_rate:.0%}", pct(g.flexibility), pct(g.bleed), str(g.copies),
               "-" if g.spread is None else f"{g.spread:.3f}",
               "—" if g.validation_loss is None else f"{g.validation_loss:.4f}", flag)
        for cells, value in zip(columns.values(), row):
            cells.append(value)
    for optional in ("flex", "bleed", "val loss"):
        if report.groups and all(v == "—" for v in columns[optional]):
            del columns[optional]
    t = Table(title=f"Likeness: mean distance to the person; match = distance < {report.threshold:g}"
                    + ("; flex = match on flexibility prompts" if "flex" in columns else "")
                    + ("; bleed = share of other people's faces that are the person" if "bleed" in columns else ""),
              title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    for name in columns:
        t.add_column(name, justify="left" if name in ("file", "") else "right", no_wrap=True)
    for row in zip(*columns.values()):
        t.add_row(*row)
    return t


def print_likeness(report, as_json: bool, root: Optional[Path] = None) -> None:
    if as_json:
        print(json.dumps(report.to_dict(), ensure_ascii=False))
        return
    table = likeness_table(report)
    # never narrower than the rows: a file name or score cut off would say nothing
    console.print(table, width=max(console.width, console.measure(table, options=console.options.update_width(500)).maximum))
    b = report.baseline
    if b.get("mean") is not None:
        console.print(f"Training photos among themselves (leave-one-out distance): mean {b['mean']:.3f}, "
                      f"max {b['max']:.3f} over {b['faces']} faces.")
    for skipped in report.skipped:
        note(skipped.line())
    for w in report.warnings:
        note(w)
    console.print(escape(report.verdict))
    if report.best is not None:
        console.print(escape(report.rule))
    if report.heatmap:
        console.print(f"Heatmap: {root / report.heatmap if root else report.heatmap}")


def _grid(name: str, *flags: str) -> Any:
    return option_of(GridOptions, name, *flags)


# Options of score that grid --score takes too.
Threshold = Annotated[float, option_of(ScoreOptions, "threshold")]
InstallTo = Annotated[Optional[Path], option_of(ScoreOptions, "install_to", "--install-to")]
Overwrite = Annotated[bool, option_of(ScoreOptions, "overwrite", "--overwrite")]
Force = Annotated[bool, option_of(ScoreOptions, "force", "--force")]


GRID_KEPT = (f"The cell images drawn so far are kept in eval/{DRAWING_DIR}; the earlier grid (eval/grid.png, "
             f"grid.json and eval/cells) is as it was (run facelora grid again to draw the whole grid).")
SCORE_KEPT = "Nothing was written: eval/likeness.json keeps the scores of the last finished scoring."


@app.command()
@friendly
@reading_files(GRID_KEPT, "the project's LoRA files and the base model")
def grid(
    project: Annotated[Path, typer.Argument(help="The project whose saved LoRA files to compare.")],
    checkpoints: Annotated[str, _grid("checkpoints")] = default_of(GridOptions, "checkpoints"),
    weights: Annotated[str, _grid("weights")] = default_of(GridOptions, "weights"),
    prompt: Annotated[Optional[str], _grid("prompt")] = None,
    negative: Annotated[Optional[str], _grid("negative")] = None,
    seeds: Annotated[Optional[str], _grid("seeds")] = None,
    z: Annotated[Optional[tuple[str, str]], typer.Option(help="Third axis and its values: prompts 'A,B' (Prompt S/R), seeds '1,2', cfg '5,7', steps '20,30'.")] = None,
    probes: Annotated[bool, typer.Option("--probes", help="Third axis: the likeness, flexibility and bleed prompts of PROJECT/eval/probes.toml (written with defaults on first use).")] = False,
    xsr: Annotated[Optional[str], _grid("xsr")] = None,
    ysr: Annotated[Optional[str], _grid("ysr")] = None,
    sampler: Annotated[str, _grid("sampler")] = default_of(GridOptions, "sampler"),
    steps: Annotated[int, _grid("steps")] = default_of(GridOptions, "steps"),
    cfg: Annotated[float, _grid("cfg")] = default_of(GridOptions, "cfg"),
    size: Annotated[Optional[str], _grid("size")] = None,
    base_model: Annotated[Optional[str], _grid("base_model", "--base-model")] = None,
    clip_skip: Annotated[Optional[int], _grid("clip_skip", "--clip-skip")] = None,
    allow_pickle: Annotated[bool, _grid("allow_pickle", "--allow-pickle")] = False,
    device: Annotated[str, _grid("device")] = default_of(GridOptions, "device"),
    score: Annotated[bool, typer.Option("--score", help="Then score every cell's likeness (as facelora score).")] = False,
    threshold: Threshold = default_of(ScoreOptions, "threshold"),
    install_to: InstallTo = None,
    overwrite: Overwrite = False,
    force: Force = False,
    options_file: OptionsFile = None,
) -> None:
    """Draw the X/Y grid of saved LoRA files (X, in training order) at LoRA weights (Y), as
    AUTOMATIC1111's X/Y/Z plot does, with an optional third axis. Writes PROJECT/eval/grid.png,
    eval/cells/*.png (each with A1111's parameters text) and eval/grid.json."""
    from ..evaluate.grid import make_grid

    if install_to is not None and not score:
        raise FaceloraError("--install-to picks the best file by likeness (an option of --score): add --score.")
    if probes and z:
        raise FaceloraError("--probes is the third axis; leave out --z.")
    if probes:
        z = ("probes", "")
    p = Project.open(project)
    if options_file is not None:
        options = options_from_file(options_file, GridOptions)
    else:
        options = options_of(
            GridOptions, checkpoints=checkpoints, weights=weights, prompt=prompt, negative=negative, seeds=seeds,
            z=z[0] if z else None, z_values=(z[1] or None) if z else None, xsr=xsr, ysr=ysr, sampler=sampler,
            steps=steps, cfg=cfg, size=size, base_model=base_model, clip_skip=clip_skip,
            allow_pickle=allow_pickle, device=device,
        )
    options = _tiny_size(p, options)
    with held(p, "grid", "facelora grid"):
        result = with_bar("Grid", lambda cb: make_grid(p, options, progress=cb))
    for n in result.notes:
        note(n)
    if result.tiny:
        note("tiny test model: these images are noise, not results.")
    console.print(f"Grid: {result.grid}  ({len(result.cells)} images, {result.seconds_per_image:.1f} s each)")
    console.print(f"Cells: {p.cells_dir}")
    console.print(f"Every cell described in: {result.json}")
    if score:
        _score_project(p, options_of(ScoreOptions, threshold=threshold, install_to=install_to, overwrite=overwrite,
                                      force=force), as_json=False)


def _tiny_size(p: Project, options: GridOptions) -> GridOptions:
    """The tiny test model draws at the size it trains at unless a size is given (and says so)."""
    from .train import TINY_RESOLUTION, at_tiny_size

    cfg = p.train_config()
    if options.size or not at_tiny_size(options.base_model or cfg.pretrained_model_name_or_path, cfg.resolution):
        return options
    note(f"The tiny test model draws at {TINY_RESOLUTION} px, as it trains; give --size 512x512 for another size.")
    return options.model_copy(update={"size": f"{TINY_RESOLUTION}x{TINY_RESOLUTION}"})


def _score_project(p: Project, options: ScoreOptions, as_json: bool) -> None:
    from ..evaluate.scoring import install_best, score_project

    with held(p, "score", "facelora score"):
        report = with_bar("Scoring", lambda cb: score_project(p, options, cb))
    print_likeness(report, as_json, p.root)
    if not as_json:
        console.print(f"Scores: {p.likeness_json}")
    if options.install_to is not None:
        done = install_best(p, report, options.install_to, options.overwrite, options.force)
        (err if as_json else console).print(
            f"Installed {done.path} (preferred weight {done.weight:g}; use <lora:{done.path.stem}:{done.weight:g}>)")


@app.command()
@friendly
@reading_files(SCORE_KEPT, "the reference photos (--reference or the project's images) and the generated images")
def score(
    project: Annotated[Optional[Path], typer.Argument(help="A project with a grid (facelora grid).")] = None,
    reference: Annotated[Optional[Path], typer.Option(help="Without a project: folder of photos of the person.")] = None,
    images: Annotated[Optional[Path], typer.Option(help="Without a project: folder of generated images (e.g. an A1111 X/Y/Z plot's).")] = None,
    threshold: Threshold = default_of(ScoreOptions, "threshold"),
    install_to: InstallTo = None,
    overwrite: Overwrite = False,
    force: Force = False,
    as_json: AsJson = False,
    options_file: OptionsFile = None,
) -> None:
    """Score how alike the grid's faces are to the person: dlib's face descriptor of every cell
    against the training photos. Per file and weight: faces found, mean distance, match rate and
    spread; names the best file and weight. With --reference and --images, scores images made
    anywhere, grouped by the <lora:NAME:W> in their PNG parameters text."""
    from ..evaluate.scoring import score_folder

    options = (options_from_file(options_file, ScoreOptions) if options_file is not None else
               options_of(ScoreOptions, threshold=threshold, install_to=install_to, overwrite=overwrite, force=force))
    if project is not None:
        if reference is not None or images is not None:
            raise FaceloraError("Give either a PROJECT or --reference and --images, not both.")
        _score_project(Project.open(project), options, as_json)
        return
    if reference is None or images is None:
        raise FaceloraError("Give a PROJECT, or both --reference DIR (photos of the person) and --images DIR.")
    if options.install_to is not None:
        raise FaceloraError("--install-to needs a PROJECT (it copies the project's best file).")
    report = with_bar("Scoring", lambda cb: score_folder(reference, images, options, cb))
    print_likeness(report, as_json)
