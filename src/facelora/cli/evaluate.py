"""`facelora grid` and `facelora score`: the X/Y grid of saved files and weights, and how alike
its faces are to the person."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape
from rich.table import Table

from ..errors import FaceloraError
from ..locks import held
from ..project import Project
from .app import AsJson, Overwrite, app, console, err, friendly, note, with_bar


def likeness_table(report) -> Table:
    """One row per (file, weight): how often a face appears, how close it is, how often it matches."""
    t = Table(title=f"Likeness: mean distance to the person; match = distance < {report.threshold:g}",
              title_justify="left")
    widest = max((len(g.file or g.label) for g in report.groups), default=4)
    t.add_column("file", min_width=min(widest, 40), overflow="fold")
    for col in ("weight", "images", "faces", "distance", "match", "spread"):
        t.add_column(col, justify="right", no_wrap=True)
    t.add_column("", no_wrap=True)
    best = report.best
    for g in report.groups:
        flag = "best" if best is not None and g is best else ("clones" if g.clones else "")
        t.add_row(
            escape(g.file or g.label), "" if g.weight is None else f"{g.weight:g}", str(g.images),
            f"{g.faces} ({g.detection_rate:.0%})", "-" if g.mean_distance is None else f"{g.mean_distance:.3f}",
            f"{g.match_rate:.0%}", "-" if g.spread is None else f"{g.spread:.3f}",
            f"[bold green]{flag}[/]" if flag == "best" else (f"[yellow]{flag}[/]" if flag else ""),
        )
    return t


def print_likeness(report, as_json: bool, root: Optional[Path] = None) -> None:
    if as_json:
        print(json.dumps(report.to_dict(), ensure_ascii=False))
        return
    console.print(likeness_table(report))
    b = report.baseline
    if b.get("mean") is not None:
        console.print(f"Training photos among themselves (leave-one-out distance): mean {b['mean']:.3f}, "
                      f"max {b['max']:.3f} over {b['faces']} faces.")
    for w in report.warnings:
        note(escape(w))
    console.print(escape(report.verdict))
    if report.best is not None:
        console.print(escape(report.rule))
    if report.heatmap:
        console.print(f"Heatmap: {root / report.heatmap if root else report.heatmap}")


@app.command()
@friendly
def grid(
    project: Annotated[Path, typer.Argument(help="The project whose saved LoRA files to compare.")],
    checkpoints: Annotated[str, typer.Option(help="all, or names/epochs: 'ohwx-000004,ohwx' or '2,4,6'.")] = "all",
    weights: Annotated[str, typer.Option(help="LoRA weights (Y): '0.4,0.6,0.8,1.0', '0.2-1.0 (+0.2)', '0-1 [6]'.")] = "0.4,0.6,0.8,1.0",
    prompt: Annotated[Optional[str], typer.Option(help="Prompt (may hold <lora:NAME:W>); default from the trigger and class word.")] = None,
    negative: Annotated[Optional[str], typer.Option(help="Negative prompt.")] = None,
    seeds: Annotated[Optional[str], typer.Option(help="Seeds, e.g. '1234' or '1,2,3' (each cell holds one image per seed); -1 = random, fixed for the grid.")] = None,
    z: Annotated[Optional[tuple[str, str]], typer.Option(help="Third axis and its values: prompts 'A,B' (Prompt S/R), seeds '1,2', cfg '5,7', steps '20,30'.")] = None,
    xsr: Annotated[Optional[str], typer.Option(help="X as Prompt S/R, e.g. '000004,000006,000008' (the first must be in the prompt).")] = None,
    ysr: Annotated[Optional[str], typer.Option(help="Y as Prompt S/R instead of --weights.")] = None,
    sampler: Annotated[str, typer.Option(help="Euler a, Euler, DPM++ 2M, DPM++ 2M Karras, DDIM.")] = "Euler a",
    steps: Annotated[int, typer.Option(min=1, max=150, help="Sampling steps.")] = 20,
    cfg: Annotated[float, typer.Option(min=0, max=30, help="CFG scale.")] = 7.0,
    size: Annotated[Optional[str], typer.Option(help="WxH, e.g. 512x512 (default: the training resolution).")] = None,
    base_model: Annotated[Optional[str], typer.Option("--base-model", help="SD1.5 checkpoint or diffusers folder (default: the project's).")] = None,
    clip_skip: Annotated[Optional[int], typer.Option("--clip-skip", min=1, max=12, help="Clip skip (default: the project's).")] = None,
    allow_pickle: Annotated[bool, typer.Option("--allow-pickle", help="Allow a .ckpt base model (read with weights_only=True).")] = False,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or mps.")] = "auto",
    score: Annotated[bool, typer.Option("--score", help="Then score every cell's likeness (as facelora score).")] = False,
    threshold: Annotated[float, typer.Option(help="With --score: a face matches below this distance.")] = 0.6,
    install_to: Annotated[Optional[Path], typer.Option("--install-to", help="With --score: copy the best file into this LoRA folder (e.g. A1111's models/Lora).")] = None,
    overwrite: Overwrite = False,
) -> None:
    """Draw the X/Y grid of saved LoRA files (X, in training order) at LoRA weights (Y), as
    AUTOMATIC1111's X/Y/Z plot does, with an optional third axis. Writes PROJECT/eval/grid.png,
    eval/cells/*.png (each with A1111's parameters text) and eval/grid.json."""
    from pydantic import ValidationError

    from ..evaluate.grid import GridError, GridOptions, make_grid

    if install_to is not None and not score:
        raise FaceloraError("--install-to picks the best file by likeness: add --score.")
    p = Project.open(project)
    try:
        options = GridOptions(
            checkpoints=checkpoints, weights=weights, prompt=prompt, negative=negative, seeds=seeds,
            z=z[0] if z else None, z_values=z[1] if z else None, xsr=xsr, ysr=ysr, sampler=sampler,
            steps=steps, cfg=cfg, size=size, base_model=base_model, clip_skip=clip_skip,
            allow_pickle=allow_pickle, device=device,
        )
    except ValidationError as e:
        raise GridError("; ".join(f"--{er['loc'][0]}: {er['msg']}" for er in e.errors())) from None
    with held(p, "grid", "facelora grid"):
        result = with_bar("Grid", lambda cb: make_grid(p, options, progress=cb))
    for n in result.notes:
        note(n)
    if result.tiny:
        note("tiny test model: these images are noise, not results.")
    console.print(f"Grid: {result.grid}  ({len(result.cells)} images, {result.seconds_per_image:.1f} s each)")
    console.print(f"Cells: {result.grid.parent / 'cells'}")
    console.print(f"Every cell described in: {result.json}")
    if score:
        _score_project(p, threshold, install_to, overwrite, as_json=False)


def _score_project(p: Project, threshold: float, install_to: Optional[Path], overwrite: bool, as_json: bool) -> None:
    from ..evaluate.scoring import ScoreOptions, install_best, score_project

    with held(p, "score", "facelora score"):
        report = with_bar("Scoring", lambda cb: score_project(p, ScoreOptions(threshold=threshold), cb))
    print_likeness(report, as_json, p.root)
    if not as_json:
        console.print(f"Scores: {p.eval_dir / 'likeness.json'}")
    if install_to is not None:
        done = install_best(p, report, install_to, overwrite)
        (err if as_json else console).print(
            f"Installed {done.path} (preferred weight {done.weight:g}; use <lora:{done.path.stem}:{done.weight:g}>)")


@app.command()
@friendly
def score(
    project: Annotated[Optional[Path], typer.Argument(help="A project with a grid (facelora grid).")] = None,
    reference: Annotated[Optional[Path], typer.Option(help="Without a project: folder of photos of the person.")] = None,
    images: Annotated[Optional[Path], typer.Option(help="Without a project: folder of generated images (e.g. an A1111 X/Y/Z plot's).")] = None,
    threshold: Annotated[float, typer.Option(help="A face matches below this distance (dlib: 0.6).")] = 0.6,
    install_to: Annotated[Optional[Path], typer.Option("--install-to", help="Copy the best file into this LoRA folder (e.g. A1111's models/Lora) with its weight.")] = None,
    overwrite: Overwrite = False,
    as_json: AsJson = False,
) -> None:
    """Score how alike the grid's faces are to the person: dlib's face descriptor of every cell
    against the training photos. Per file and weight: faces found, mean distance, match rate and
    spread; names the best file and weight. With --reference and --images, scores images made
    anywhere, grouped by the <lora:NAME:W> in their PNG parameters text."""
    from ..evaluate.scoring import ScoreOptions, score_folder

    if project is not None:
        if reference is not None or images is not None:
            raise FaceloraError("Give either a PROJECT or --reference and --images, not both.")
        _score_project(Project.open(project), threshold, install_to, overwrite, as_json)
        return
    if reference is None or images is None:
        raise FaceloraError("Give a PROJECT, or both --reference DIR (photos of the person) and --images DIR.")
    if install_to is not None:
        raise FaceloraError("--install-to needs a PROJECT (it copies the project's best file).")
    report = with_bar("Scoring", lambda cb: score_folder(reference, images, ScoreOptions(threshold=threshold), cb))
    print_likeness(report, as_json)
