"""Folder and file pickers over the folders this GUI may use: a list of those folders, what is
inside the chosen one (folders first, then the files a field takes), and a button to use it. Every
listing goes through the workspace's path check, so a picker never shows or names anything outside
them (a link that leads out is not listed)."""

from __future__ import annotations

from typing import Any

import gradio as gr

from ..errors import FaceloraError
from .common import friendly
from .workspace import Workspace

UP = ".."


def listing(ws: Workspace, folder: str, suffixes: tuple[str, ...] | None = None) -> list[str]:
    """The entries of `folder` (a folder inside the roots): `..` unless it is a root, sub-folders
    as `name/`, then the files with one of `suffixes` (no files when None)."""
    path = ws.roots.resolve(folder)
    if not path.is_dir():
        raise FaceloraError("{folder} is not a folder.", folder=path)
    out = [] if path in ws.roots.all else [UP]
    dirs, files = [], []
    for entry in sorted(path.iterdir(), key=lambda e: e.name.lower()):
        if entry.name.startswith("."):
            continue
        try:
            ws.roots.resolve(str(entry))  # a link that leads outside the roots is not offered
        except FaceloraError:
            continue
        if entry.is_dir():
            dirs.append(entry.name + "/")
        elif suffixes is not None and entry.suffix.lower() in suffixes:
            files.append(entry.name)
    return out + dirs + files


def step(ws: Workspace, folder: str, entry: str) -> tuple[str, str | None]:
    """(the folder now shown, the file chosen or None) after choosing `entry` in `folder`."""
    here = ws.roots.resolve(folder)
    if entry == UP:
        parent = here.parent
        return (str(parent) if any(r == parent or r in parent.parents for r in ws.roots.all) else str(here)), None
    target = ws.roots.resolve(str(here / entry.rstrip("/")))
    return (str(target), None) if target.is_dir() else (str(here), str(target))


def _picker(ws: Workspace, target: gr.components.Component, prefix: str, suffixes: tuple[str, ...] | None) -> None:
    folders = [str(r) for r in ws.roots.all]
    with gr.Accordion("Browse the allowed folders", open=False, elem_id=f"{prefix}-browse") as box:
        with gr.Row(equal_height=True):
            where = gr.Dropdown(folders, value=folders[0], label="Folder", scale=3, allow_custom_value=True,
                                elem_id=f"{prefix}-where")
            inside = gr.Dropdown(listing_or_empty(ws, folders[0], suffixes), value=None, label="Inside it",
                                 scale=3, elem_id=f"{prefix}-inside")
            use = gr.Button("Use this folder", scale=1, size="sm", elem_id=f"{prefix}-use")
        message = gr.HTML(elem_id=f"{prefix}-pick-message")

    def choices(folder: str) -> list[str]:
        roots = [str(r) for r in ws.roots.all]
        return roots + ([folder] if folder not in roots else [])

    @friendly(outputs=3)
    def show(folder: str):
        return "", gr.update(choices=choices(folder), value=folder), gr.update(
            choices=listing(ws, folder, suffixes), value=None)

    @friendly(outputs=4)
    def choose(folder: str, entry: str | None):
        if not entry:
            return "", gr.skip(), gr.skip(), gr.skip()
        now, chosen = step(ws, folder, entry)
        return ("", gr.update(choices=choices(now), value=now),
                gr.update(choices=listing(ws, now, suffixes), value=None), chosen if chosen else gr.skip())

    @friendly(outputs=2)
    def use_folder(folder: str) -> Any:
        return "", str(ws.roots.resolve(folder))

    box.expand(show, [where], [message, where, inside], show_progress="hidden")
    where.input(show, [where], [message, where, inside], show_progress="hidden")
    inside.input(choose, [where, inside], [message, where, inside, target], show_progress="hidden")
    use.click(use_folder, [where], [message, target])


def listing_or_empty(ws: Workspace, folder: str, suffixes: tuple[str, ...] | None) -> list[str]:
    try:
        return listing(ws, folder, suffixes)
    except (FaceloraError, OSError):
        return []


def folder(ws: Workspace, target: gr.components.Component, prefix: str) -> None:
    """A folder picker that fills `target` ("Use this folder")."""
    _picker(ws, target, prefix, None)


def file(ws: Workspace, target: gr.components.Component, prefix: str, suffixes: tuple[str, ...]) -> None:
    """A file picker that fills `target` when a file with one of `suffixes` is chosen (a folder
    can be used too: a diffusers model is a folder)."""
    _picker(ws, target, prefix, tuple(s.lower() for s in suffixes))
