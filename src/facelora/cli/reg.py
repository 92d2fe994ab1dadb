"""`facelora reg generate`: class (regularisation) images drawn by the base model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..classimages import ClassImageOptions, generate_class_images
from ..project import Project
from .app import app, console, friendly

reg_app = typer.Typer(help="Class (regularisation) images: Kohya's reg_data_dir, for prior preservation.",
                      no_args_is_help=True)
app.add_typer(reg_app, name="reg")
_DEFAULT = ClassImageOptions()


@reg_app.command("generate")
@friendly
def generate(
    project: Annotated[Path, typer.Argument(help="The project.")],
    n: Annotated[int, typer.Option("-n", "--n", min=1, help="Images in the set (those already made count).")] = _DEFAULT.n,
    base_model: Annotated[Optional[str], typer.Option("--base-model", help="Base model; default: the project's.")] = None,
    steps: Annotated[int, typer.Option(min=1, help="Sampling steps per image.")] = _DEFAULT.steps,
    cfg: Annotated[float, typer.Option(help="Guidance scale.")] = _DEFAULT.cfg,
    seed: Annotated[int, typer.Option(help="Seed of the first image; image i uses seed + i.")] = _DEFAULT.seed,
    device: Annotated[str, typer.Option(help="auto, cuda, mps or cpu.")] = _DEFAULT.device,
    allow_pickle: Annotated[bool, typer.Option("--allow-pickle", help="Allow loading a .ckpt base model.")] = False,
) -> None:
    """Render N photos of the project's class ("photo of a woman", varied) with the base model into
    PROJECT/reg/1_<class>/, each with its prompt as caption, and set reg_data_dir to reg."""
    p = Project.open(project)
    options = ClassImageOptions(n=n, steps=steps, cfg=cfg, seed=seed, base_model=base_model, device=device,
                                allow_pickle=allow_pickle)
    paths = generate_class_images(p, options, progress=lambda k, total: console.print(f"class image {k}/{total}"))
    console.print(f"{len(paths)} class images in {paths[0].parent}; reg_data_dir = "
                  f"{p.settings().train.reg_data_dir} (prior_loss_weight {p.settings().train.prior_loss_weight:g}).")
