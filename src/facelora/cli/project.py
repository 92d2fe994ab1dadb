"""`facelora init`: a new project."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from .. import config as cfgmod
from ..project import Project, init_project
from .app import OVERRIDES, Preset, Trigger, app, console, friendly, overrides_from


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
    from ..kohya_layout import kohya_layout

    train = cfgmod.apply(cfgmod.TrainConfig(), overrides_from(ctx, preset))
    adopting = not Project.is_project(project) and kohya_layout(project) is not None
    p = init_project(project, trigger, class_word, repeats, train)
    folder, _ = p.concept_dir()
    if adopting:
        console.print(f"{p.root} is laid out the Kohya way: made it a project where it is (wrote {p.config_path.name}; "
                      f"nothing else was changed)")
    else:
        console.print(f"Created project {p.root}")
    console.print(f"  put the photos in  {folder}  (or run: facelora prepare PHOTOS \"{p.root}\")")
