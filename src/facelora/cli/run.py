"""`facelora run` and `facelora demo`: every step in one go."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from .. import config as cfgmod
from ..errors import FaceloraError
from ..run import RunOptions
from .app import OVERRIDES, Preset, Trigger, app, console, default_of, friendly, help_of, option_of, options_of


@app.command(context_settings=OVERRIDES)
@friendly
def run(
    ctx: typer.Context,
    photos: Annotated[Path, typer.Argument(help=help_of(RunOptions, "photos"))],
    project: Annotated[Path, typer.Argument(help=help_of(RunOptions, "project"))],
    trigger: Trigger,
    base_model: Annotated[str, option_of(RunOptions, "base_model", "--base-model")],
    class_word: Annotated[Optional[str], option_of(RunOptions, "class_word", "--class-word")] = None,
    preset: Preset = None,
    resolution: Annotated[int, option_of(RunOptions, "resolution")] = default_of(RunOptions, "resolution"),
    epochs: Annotated[int, option_of(RunOptions, "epochs")] = default_of(RunOptions, "epochs"),
    max_train_steps: Annotated[int, option_of(RunOptions, "max_train_steps", "--max-train-steps")] = default_of(RunOptions, "max_train_steps"),
    weights: Annotated[str, option_of(RunOptions, "weights")] = default_of(RunOptions, "weights"),
    allow_pickle: Annotated[bool, option_of(RunOptions, "allow_pickle", "--allow-pickle")] = False,
) -> None:
    """Everything in one go: init, prepare, plan, train, grid, score, and PROJECT/report.html with
    the best file and weight. Any training parameter can follow in Kohya's spelling."""
    from ..run import run as run_all

    opts = options_of(RunOptions, photos=photos, project=project, trigger=trigger, base_model=base_model,
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
    from ..run import demo as run_demo

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
