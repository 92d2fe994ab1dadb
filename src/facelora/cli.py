"""The `facelora` command: one verb per step of the tutorial. Argument parsing and printing only;
the work is done by the same functions the GUI calls."""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from . import config as cfgmod
from .errors import FaceloraError
from .locks import held
from .plan import Plan, plan_from_budget
from .replan import adopt, budget_plan, project_plan
from .tables import plan_table
from .prepare.options import PrepareOptions
from .project import Project, init_project

# transformers warns at import about image processors facelora never uses (they want torchvision,
# which must not be installed beside the CPU torch); a user's own setting still wins.
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

app = typer.Typer(
    help="Train a Stable Diffusion 1.5 LoRA of one real person, Kohya-compatible, and measure how alike it is.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
console = Console(highlight=False)
err = Console(stderr=True, highlight=False, soft_wrap=True)

# Options several commands share, named once.
Trigger = Annotated[str, typer.Option(help="The word that will call up the person, e.g. 'ohwx'.")]
Preset = Annotated[Optional[str], typer.Option(help="static or dynamic: the tutorial's two learning-rate schemes.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]
Overwrite = Annotated[bool, typer.Option("--overwrite", help="With --install-to: replace a different file of the same name.")]

# Commands that take any TrainConfig field with Kohya's spelling after their own options.
OVERRIDES = {"allow_extra_args": True, "ignore_unknown_options": True}


def friendly(fn):
    """Print a FaceloraError's message (which says what to do) instead of a traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except FaceloraError as e:
            err.print(f"[bold red]error:[/] {escape(str(e))}", markup=True)
            raise typer.Exit(2)

    return wrapper


def note(msg: str) -> None:
    err.print(f"[yellow]note:[/] {escape(msg)}", markup=True)


def overrides_from(ctx: typer.Context, preset: str | None = None) -> dict:
    updates = cfgmod.preset(preset) if preset else {}
    updates.update(cfgmod.parse_overrides(list(ctx.args)))
    return updates


@app.command(context_settings=OVERRIDES)
@friendly
def init(
    ctx: typer.Context,
    project: Annotated[Path, typer.Argument(help="New project folder (spaces and any language are fine).")],
    trigger: Trigger,
    class_word: Annotated[Optional[str], typer.Option("--class-word", help="What the person is: woman, man, person.")] = None,
    repeats: Annotated[int, typer.Option(min=1, help="Repeats per image per epoch (facelora plan can work it out).")] = 10,
    preset: Preset = None,
) -> None:
    """Create a project: image/<repeats>_<trigger>/, models/, log/ and facelora.toml, as in Kohya."""
    train = cfgmod.apply(cfgmod.TrainConfig(), overrides_from(ctx, preset))
    p = init_project(project, trigger, class_word, repeats, train)
    folder, _ = p.concept_dir()
    console.print(f"Created project {p.root}")
    console.print(f"  put the photos in  {folder}  (or run: facelora prepare PHOTOS \"{p.root}\")")


def _prepared(name: str):
    """A prepare option's default, from PrepareOptions (the one place defaults live)."""
    return PrepareOptions.model_fields[name].default


def _about(name: str) -> str:
    """A prepare option's help, from PrepareOptions (the GUI shows the same words)."""
    text = PrepareOptions.model_fields[name].description or ""
    return text[:1].upper() + text[1:] + "."


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
) -> None:
    """Turn a folder of photos into the training set: find the face in each photo, cut a square
    around it, upscale it to the training resolution, caption it, and audit the set (blur,
    near-duplicates, somebody else's face). Writes PROJECT/prepare-report.json and a contact sheet;
    unchanged photos are skipped on a second run."""
    from pydantic import ValidationError
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from .prepare import pipeline

    try:
        options = PrepareOptions(
            resolution=resolution, upscaler=upscaler, captioner=captioner,
            tags=[t.strip() for t in (tags or "").split(",") if t.strip()], framing=framing, face_ratio=face_ratio,
            level=level,
            allow_multiple=allow_multiple, second_face_ratio=second_face_ratio,
            general_threshold=general_threshold, character_threshold=character_threshold,
            keep_identity_tags=keep_identity_tags, overwrite_captions=overwrite_captions,
            outlier_threshold=outlier_threshold,
        )
    except ValidationError as e:
        problems = "; ".join(f"--{'-'.join(str(x) for x in er['loc']).replace('_', '-')}: {er['msg']}" for er in e.errors())
        raise pipeline.PrepareError(f"Invalid option: {problems}") from None
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
    console.print(f"Report: {p.prepare_report}   contact sheet: {p.root / (report.contact_sheet or '')}")


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
    if report.resolution_note:
        console.print(report.resolution_note[:1].upper() + report.resolution_note[1:] + ".")
    reused = sum(it.reused for it in report.items)
    earlier = sum(it.earlier_run for it in report.items)
    if reused:
        console.print(f"{reused} photo(s) unchanged since the last run were not processed again.")
    if earlier:
        console.print(f"{earlier} crop(s) marked 'kept' come from photos of an earlier run.")


def print_plan(plan: Plan, as_json: bool, cfg: Optional[cfgmod.TrainConfig] = None) -> None:
    if as_json:
        print(json.dumps(plan.to_dict(), ensure_ascii=False))
        return
    console.print(plan_table(plan))
    for n in plan.notes:
        note(n)
    if cfg is not None:  # time and memory, from measured step figures (facelora.estimate)
        from .estimate import estimate

        for line in estimate(cfg, plan.total_steps).lines():
            console.print(escape(line))


@app.command()
@friendly
def plan(
    project: Annotated[Optional[Path], typer.Argument(help="A project: plan from its images and settings.")] = None,
    images: Annotated[Optional[int], typer.Option(min=1, help="Number of training images.")] = None,
    epochs: Annotated[Optional[int], typer.Option(min=1, help="Epochs (5-10 for a face).")] = None,
    max_train_steps: Annotated[Optional[int], typer.Option("--max-train-steps", "--max_train_steps", min=1,
                                                           help="Step budget (3000-5000 for a face).")] = None,
    batch: Annotated[int, typer.Option(min=1, help="Batch size.")] = 1,
    num_processes: Annotated[int, typer.Option("--num-processes", "--num_processes", min=1, help="GPUs / processes.")] = 1,
    yes: Annotated[bool, typer.Option("--yes", help="Rename image/<old>_<trigger> to the planned repeats.")] = False,
    as_json: AsJson = False,
) -> None:
    """Work out repeats from a step budget (repeats = steps x batch / (images x epochs)) and show
    the whole schedule: steps per epoch, total steps, the files that will be saved."""
    if project is None:
        if not (images and epochs and max_train_steps):
            raise cfgmod.ConfigError("Without a project, give --images, --epochs and --max-train-steps.")
        print_plan(plan_from_budget(images, epochs, max_train_steps, batch, num_processes=num_processes), as_json,
                   cfgmod.TrainConfig(train_batch_size=batch))
        return
    p = Project.open(project)
    current = project_plan(p, num_processes)
    cfg = p.train_config()
    if not (epochs or max_train_steps):
        print_plan(current, as_json, cfg)
        return
    e = epochs or cfg.max_train_epochs or current.epochs
    steps = max_train_steps or cfg.max_train_steps
    new = budget_plan(p, current.images, e, steps, num_processes)
    print_plan(new, as_json, cfg)
    if new.repeats != current.repeats or e != cfg.max_train_epochs:
        if yes:
            folder = adopt(p, new, steps)
            if not as_json:
                console.print(f"Renamed to {folder.name}; epochs {e} saved in {p.config_path.name}.")
        elif not as_json:
            note(f"The project uses {current.repeats} repeats; run again with --yes to rename the folder to "
                 f"{new.repeats}_... and save epochs={e}.")


_FOLDERS = ("train_data_dir", "output_dir", "logging_dir")


@app.command(context_settings=OVERRIDES)
@friendly
def train(
    ctx: typer.Context,
    project: Annotated[Path, typer.Argument(help="The project to train.")],
    base_model: Annotated[Optional[str], typer.Option(
        "--base-model", help="SD1.5 base model: a .safetensors file, a diffusers folder, or 'tiny' (the test "
                             "model). Default: the project's pretrained_model_name_or_path.")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Go on from the state saved with the last file "
                                                          "(save_state), after an interruption.")] = False,
    allow_pickle: Annotated[bool, typer.Option("--allow-pickle", help="Allow a .ckpt base model (a pickle, "
                                               "read with weights_only=True). Only for files you trust.")] = False,
    num_processes: Annotated[int, typer.Option("--num_processes", "--num-processes", min=1, help=(
        "Train on this many GPUs (processes; on a machine without a GPU, CPU processes): facelora "
        "launches itself through accelerate."))] = 1,
) -> None:
    """Train the LoRA on the project's images, as Kohya's train_network.py does: the parameters
    and the plan first, then a progress bar, and a 'model saved:' line for every file. Any
    training parameter can follow in Kohya's spelling (--network_dim 32 --optimizer_args
    "decouple=True" "weight_decay=0.01"); they apply to this run only and are not saved.
    Ctrl-C saves the LoRA and the state and stops; --resume goes on from there."""
    from .train.loop import train as train_lora

    p = Project.open(project)
    if num_processes > 1 and "LOCAL_RANK" not in os.environ:  # not yet inside a launched process
        args = [str(p.root)] + (["--base-model", base_model] if base_model else []) + (["--resume"] if resume else [])
        with held(p, "train", f"facelora train --num_processes {num_processes}"):
            status = launch_processes(num_processes, args + (["--allow-pickle"] if allow_pickle else []) + list(ctx.args))
        raise typer.Exit(status)
    updates = overrides_from(ctx)
    if base_model:
        updates["pretrained_model_name_or_path"] = base_model
    for key in _FOLDERS:  # a relative folder given here is inside the project, as in facelora.toml
        if key in updates and not Path(updates[key]).is_absolute():
            updates[key] = str(p.root / updates[key])
    cfg = cfgmod.apply(p.train_config(), updates)
    with held(p, "train", "facelora train"):
        result = train_lora(p, cfg, allow_pickle=allow_pickle, resume=resume, console=console)
    if result.interrupted:
        raise typer.Exit(130)


def launch_processes(n: int, train_args: list[str]) -> int:
    """Run `facelora train` in n processes through accelerate (torch.distributed: NCCL on GPUs,
    gloo on the CPU) and return its exit status. Ctrl-C and SIGTERM are passed on once, so the
    processes save and stop together; a second Ctrl-C stops them at once."""
    import signal
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(n),
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
           "-m", "facelora", "train", *train_args]
    console.print("Launching " + " ".join(cmd[1:3] + cmd[4:]))
    proc = subprocess.Popen(cmd, start_new_session=True)  # signals reach it from here only, once each
    forward = lambda signum, frame: proc.send_signal(signum)  # noqa: E731
    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return proc.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


