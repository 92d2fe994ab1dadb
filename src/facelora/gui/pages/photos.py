"""Photos: upload photos (or name a folder of them), run prepare, look at the contact sheet with
the accepted and rejected photos and the reasons, and edit the captions in place."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr

from ... import locks
from ...dataset import IMAGE_EXTENSIONS, scan
from ...errors import FaceloraError
from ...fileio import atomic_write_text
from ...prepare.images import PHOTO_SUFFIXES
from ...prepare.pipeline import PrepareOptions, load_report, prepare
from ...project import Project

from ..common import Page, friendly, note, widget
from ..fields import PREPARE_COMBOS, from_widget, prepare_specs
from ...paths import inside
from ..uploads import accept_uploads, photos_dir
from ..workspace import Workspace

REPORT_COLUMNS = ["photo", "result", "reason"]
CAPTION_COLUMNS = ["image", "caption"]


def report_rows(p: Project) -> list[list[str]]:
    """One row per input photo: its name, accepted or rejected, and why (or its warnings)."""
    report = load_report(p)
    if report is None:
        return []
    rows = []
    for item in report.items:
        why = item.reason or "; ".join(item.warnings)
        rows.append([Path(item.source).name, item.status, why])
    return rows


def caption_rows(p: Project) -> list[list[str]]:
    cfg = p.train_config()
    try:
        data = scan(cfg.train_data_dir, cfg.caption_extension)
    except FaceloraError:
        return []
    return [[img.name, caption] for img, caption, _ in data.items()]


def save_captions(p: Project, rows: list[list[Any]]) -> int:
    """Write each row's caption beside its image (names checked to lie in the training folder)."""
    cfg = p.train_config()
    folder, _ = p.concept_dir()
    written = 0
    for row in rows:
        if len(row) < 2 or not str(row[0]).strip():
            continue
        image = inside(folder, str(row[0]).strip())
        if image.parent != folder or image.suffix.lower() not in IMAGE_EXTENSIONS or not image.is_file():
            raise FaceloraError(f"'{row[0]}' is not an image of {folder.name}; reload the page.")
        caption = " ".join(str(row[1] or "").split())
        path = image.with_suffix(cfg.caption_extension)
        old = path.read_text(encoding="utf-8") if path.is_file() else None
        if old is None or " ".join(old.split()) != caption:
            atomic_write_text(path, caption + "\n")
            written += 1
    return written


def _table_rows(value: Any) -> list[list[Any]]:
    """A Dataframe's value (pandas or lists) as rows."""
    if hasattr(value, "values") and hasattr(value, "columns"):
        return value.values.tolist()
    if isinstance(value, dict):
        return value.get("data", [])
    return list(value or [])


def build(ws: Workspace, current: gr.State) -> Page:
    with gr.Tab("Photos", id="photos"):
        gr.Markdown(
            "Upload 15-50 photos of the person (or name a folder of them), then **Prepare**: faces are "
            "found, cropped square around head and shoulders, upscaled where small, checked for blur, "
            "duplicates and other people, and captioned. Rejected photos are listed with the reason."
        )
        with gr.Row():
            upload = gr.File(label="Upload photos", file_count="multiple", file_types=list(PHOTO_SUFFIXES),
                             elem_id="photo-upload", scale=2)
            with gr.Column(scale=2):
                folder = gr.Textbox(label="…or a photos folder on this computer",
                                    info="Inside the workspace or a folder the GUI was started with "
                                         "(--allow). Empty: the project's photos/ folder (the uploads).",
                                    elem_id="photo-folder")
                prepare_btn = gr.Button("Prepare", variant="primary", elem_id="run-prepare")
        specs = prepare_specs()
        options: dict[str, gr.components.Component] = {}
        for group, title, open_ in (("basic", "Prepare options", False), ("advanced", "More prepare options", False)):
            with gr.Accordion(title, open=open_, elem_id=f"prepare-{group}"):
                with gr.Row():
                    cols = [gr.Column(), gr.Column(), gr.Column()]
                for i, spec in enumerate(s for s in specs if s.group == group):
                    with cols[i % 3]:
                        options[spec.name] = widget(spec, "prepare")
        status = gr.HTML(elem_id="photos-status")
        sheet = gr.Image(label="Contact sheet", type="filepath", interactive=False, elem_id="contact-sheet",
                         buttons=["fullscreen"])
        report = gr.Dataframe(headers=REPORT_COLUMNS, label="Photos: accepted and rejected", interactive=False,
                              wrap=True, elem_id="prepare-report")
        captions = gr.Dataframe(headers=CAPTION_COLUMNS, label="Captions (edit in place, then Save captions)",
                                interactive=True, static_columns=[0], wrap=True, elem_id="captions",
                                column_widths=["25%", "75%"])
        save_btn = gr.Button("Save captions", elem_id="save-captions")

    @friendly
    def uploaded(project_name: str, files: list[Any] | None) -> str:
        p = ws.open(project_name)
        if not files:
            return ""
        pairs = [(Path(f), Path(getattr(f, "orig_name", None) or f).name) for f in files]
        result = accept_uploads(p, pairs)
        msg = note(f"Kept {len(result.kept)} photo(s) in {ws.name(p)}/photos/; press Prepare.", "ok")
        for name, reason in result.refused:
            msg += note(f"Refused {name}: {reason}.", "error")
        return msg

    upload.upload(uploaded, [current, upload], [status])

    by_name = {spec.name: spec for spec in specs}
    option_names = list(options)

    @friendly
    def run_prepare(project_name: str, source: str, *values: Any, progress=gr.Progress()):
        p = ws.open(project_name)
        photos = ws.roots.resolve(source) if str(source or "").strip() else photos_dir(p)
        if not photos.is_dir():
            raise FaceloraError(f"{photos} is not a folder of photos: upload photos, or name a folder.")
        chosen = {n: from_widget(by_name[n], v) for n, v in zip(option_names, values)}
        for n, keywords in PREPARE_COMBOS.items():  # a model file or folder: checked like any path
            if chosen.get(n) and chosen[n] not in keywords:
                chosen[n] = ws.outside_path(chosen[n])
        try:
            opts = PrepareOptions(**chosen)
        except ValueError as e:
            raise FaceloraError(f"Prepare options: {e}") from None
        progress(0, desc="loading the face detector")
        with locks.running_here(p, "prepare", f"prepare {photos} (in the GUI)"):
            done = prepare(photos, p, opts, progress=lambda n, total, msg: progress((n, total), desc=msg))
        summary = (f"Prepared {len(done.items)} photo(s): {len(done.accepted)} accepted, "
                   f"{len(done.rejected)} rejected.")
        return (note(summary, "ok" if done.accepted else "warn"), *refresh_values(p))

    prepare_btn.click(run_prepare, [current, folder, *options.values()], [status, sheet, report, captions])

    @friendly
    def save(project_name: str, table_value: Any) -> str:
        p = ws.open(project_name)
        n = save_captions(p, _table_rows(table_value))
        return note(f"Saved {n} caption(s)." if n else "No caption changed.", "ok")

    save_btn.click(save, [current, captions], [status])

    def refresh_values(p: Project):
        sheet_path = p.contact_sheet
        return (str(sheet_path) if sheet_path.is_file() else None, report_rows(p) or None, caption_rows(p) or None)

    def refresh(project_name: str):
        try:
            p = ws.open(project_name)
        except (FaceloraError, OSError):
            return "", None, None, None
        return ("", *refresh_values(p))

    return Page(refresh, [status, sheet, report, captions])

