"""Project: create a project (trigger word, class word) or open one in the workspace."""

from __future__ import annotations

import gradio as gr

from ...dataset import list_images
from ...errors import FaceloraError
from ...project import LORA_SUFFIX, Project
from ... import locks
from .. import jobs
from ..common import Page, friendly, note, table
from ..workspace import Workspace


def summary(ws: Workspace, p: Project) -> str:
    s = p.settings()
    rows: list[tuple[str, object]] = [("folder", p.root), ("trigger word", s.trigger),
                                      ("class word", s.class_word or "-")]
    for folder, concept in p.concepts():
        rows.append(("training folder", f"{folder.relative_to(p.root).as_posix()}: {len(list_images(folder))} images, "
                                        f"{concept.repeats} repeats"))
    models = sorted(x.name for x in p.models_dir.glob(f"*{LORA_SUFFIX}")) if p.models_dir.is_dir() else []
    rows.append(("LoRA files", "\n".join(models) or "none yet"))
    running = [k for k in locks.CONFLICTS if jobs.state(p, k).running]
    rows.append(("running", ", ".join(running) or "nothing"))
    return f"<h3>Project {ws.name(p)}</h3>" + table(rows)


def build(ws: Workspace, current: gr.State) -> Page:
    with gr.Tab("Project", id="project") as tab:
        gr.Markdown(
            "A project is one folder that holds everything for one person, laid out as in Kohya's "
            f"trainer: `image/<repeats>_<trigger>/`, `models/`, `log/`. Projects live in `{ws.root}`."
        )
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

    @friendly
    def create(n: str, t: str, c: str):
        p = ws.create(n, t, c)
        return ws.name(p), gr.update(choices=ws.projects(), value=ws.name(p))

    @friendly
    def open_(n: str):
        p = ws.open(n)
        return ws.name(p)

    create_btn.click(create, [name, trigger, class_word], [current, existing])
    open_btn.click(open_, [existing], [current])

    def refresh(n: str):
        if not n:
            return note("No project open yet: create one, or open one from the list.")
        try:
            return summary(ws, ws.open(n))
        except (FaceloraError, OSError) as e:  # deleted or broken under the GUI: say so
            return note(str(e), "error")

    return Page(refresh, [info], tab, refresh, [], [info])