config_app = typer.Typer(help="Read and write Kohya training TOML files.", no_args_is_help=True)
app.add_typer(config_app, name="config")


@config_app.command("export")
@friendly
def config_export(
    project: Annotated[Path, typer.Argument(help="The project.")],
    out: Annotated[Path, typer.Argument(help="TOML file for Kohya's train_network.py --config_file.")],
) -> None:
    """Write the project's parameters as a Kohya (sd-scripts) training TOML."""
    from .fileio import atomic_write_text

    p = Project.open(project)
    atomic_write_text(out, cfgmod.export_kohya(p.train_config(), p.root))
    console.print(f"Wrote {out}: run it with  accelerate launch train_network.py --config_file \"{out}\"")


@config_app.command("import")
@friendly
def config_import(
    project: Annotated[Path, typer.Argument(help="The project.")],
    kohya_toml: Annotated[Path, typer.Argument(help="A Kohya training TOML or kohya_ss GUI config.")],
) -> None:
    """Take the training parameters of a Kohya TOML into the project (folders stay the project's)."""
    p = Project.open(project)
    settings = p.settings()
    cfg, notes = cfgmod.import_kohya(kohya_toml.read_text(encoding="utf-8"), settings.train)
    keep = {k: getattr(settings.train, k) for k in ("train_data_dir", "output_dir", "logging_dir")}
    settings.train = cfgmod.apply(cfg, keep)
    p.save_settings(settings)
    for n in notes:
        note(n)
    console.print(f"Imported {kohya_toml.name} into {p.config_path}")


