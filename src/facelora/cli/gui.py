"""`facelora gui`: the web interface."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import FaceloraError
from .app import app, friendly


@app.command()
@friendly
def gui(
    project: Annotated[Optional[Path], typer.Argument(help="A project to open.")] = None,
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port of the web page.")] = 7860,
    workspace: Annotated[Optional[Path], typer.Option(
        help="Folder where projects are created and opened (default: PROJECT alone, else here).")] = None,
    allow: Annotated[Optional[list[Path]], typer.Option(
        help="Another folder the page may use: photos, base models, a LoRA folder to install into.")] = None,
    listen: Annotated[bool, typer.Option(help="Serve to other machines (0.0.0.0) instead of this one only.")] = False,
    auth: Annotated[Optional[str], typer.Option(help="USER:PASSWORD the page asks for (needed with --listen).")] = None,
    insecure_listen: Annotated[bool, typer.Option(
        "--insecure-listen", help="With --listen: serve without a password (only on a network that is yours alone).")] = False,
) -> None:
    """Open the web interface: the whole workflow in a browser, over the same functions as these
    commands. It serves http://127.0.0.1:PORT to this machine only unless --listen is given, and
    only the files inside PROJECT (or --workspace) and the --allow folders."""
    import importlib.util

    if importlib.util.find_spec("gradio") is None:
        raise FaceloraError("The web interface needs gradio: pip install 'facelora[gui]'")
    from ..gui.app import launch

    for folder in [workspace, *(allow or [])]:
        if folder is not None and not folder.is_dir():
            raise FaceloraError(f"'{folder}' is not a folder.")
    launch(project, workspace, list(allow or []), port, listen, auth, insecure_listen)
