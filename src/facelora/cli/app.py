"""The `facelora` command's frame: the Typer app, its consoles, the options several commands
share, and the error printing (a FaceloraError's message, no traceback)."""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Annotated, Any, Optional, TypeVar

import typer
from pydantic import BaseModel, ValidationError
from rich.console import Console
from rich.markup import escape
from safetensors import SafetensorError

from .. import config as cfgmod
from ..errors import FaceloraError
from ..fileio import io_error

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


def _version(value: bool) -> None:
    if value:
        from .. import __version__

        console.print(f"facelora {__version__}")
        raise typer.Exit()


@app.callback()
def main(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                                help="Print facelora's version and exit.")] = False) -> None:
    """Train a Stable Diffusion 1.5 LoRA of one real person, Kohya-compatible, and measure how alike it is."""

# Options several commands share, named once.
Trigger = Annotated[str, typer.Option(help="The word that will call up the person, e.g. 'ohwx'.")]
Preset = Annotated[Optional[str], typer.Option(
    help="static, dynamic or dynamic-adafactor: the tutorial's learning-rate schemes; face: static with the head "
         "mask, validation and min-SNR.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]

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
        except (OSError, SafetensorError) as e:  # an I/O failure no step explained: still one message
            err.print(f"[bold red]error:[/] {escape(str(io_error(e)))}", markup=True)
            raise typer.Exit(2)

    return wrapper


def reading_files(kept: str, reads: str):
    """For commands that read files a person brings (grid, score): any error reading them is a
    message naming what it reads (`reads`), never a traceback, and Ctrl-C says what was kept (`kept`)."""

    def decorate(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except KeyboardInterrupt:
                err.print(f"[yellow]Stopped (Ctrl-C).[/] {escape(kept)}", markup=True)
                raise typer.Exit(130)
            except (OSError, ValueError, RuntimeError) as e:
                if isinstance(e, FaceloraError):
                    raise
                where = f" ({e.filename})" if getattr(e, "filename", None) else ""
                err.print(f"[bold red]error:[/] a file could not be read or used{escape(where)}: "
                          f"{escape(type(e).__name__)}: {escape(str(e))}. Check {escape(reads)}: a damaged or "
                          f"cut-off image, or a wrong path.", markup=True)
                raise typer.Exit(2)

        return wrapper

    return decorate


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


# Without a terminal (a log, the GUI's job output), progress is a line at most this often.
PROGRESS_LINE_S = 5.0


def _progress_lines(description: str):
    """A progress callback that prints `Grid: 2/8 what` lines: the first, then one every
    PROGRESS_LINE_S seconds, and the last."""
    import time

    last = [float("-inf")]

    def report(done: int, total: int | None, msg: str) -> None:
        now = time.monotonic()
        if now - last[0] >= PROGRESS_LINE_S or (total is not None and done >= total):
            last[0] = now
            err.print(f"{description}: {done}/{'?' if total is None else total} {msg}", markup=False)

    return report


def with_bar(description: str, work):
    """Run work(progress_callback) under a rich progress bar (in a terminal; lines otherwise)."""
    if not err.is_terminal:
        return work(_progress_lines(description))
    with _progress_bar(description) as bar:
        task = bar.add_task(description, total=None)
        return work(lambda done, total, msg: bar.update(task, completed=done, total=total,
                                                        description=escape(f"{description}: {msg}"[:70])))


# --- options models: the CLI reads each step's defaults and help from its model -----------------


def default_of(model: type[BaseModel], name: str) -> Any:
    """An option's default, from the step's options model (the one place defaults live)."""
    return model.model_fields[name].get_default(call_default_factory=True)


def help_of(model: type[BaseModel], name: str) -> str:
    """An option's help, from the step's options model (the GUI shows the same words)."""
    text = model.model_fields[name].description or ""
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


def option_of(model: type[BaseModel], name: str, *flags: str) -> Any:
    """A typer option whose help is the model field's description."""
    return typer.Option(*flags, help=help_of(model, name))


def invalid(e: ValidationError) -> str:
    """A model's validation errors in the CLI's spelling: `--face-ratio: ...; --steps: ...`."""
    return "; ".join(f"--{'-'.join(str(x) for x in er['loc']).replace('_', '-')}: {er['msg']}" for er in e.errors())


M = TypeVar("M", bound=BaseModel)

# A GUI job's options as a file (facelora.jobs writes it), instead of re-spelled options.
OptionsFile = Annotated[Optional[Path], typer.Option("--options-file", hidden=True,
                                                     help="JSON file with this command's options.")]


class OptionsError(FaceloraError, ValueError):
    """A command's options that its options model rejects."""


def options_of(model: type[M], **values: Any) -> M:
    """The step's options model from the command line's values, with the CLI's spelling in errors."""
    try:
        return model(**values)
    except ValidationError as e:
        raise OptionsError(f"Invalid option: {invalid(e)}") from None


def options_from_file(path: Path, model: type[M]) -> M:
    """A GUI job's options, as the GUI wrote them (facelora.gui.jobs.start)."""
    try:
        return model.model_validate_json(Path(path).read_bytes())
    except OSError as e:
        raise FaceloraError(f"Cannot read the options file {path}: {e.strerror or e}.") from None
    except ValidationError as e:
        raise OptionsError(f"The options file {path} does not fit: {invalid(e)}") from None