def _progress_bar(description: str):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    TimeRemainingColumn(), console=err, transient=True)


def _with_bar(description: str, work):
    """Run work(progress_callback) under a rich progress bar."""
    with _progress_bar(description) as bar:
        task = bar.add_task(description, total=None)
        return work(lambda done, total, msg: bar.update(task, completed=done, total=total,
                                                        description=escape(f"{description}: {msg}"[:70])))


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

    from .evaluate.grid import GridError, GridOptions, make_grid

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
        result = _with_bar("Grid", lambda cb: make_grid(p, options, progress=cb))
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
    from .evaluate.scoring import ScoreOptions, install_best, score_project

    with held(p, "score", "facelora score"):
        report = _with_bar("Scoring", lambda cb: score_project(p, ScoreOptions(threshold=threshold), cb))
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
    from .evaluate.scoring import ScoreOptions, score_folder

    if project is not None:
        if reference is not None or images is not None:
            raise FaceloraError("Give either a PROJECT or --reference and --images, not both.")
        _score_project(Project.open(project), threshold, install_to, overwrite, as_json)
        return
    if reference is None or images is None:
        raise FaceloraError("Give a PROJECT, or both --reference DIR (photos of the person) and --images DIR.")
    if install_to is not None:
        raise FaceloraError("--install-to needs a PROJECT (it copies the project's best file).")
    report = _with_bar("Scoring", lambda cb: score_folder(reference, images, ScoreOptions(threshold=threshold), cb))
    print_likeness(report, as_json)


