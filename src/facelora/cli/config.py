"""`facelora config`: the project's parameters as Kohya's training TOML, and back."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .. import config as cfgmod
from ..project import Project
from .app import app, console, friendly, note

config_app = typer.Typer(help="Read and write Kohya training TOML files.", no_args_is_help=True)
app.add_typer(config_app, name="config")


@config_app.command("export")
@friendly
def config_export(
    project: Annotated[Path, typer.Argument(help="The project.")],
    out: Annotated[Path, typer.Argument(help="TOML file for Kohya's train_network.py --config_file.")],
) -> None:
    """Write the project's parameters as a Kohya (sd-scripts) training TOML."""
    from ..fileio import atomic_write_text

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
    from ..fileio import read_text

    p = Project.open(project)
    settings = p.settings()
    try:
        cfg, notes = cfgmod.import_kohya(read_text(kohya_toml, "the Kohya config"), settings.train)
    except cfgmod.ConfigError as e:
        raise cfgmod.ConfigError(f"{kohya_toml}: {e}") from None
    keep = {k: getattr(settings.train, k) for k in cfgmod.PROJECT_FOLDERS}
    settings.train = cfgmod.apply(cfg, keep)
    p.save_settings(settings)
    for n in notes:
        note(n)
    console.print(f"Imported {kohya_toml.name} into {p.config_path}")
