"""`facelora config`: the project's parameters as Kohya's training TOML, and back."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .. import config as cfgmod
from ..project import Project
from .app import app, console, friendly, note

config_app = typer.Typer(help="The project's parameters: show and set them, and Kohya's files in and out.",
                         no_args_is_help=True)
app.add_typer(config_app, name="config")


@config_app.command("export")
@friendly
def config_export(
    project: Annotated[Path, typer.Argument(help="The project.")],
    out: Annotated[Path, typer.Argument(help="TOML file for Kohya's train_network.py --config_file.")],
) -> None:
    """Write the project's parameters as a Kohya (sd-scripts) training TOML."""
    from ..fileio import atomic_write_text

    from ..config.kohya_dataset import dataset_config_toml, needs_dataset_config

    p = Project.open(project)
    cfg = p.train_config()
    dataset = out.with_name(f"{out.stem}-dataset.toml")
    if needs_dataset_config(cfg):  # masks from a conditioning folder, a validation folder: Kohya's dataset config
        atomic_write_text(dataset, dataset_config_toml(cfg, p.root))
        console.print(f"Wrote {dataset}: the folders, as sd-scripts' --dataset_config reads them")
    atomic_write_text(out, cfgmod.export_kohya(cfg, p.root, dataset))
    console.print(f"Wrote {out}: run it with  accelerate launch train_network.py --config_file \"{out}\"")


@config_app.command("import")
@friendly
def config_import(
    project: Annotated[Path, typer.Argument(help="The project.")],
    kohya_toml: Annotated[Path, typer.Argument(help="A Kohya training TOML (sd-scripts' --config_file or "
                                                    "--output_config) or a kohya_ss GUI config (.json or config.toml).")],
) -> None:
    """Take the training parameters of a Kohya file into the project as sd-scripts would run them:
    keys the file leaves out take sd-scripts' defaults. Prints every value that differs from
    facelora's face defaults, and every key facelora does not use. Folders stay the project's."""
    from ..fileio import read_text

    p = Project.open(project)
    settings = p.settings()
    try:
        cfg, notes = cfgmod.import_kohya(read_text(kohya_toml, "the Kohya config"), settings.train, source=kohya_toml)
    except cfgmod.ConfigError as e:  # the file's own fault: name it (facelora.toml is unchanged)
        raise cfgmod.ConfigError(str(e) if kohya_toml.name in str(e) else f"{kohya_toml}: {e}") from None
    keep = {k: getattr(settings.train, k) for k in cfgmod.PROJECT_FOLDERS}
    settings.train = cfgmod.apply(cfg, keep)
    p.save_settings(settings)
    for n in notes:
        note(n)
    differ = cfgmod.face_differences(settings.train)
    console.print(f"Imported {kohya_toml.name} into {p.config_path}", markup=False)
    console.print(("Differs from facelora's face defaults (change any with facelora config set):\n  "
                   + "\n  ".join(differ)) if differ else "Every parameter equals facelora's face defaults.",
                  markup=False)


@config_app.command("show")
@friendly
def config_show(
    project: Annotated[Path, typer.Argument(help="The project.")],
    changed: Annotated[bool, typer.Option("--changed", help="Only the parameters that differ from the face defaults.")] = False,
) -> None:
    """Print the project's trigger word and every training parameter as facelora.toml holds it,
    marking those that differ from the face defaults."""
    p = Project.open(project)
    settings = p.settings()
    console.print(f"{p.config_path}\n  trigger = {settings.trigger}\n  class_word = {settings.class_word or ''}")
    face = cfgmod.TrainConfig()
    for name in cfgmod.TrainConfig.model_fields:
        value, default = getattr(settings.train, name), getattr(face, name)
        if changed and value == default:
            continue
        console.print(f"  {name} = {value!r}" + ("" if value == default else f"   (face default {default!r})"),
                      markup=False)


@config_app.command("set", context_settings={"ignore_unknown_options": True})
@friendly
def config_set(
    project: Annotated[Path, typer.Argument(help="The project.")],
    key: Annotated[str, typer.Argument(help="A parameter in Kohya's spelling (network_dim, base_model...), or trigger.")],
    values: Annotated[list[str], typer.Argument(help="Its value (several for a list such as optimizer_args; none for 'none').")],
) -> None:
    """Save one parameter into facelora.toml, checked as training checks it."""
    p = Project.open(project)
    settings = p.settings()
    if key.lstrip("-") in ("trigger", "class_word"):
        raise cfgmod.ConfigError("The trigger word and class are the folder's name (image/<repeats>_<trigger> "
                                 "<class>); rename the folder and create the project again to change them.")
    updates = cfgmod.parse_overrides(["--" + key.lstrip("-"), *values])
    settings.train = cfgmod.apply(settings.train, updates)
    p.save_settings(settings)
    for name in updates:
        console.print(f"Saved {name} = {getattr(settings.train, name)!r} in {p.config_path}", markup=False)


@app.command()
def params(
    basic: Annotated[bool, typer.Option("--basic", help="Only the Basic parameters (the GUI's first tab).")] = False,
) -> None:
    """Every training parameter in Kohya's spelling, with its face default and one line of help.
    Give any of them to train, run or init as --name value; save them with facelora config set."""
    for name, (default, text, group) in cfgmod.config_fields("basic" if basic else None).items():
        shown = "none" if default is None else (" ".join(default) or "[]") if isinstance(default, list) else default
        console.print(f"--{name} {shown}\n    {text}" + ("" if group == "basic" or basic else "  (advanced)"),
                      markup=False)
