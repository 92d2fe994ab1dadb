"""The web GUI: one tab per step of the workflow, over the same functions the CLI calls. This
module puts the pages together and starts the server; the pages are in pages/."""

from __future__ import annotations

import os
import sys
from pathlib import Path

# No calls home: the GUI runs on machines without a network, and a person's photos are private.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import gradio as gr  # noqa: E402

from ..errors import FaceloraError  # noqa: E402
from ..prepare.images import MAX_FILE_BYTES  # noqa: E402
from . import common, language  # noqa: E402
from .common import CSS  # noqa: E402
from .i18n import LANGUAGES, T, set_language, tr  # noqa: E402
from .pages import evaluate, params, photos, project, train  # noqa: E402
from .settings import GuiSettings  # noqa: E402
from .workspace import Workspace  # noqa: E402

STORAGE_KEY = "facelora-project"
GRADIO_CACHE = ".facelora-gui-cache"


def build(ws: Workspace, initial: str = "") -> gr.Blocks:
    """The Blocks app. `initial` is the project opened on the command line (relative to the
    workspace); without one, the browser reopens the project it had open last time."""
    with gr.Blocks(title="facelora", analytics_enabled=False) as demo:
        with gr.Row(equal_height=True):
            gr.Markdown("# facelora\nA LoRA of one person for Stable Diffusion 1.5, Kohya-compatible: "
                        "**Project → Photos → Plan and parameters → Train → Evaluate**.", elem_id="fl-header")
            switch = language.radio()
        current = gr.State(initial)
        remembered = gr.BrowserState("", storage_key=STORAGE_KEY)
        heading = gr.Markdown(elem_id="current-project")
        with gr.Tabs():
            pages = [
                project.build(ws, current),
                photos.build(ws, current),
                params.build(ws, current),
                train.build(ws, current),
                evaluate.build(ws, current),
            ]

        def show(name: str) -> str:
            shown = ws.root.name if name == "." else name  # a GUI started on one project serves it as "."
            return T("**Open project:** `{name}`", name=shown) if name else tr("**No project open.**")

        outputs = [heading] + [c for page in pages for c in page.outputs]

        def refresh_all(name: str):
            values = [show(name)]
            for page in pages:
                got = page.refresh(name)
                values += list(got) if len(page.outputs) > 1 else [got]
            return values

        def restore(name: str, saved: str) -> str:
            """The command line's project, else the one this browser had open (if it still opens)."""
            for candidate in (name, saved):
                if candidate:
                    try:
                        return ws.name(ws.open(candidate))
                    except (FaceloraError, OSError):
                        continue
            return ""

        for page in pages:
            if page.tab is not None and page.on_select is not None:
                page.tab.select(page.on_select, [current, *page.select_inputs], page.select_outputs,
                                show_progress="hidden")

        demo.load(restore, [current, remembered], [current]).then(refresh_all, [current], outputs)
        current.change(refresh_all, [current], outputs).then(lambda n: n, [current], [remembered])
        language.wire(demo, switch, lambda code: save_language(ws, code)).then(refresh_all, [current], outputs)
    return demo


def save_language(ws: Workspace, code: str) -> None:
    """The language is the GUI's, kept in facelora-gui.toml for the next start."""
    settings = GuiSettings.read(ws.root)
    settings.language = code
    settings.write(ws.root)


def open_workspace(folder: Path, allow: list[Path], listen: bool) -> Workspace:
    """The workspace with the folders added from the page before (facelora-gui.toml), its
    language, and the log a bug's traceback goes to."""
    saved = GuiSettings.read(folder)
    ws = Workspace.of(folder, [*allow, *(Path(a) for a in saved.allow if Path(a).is_dir())], can_add=not listen)
    set_language(saved.language if saved.language in LANGUAGES else "en")
    common.BUG_LOG[0] = ws.root / "facelora-gui.log"
    return ws


def launch(project: Path | None, workspace: Path | None, allow: list[Path], port: int, listen: bool,
           auth: str | None, insecure_listen: bool = False) -> None:
    """Start the server (blocks until Ctrl-C). Binds 127.0.0.1 unless `listen`. It serves and
    touches only the project (or the workspace) and the `allow` folders: a project opened alone
    is its own workspace, never its parent folder."""
    if project is not None:
        project = project.resolve()
    ws = open_workspace(workspace or project or Path.cwd(), [*allow, *([project] if project and workspace else [])],
                        listen)
    initial = ws.name(ws.open(str(project))) if project else ""
    credentials = None
    if auth:
        user, sep, password = auth.partition(":")
        if not sep or not user or not password:
            raise FaceloraError("--auth must be USER:PASSWORD.")
        credentials = (user, password)
    if listen and not credentials and not insecure_listen:
        raise FaceloraError(
            "--listen without --auth would let anyone who can reach this machine read and write "
            "{roots} and run training there. Add --auth USER:PASSWORD, "
            "or --insecure-listen if this network is yours alone.", roots=", ".join(str(r) for r in ws.roots.all))
    if listen:
        print("warning: --listen serves this GUI to every machine that can reach this one"
              + ("" if credentials else ", with no password (--insecure-listen)")
              + f"; it can read and write files in {', '.join(str(r) for r in ws.roots.all)}.",
              file=sys.stderr)
    # gradio keeps uploads and the images it serves in its cache: inside the served folder too
    os.environ["GRADIO_TEMP_DIR"] = str(ws.root / GRADIO_CACHE)
    demo = build(ws, initial)
    demo.queue(default_concurrency_limit=4)
    demo.launch(
        server_name="0.0.0.0" if listen else "127.0.0.1",
        server_port=port,
        auth=credentials,
        # gradio serves files only from these folders (and its own upload cache)
        allowed_paths=ws.served,  # the same list: a folder added from the page is served at once
        max_file_size=MAX_FILE_BYTES,
        inbrowser=False,
        show_error=True,
        quiet=False,
        css=CSS,
        footer_links=[],
    )
