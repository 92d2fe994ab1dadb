"""The `facelora` command's frame: the Typer app, its consoles, the options several commands
share, and the error printing (a FaceloraError's message, no traceback)."""

from __future__ import annotations

import functools
import os
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape

from .. import config as cfgmod
from ..errors import FaceloraError

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


def _progress_bar(description: str):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    TimeRemainingColumn(), console=err, transient=True)


def with_bar(description: str, work):
    """Run work(progress_callback) under a rich progress bar."""
    with _progress_bar(description) as bar:
        task = bar.add_task(description, total=None)
        return work(lambda done, total, msg: bar.update(task, completed=done, total=total,
                                                        description=escape(f"{description}: {msg}"[:70])))
