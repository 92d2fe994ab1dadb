"""`facelora run` and `facelora demo`: every step in one go."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from .. import config as cfgmod
from ..errors import FaceloraError
from .app import OVERRIDES, Preset, Trigger, app, console, friendly


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
    from ..run import RunOptions, run as run_all

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
