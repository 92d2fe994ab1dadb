"""Project: create a project (trigger word, class word) or open one in the workspace, and the
folders this GUI may use (add one here: photos, base models, another program's LoRA folder)."""

from __future__ import annotations

import html

import gradio as gr

from ...dataset import list_images
from ...errors import FaceloraError
from ...filenames import LORA_SUFFIX
from ...project import Project
from ... import locks
from .. import jobs
from ..common import Page, friendly, note, table
from ..i18n import T, error_message, tr
from ..workspace import RULE, Workspace


def summary(ws: Workspace, p: Project) -> str:
    s = p.settings()
    rows: list[tuple[str, object]] = [("folder", p.root), ("trigger word", s.trigger),
                                      ("class word", s.class_word or "-")]
    for folder, concept in p.concepts():
        rows.append(("training folder", T("{folder}: {n} images, {repeats} repeats",
                                          folder=folder.relative_to(p.root).as_posix(),
                                          n=len(list_images(folder)), repeats=concept.repeats)))
    models = sorted(x.name for x in p.models_dir.glob(f"*{LORA_SUFFIX}")) if p.models_dir.is_dir() else []
    rows.append(("LoRA files", "\n".join(models) or tr("none yet")))
    running = [k for k in locks.CONFLICTS if jobs.state(p, k).running]
    rows.append(("running", ", ".join(tr(k) for k in running) or tr("nothing")))
    return f"<h3>{html.escape(T('Project {name}', name=ws.name(p)))}</h3>" + table(rows)


def roots_html(ws: Workspace) -> str:
    items = "".join(f"<li><code>{html.escape(str(r))}</code></li>" for r in ws.roots.all)
    return f'<div id="allowed-roots"><ul>{items}</ul></div>' + note(RULE)


def build(ws: Workspace, current: gr.State) -> Page:
    with gr.Tab("Project", id="project") as tab:
        gr.Markdown("A project is one folder that holds everything for one person, laid out as in Kohya's "
                    "trainer: `image/<repeats>_<trigger>/`, `models/`, `log/`. New projects are made in the "
                    "workspace, the first of the folders below.")
        message = gr.HTML(elem_id="project-message")
        with gr.Row(equal_height=True):
            existing = gr.Dropdown(ws.projects(), label="Open a project", allow_custom_value=True, scale=4,
                                   elem_id="open-name")
            open_btn = gr.Button("Open", scale=1, elem_id="open-project")
        with gr.Group():
            with gr.Row():
                name = gr.Textbox(label="New project folder", placeholder="alice",
                                  info="A new folder inside the workspace; spaces and any language are fine.",
                                  elem_id="new-name")
                trigger = gr.Textbox(label="Trigger word", placeholder="ohwx",
                                     info="One rare word that will call up the person in a prompt.",
                                     elem_id="new-trigger")
                class_word = gr.Textbox(label="Class word", placeholder="woman",
                                        info="What the person is: woman, man, person (optional).",
                                        elem_id="new-class")
            create_btn = gr.Button("Create project", variant="primary", elem_id="create-project")
        info = gr.HTML(elem_id="project-summary")
        gr.Markdown("### Folders this GUI may use")
        roots = gr.HTML(roots_html(ws), elem_id="roots")
        with gr.Row(equal_height=True):
            new_root = gr.Textbox(label="Add a folder", scale=4, elem_id="add-root-path",
                                  placeholder="/home/me/photos",
                                  info="Its full path: a photos folder, a folder of base models, another "
                                       "program's LoRA folder. Kept in facelora-gui.toml for the next start.")
            add_btn = gr.Button("Add folder", scale=1, elem_id="add-root")

    @friendly(outputs=3)
    def create(n: str, t: str, c: str):
        p = ws.create(n, t, c)
        return "", ws.name(p), gr.update(choices=ws.projects(), value=ws.name(p))

    @friendly(outputs=2)
    def open_(n: str):
        return "", ws.name(ws.open(n))

    @friendly(outputs=3)
    def add(text: str):
        folder = ws.add_root(text)
        return note(T("Added {folder}: pages may now read and write inside it.", folder=folder), "ok"), \
            roots_html(ws), ""

    create_btn.click(create, [name, trigger, class_word], [message, current, existing])
    open_btn.click(open_, [existing], [message, current])
    add_btn.click(add, [new_root], [message, roots, new_root])

    def refresh(n: str):
        """The project list is read again (a page never offers a project of another workspace)."""
        listed = gr.update(choices=ws.projects(), value=n or None)
        if not n:
            return note("No project open yet: create one, or open one from the list."), listed, roots_html(ws)
        try:
            return summary(ws, ws.open(n)), listed, roots_html(ws)
        except (FaceloraError, OSError) as e:  # deleted or broken under the GUI: say so
            return note(error_message(e), "error"), listed, roots_html(ws)

    return Page(refresh, [info, existing, roots], tab, refresh, [], [info, existing, roots])
