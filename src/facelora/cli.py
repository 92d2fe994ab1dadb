"""The `facelora` command: one verb per step of the tutorial. Argument parsing and printing only;
the work is done by the same functions the GUI calls."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from . import config as cfgmod
from .dataset import scan
from .errors import FaceloraError
from .plan import Plan, make_plan, plan_from_budget
from .project import Project, init_project

app = typer.Typer(
    help="Train a Stable Diffusion 1.5 LoRA of one real person, Kohya-compatible, and measure how alike it is.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
console = Console(highlight=False)
err = Console(stderr=True, highlight=False, soft_wrap=True)

# Commands that take any TrainConfig field with Kohya's spelling after their own options.
OVERRIDES = {"allow_extra_args": True, "ignore_unknown_options": True}


def friendly(fn):
    """Print a FaceloraError's message (which says what to do) instead of a traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except FaceloraError as e:
            err.print(f"[bold red]error:[/] {e}", markup=True)
            raise typer.Exit(2)

    return wrapper


def note(msg: str) -> None:
    err.print(f"[yellow]note:[/] {msg}", markup=True)


def overrides_from(ctx: typer.Context, preset: str | None = None) -> dict:
    updates = cfgmod.preset(preset) if preset else {}
    updates.update(cfgmod.parse_overrides(list(ctx.args)))
    return updates


@app.command(context_settings=OVERRIDES)
@friendly
def init(
    ctx: typer.Context,
    project: Annotated[Path, typer.Argument(help="New project folder (spaces and any language are fine).")],
    trigger: Annotated[str, typer.Option(help="The word that will call up the person, e.g. 'ohwx'.")],
    class_word: Annotated[Optional[str], typer.Option("--class-word", help="What the person is: woman, man, person.")] = None,
    repeats: Annotated[int, typer.Option(min=1, help="Repeats per image per epoch (facelora plan can work it out).")] = 10,
    preset: Annotated[Optional[str], typer.Option(help="static or dynamic: the tutorial's two learning-rate schemes.")] = None,
) -> None:
    """Create a project: image/<repeats>_<trigger>/, models/, log/ and facelora.toml, as in Kohya."""
    train = cfgmod.apply(cfgmod.TrainConfig(), overrides_from(ctx, preset))
    p = init_project(project, trigger, class_word, repeats, train)
    folder, _ = p.concept_dir()
    console.print(f"Created project {p.root}")
    console.print(f"  put the photos in  {folder}  (or run: facelora prepare PHOTOS \"{p.root}\")")


def plan_table(plan: Plan, title: str = "Training plan") -> Table:
    t = Table(title=title, show_header=False, title_justify="left")
    t.add_column(style="bold")
    t.add_column()
    rows = [
        ("images", plan.images), ("repeats", plan.repeats), ("epochs", plan.epochs),
        ("batch size", plan.batch_size),
    ]
    if plan.num_processes > 1:
        rows.append(("processes", plan.num_processes))
    if plan.gradient_accumulation_steps > 1:
        rows.append(("gradient accumulation", plan.gradient_accumulation_steps))
    rows += [
        ("images x repeats per epoch", plan.samples_per_epoch),
        ("steps per epoch", plan.steps_per_epoch), ("total steps", plan.total_steps),
        ("files saved", "\n".join(plan.saved_files)),
    ]
    for k, v in rows:
        t.add_row(k, str(v))
    return t


def print_plan(plan: Plan, as_json: bool) -> None:
    if as_json:
        print(json.dumps(plan.to_dict(), ensure_ascii=False))
        return
    console.print(plan_table(plan))
    for n in plan.notes:
        note(n)


def project_plan(p: Project, num_processes: int = 1) -> Plan:
    """The plan of an existing project, from its images and settings."""
    cfg = p.train_config()
    data = scan(cfg.train_data_dir, cfg.caption_extension)
    repeats = data.subsets[0].repeats
    return make_plan(
        data.num_images, repeats, cfg.train_batch_size, cfg.output_name, cfg.max_train_epochs,
        cfg.max_train_steps, cfg.save_every_n_epochs, cfg.save_last_n_epochs, num_processes,
        cfg.gradient_accumulation_steps,
    )


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
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Work out repeats from a step budget (repeats = steps x batch / (images x epochs)) and show
    the whole schedule: steps per epoch, total steps, the files that will be saved."""
    if project is None:
        if not (images and epochs and max_train_steps):
            raise cfgmod.ConfigError("Without a project, give --images, --epochs and --max-train-steps.")
        print_plan(plan_from_budget(images, epochs, max_train_steps, batch, num_processes=num_processes), as_json)
        return
    p = Project.open(project)
    current = project_plan(p, num_processes)
    if not (epochs or max_train_steps):
        print_plan(current, as_json)
        return
    cfg = p.train_config()
    e = epochs or cfg.max_train_epochs or current.epochs
    steps = max_train_steps or cfg.max_train_steps
    new = plan_from_budget(current.images, e, steps, cfg.train_batch_size, cfg.output_name,
                           cfg.save_every_n_epochs, num_processes)
    print_plan(new, as_json)
    if new.repeats != current.repeats or e != cfg.max_train_epochs:
        if yes:
            folder = p.rename_repeats(new.repeats)
            settings = p.settings()
            settings.train = cfgmod.apply(settings.train, {"max_train_epochs": e, "max_train_steps": steps})
            p.save_settings(settings)
            if not as_json:
                console.print(f"Renamed to {folder.name}; epochs {e} saved in {p.config_path.name}.")
        elif not as_json:
            note(f"The project uses {current.repeats} repeats; run again with --yes to rename the folder to "
                 f"{new.repeats}_... and save epochs={e}.")


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


if __name__ == "__main__":  # pragma: no cover
    app()