@app.command()
@friendly
def gui(
    project: Annotated[Optional[Path], typer.Argument(help="A project to open.")] = None,
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port of the web page.")] = 7860,
    workspace: Annotated[Optional[Path], typer.Option(
        help="Folder where projects are created and opened (default: PROJECT's parent, else here).")] = None,
    allow: Annotated[Optional[list[Path]], typer.Option(
        help="Another folder the page may use: photos, base models, a LoRA folder to install into.")] = None,
    listen: Annotated[bool, typer.Option(help="Serve to other machines (0.0.0.0) instead of this one only.")] = False,
    auth: Annotated[Optional[str], typer.Option(help="USER:PASSWORD the page asks for.")] = None,
) -> None:
    """Open the web interface: the whole workflow in a browser, over the same functions as these
    commands. It serves http://127.0.0.1:PORT to this machine only unless --listen is given."""
    import importlib.util

    if importlib.util.find_spec("gradio") is None:
        raise FaceloraError("The web interface needs gradio: pip install 'facelora[gui]'")
    from .gui.app import launch

    for folder in [workspace, *(allow or [])]:
        if folder is not None and not folder.is_dir():
            raise FaceloraError(f"'{folder}' is not a folder.")
    launch(project, workspace, list(allow or []), port, listen, auth)


@app.command(context_settings=OVERRIDES)
@friendly
def run(
    ctx: typer.Context,
    photos: Annotated[Path, typer.Argument(help="Folder of photos of one person.")],
    project: Annotated[Path, typer.Argument(help="Project folder (created when it does not exist).")],
    trigger: Trigger,
    base_model: Annotated[str, typer.Option("--base-model", help="SD1.5 .safetensors file or diffusers folder ('tiny' = test model).")],
    class_word: Annotated[Optional[str], typer.Option("--class-word", help="woman, man, person...")] = None,
    preset: Preset = None,
    resolution: Annotated[int, typer.Option(help="Size of the prepared crops: 512 or 768.")] = 512,
    epochs: Annotated[int, typer.Option(min=1, help="Epochs (5-10 for a face).")] = 10,
    max_train_steps: Annotated[int, typer.Option("--max-train-steps", min=1, help="Step budget; repeats are solved from it.")] = 4800,
    weights: Annotated[str, typer.Option(help="LoRA weights of the grid's rows.")] = "0.4,0.6,0.8,1.0",
    allow_pickle: Annotated[bool, typer.Option("--allow-pickle", help="Allow a .ckpt base model.")] = False,
) -> None:
    """Everything in one go: init, prepare, plan, train, grid, score, and PROJECT/report.html with
    the best file and weight. Any training parameter can follow in Kohya's spelling."""
    from .run import RunOptions, run as run_all

    opts = RunOptions(photos=photos, project=project, trigger=trigger, base_model=base_model,
                      class_word=class_word, preset=preset, overrides=cfgmod.parse_overrides(list(ctx.args)),
                      resolution=resolution, epochs=epochs, max_train_steps=max_train_steps, weights=weights,
                      allow_pickle=allow_pickle)
    _finish(run_all(opts, console.print))


@app.command()
@friendly
def demo(
    folder: Annotated[Path, typer.Argument(help="Folder for the demo's photos and project.")] = Path("facelora-demo"),
    base_model: Annotated[str, typer.Option("--base-model", help="'tiny' (random test model), or a real SD1.5 file.")] = "tiny",
) -> None:
    """The embedded default: photos made from scikit-image's astronaut (public domain), trained end
    to end on the tiny test model on the CPU in a few minutes. The tiny model's images are noise."""
    from .run import demo as run_demo

    if (folder / "project").exists():
        raise FaceloraError(f"'{folder / 'project'}' already exists; give another folder (facelora demo DIR) "
                            f"or remove it.")
    _finish(run_demo(folder, base_model, console.print))


def _finish(result) -> None:
    if result.best:
        console.print(f"Most alike: {result.best['file']} at weight {result.best['weight']}")
    else:
        console.print(result.verdict)
    console.print(f"Report: {result.report}")


if __name__ == "__main__":  # pragma: no cover
    app()
