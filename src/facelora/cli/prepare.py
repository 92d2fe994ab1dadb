"""`facelora prepare`: photos in, the training set out, with a table of what became of each photo."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape
from rich.table import Table

from ..locks import held
from ..prepare.options import PrepareOptions
from .plan import warn_outside_tutorial
from .app import app, console, default_of, err, friendly, help_of, invalid


def _prepared(name: str):
    return default_of(PrepareOptions, name)


def _about(name: str) -> str:
    return help_of(PrepareOptions, name)


@app.command()
@friendly
def prepare(
    photos: Annotated[Path, typer.Argument(help="Folder of photos of the person (or one photo); never modified.")],
    project: Annotated[Path, typer.Argument(help="The project (created when --trigger is given and it does not exist).")],
    trigger: Annotated[Optional[str], typer.Option(help="Create the project with this trigger word.")] = None,
    class_word: Annotated[Optional[str], typer.Option("--class-word", help="With --trigger: woman, man, person.")] = None,
    resolution: Annotated[int, typer.Option(help=_about("resolution"))] = _prepared("resolution"),
    upscaler: Annotated[str, typer.Option(help=_about("upscaler"))] = _prepared("upscaler"),
    captioner: Annotated[str, typer.Option(help=_about("captioner"))] = _prepared("captioner"),
    tags: Annotated[Optional[str], typer.Option(help="Comma-separated tags added to every caption.")] = None,
    framing: Annotated[str, typer.Option(help=_about("framing"))] = _prepared("framing"),
    face_ratio: Annotated[Optional[float], typer.Option("--face-ratio", help=_about("face_ratio"))] = _prepared("face_ratio"),
    level: Annotated[bool, typer.Option("--level", help=_about("level"))] = False,
    allow_multiple: Annotated[bool, typer.Option("--allow-multiple", help=_about("allow_multiple"))] = False,
    second_face_ratio: Annotated[float, typer.Option("--second-face-ratio", help=_about("second_face_ratio"))] = _prepared("second_face_ratio"),
    general_threshold: Annotated[float, typer.Option("--general-threshold", help=_about("general_threshold"))] = _prepared("general_threshold"),
    character_threshold: Annotated[float, typer.Option("--character-threshold", help=_about("character_threshold"))] = _prepared("character_threshold"),
    keep_identity_tags: Annotated[bool, typer.Option("--keep-identity-tags", help=_about("keep_identity_tags"))] = False,
    overwrite_captions: Annotated[bool, typer.Option("--overwrite-captions", help=_about("overwrite_captions"))] = False,
    outlier_threshold: Annotated[float, typer.Option("--outlier-threshold", help=_about("outlier_threshold"))] = _prepared("outlier_threshold"),
    head_mask: Annotated[bool, typer.Option("--head-mask", help=_about("head_mask"))] = False,
    unmasked_weight: Annotated[float, typer.Option("--unmasked-weight", help=_about("unmasked_weight"))] = _prepared("unmasked_weight"),
    mask_dir: Annotated[Optional[str], typer.Option("--mask-dir", help=_about("mask_dir"))] = None,
) -> None:
    """Turn a folder of photos into the training set: find the face in each photo, cut a square
    around it, upscale it to the training resolution, caption it, and audit the set (blur,
    near-duplicates, somebody else's face). Writes PROJECT/prepare-report.json and a contact sheet;
    unchanged photos are skipped on a second run."""
    from pydantic import ValidationError
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from ..prepare import pipeline
    from ..prepare.captions import split_tags

    try:
        options = PrepareOptions(
            resolution=resolution, upscaler=upscaler, captioner=captioner,
            tags=split_tags(tags), framing=framing, face_ratio=face_ratio, level=level,
            allow_multiple=allow_multiple, second_face_ratio=second_face_ratio,
            general_threshold=general_threshold, character_threshold=character_threshold,
            keep_identity_tags=keep_identity_tags, overwrite_captions=overwrite_captions,
            outlier_threshold=outlier_threshold, head_mask=head_mask, unmasked_weight=unmasked_weight,
            mask_dir=mask_dir,
        )
    except ValidationError as e:
        raise pipeline.PrepareError(f"Invalid option: {invalid(e)}") from None
    p = pipeline.open_or_create(project, trigger, class_word)
    with held(p, "prepare", "facelora prepare"), Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err, transient=True) as bar:
        task = bar.add_task("Preparing photos", total=None)
        report = pipeline.prepare(photos, p, options,
                                  progress=lambda done, total, msg: bar.update(task, completed=done, total=total,
                                                                               description=escape(msg[:60])))
    console.print(prepare_table(report))
    print_prepare_notes(report)
    folder = p.root / report.concept_dir
    console.print(f"{len(report.accepted)} accepted, {len(report.rejected)} rejected -> {folder}")
    warn_outside_tutorial(p.train_config())  # the plan these photos would train: photos, repeats, epochs, steps
    console.print(f"Report: {p.prepare_report}   contact sheet: {p.contact_sheet}")


def prepare_table(report) -> Table:
    """One row per photo: what became of it, and its measures."""
    from rich import box

    t = Table(title="Prepared photos", title_justify="left", caption_justify="left", box=box.SIMPLE_HEAD)
    t.add_column("#", no_wrap=True)
    t.add_column("photo", overflow="fold", min_width=12, ratio=1)
    t.add_column("result", no_wrap=True)
    t.add_column("framing", overflow="fold")
    for col in ("face", "scale", "drift", "blur", "identity"):
        t.add_column(col, no_wrap=True, justify="right")

    def num(v, fmt):
        return "" if v is None else format(v, fmt)

    for it in report.items:
        ok = it.status == "accepted"
        result = ("[green]kept[/]" if it.earlier_run else "[green]accepted[/]") if ok else "[red]rejected[/]"
        identity = num(it.identity_distance, ".2f")
        t.add_row(f"{it.number:03d}" if it.number else "", escape(Path(it.source).name), result,
                  escape(it.framing or ""), num(it.face_px, "d"), num(it.scale, ".2f"), num(it.drift, ".3f"), num(it.blur, ".0f"),
                  f"[yellow]{identity}![/]" if it.identity_outlier else identity)
    t.caption = ("face: brow-to-chin length in source px; scale: output px per source px; drift: how far upscaling moved "
                 "the face's identity; identity: distance to the others' average face (! = outlier)")
    return t


def print_prepare_notes(report) -> None:
    """The reason of each rejection and every warning, one line each, under the table."""
    for it in report.items:
        name = escape(Path(it.source).name)
        if it.status == "rejected":
            console.print(f"  [red]{name}[/]: {escape(it.reason or '')}")
        for w in it.warnings:
            console.print(f"  [yellow]{name}[/]: {escape(w)}")
    if report.framings:
        console.print("Framing: " + ", ".join(f"{n} {what}" for what, n in report.framings.items()))
    for w in report.coverage.warnings if report.coverage else []:
        console.print(f"  [yellow]the set[/]: {escape(w)}")
    if report.resolution_note:
        console.print(escape(report.resolution_note))
    reused = sum(it.reused for it in report.items)
    earlier = sum(it.earlier_run for it in report.items)
    if reused:
        console.print(f"{reused} photo(s) unchanged since the last run were not processed again.")
    if earlier:
        console.print(f"{earlier} crop(s) marked 'kept' come from photos of an earlier run.")
