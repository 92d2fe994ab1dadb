"""Photos: upload photos (or name a folder of them), run prepare, look at the contact sheet with
the accepted and rejected photos and the reasons, and edit the captions in place."""

from __future__ import annotations

import html
import urllib.parse
from pathlib import Path
from typing import Any

import gradio as gr

from ... import locks
from ...dataset import IMAGE_EXTENSIONS, scan
from ...errors import FaceloraError
from ...fileio import atomic_write_text
from ...prepare.images import PHOTO_SUFFIXES
from ...prepare.pipeline import PrepareOptions, load_report, prepare
from ...plan import trained_outside_tutorial
from ...project import Project

from .. import pickers
from ..common import Page, friendly, note, widget
from ..i18n import T, language, said_in, tr
from ..fields import PREPARE_COMBOS, from_widget, prepare_specs
from ...paths import inside
from ..uploads import accept_uploads, photos_dir
from ..workspace import Workspace

REPORT_COLUMNS = ["photo", "result", "reason"]
CAPTION_COLUMNS = ["photo", "image", "caption"]  # thumbnail, file name, caption (the one editable column)
THUMB_PX = 72


def report_rows(p: Project) -> list[list[str]]:
    """One row per input photo: its name, accepted or rejected, and why (or its warnings), in the
    page's language."""
    report = load_report(p)
    if report is None:
        return []
    rows = []
    for item in report.items:
        why = "; ".join(said_in(m) for m in item.said())
        rows.append([Path(item.source).name, tr(item.status), why])
    return rows


def set_notes(p: Project) -> str:
    """What the last prepare said of the whole set (its pose coverage, the training resolution)
    and where the plan these photos would train lies outside the tutorial's ranges (photos,
    repeats, epochs, total steps, as `facelora prepare` warns), in the page's language."""
    report = load_report(p)
    if report is None:
        return ""
    warned = report.warnings_said() + trained_outside_tutorial(p.train_config())
    resolution = report.resolution_message()
    return "".join(note(m, "warn") for m in warned) + (note(resolution) if resolution else "")


def framed(headers: list[str], rows: list[list[Any]]) -> dict[str, Any]:
    """A table's value with its column names in the page's language."""
    return {"headers": [tr(h) for h in headers], "data": rows}


def thumbnail(image: Path) -> str:
    """An <img> of a training image, served by gradio's file route (the project is an allowed path)."""
    src = "/gradio_api/file=" + urllib.parse.quote(str(image.resolve()))
    return f'<img src="{src}" alt="{html.escape(image.name)}" style="height:{THUMB_PX}px;border-radius:4px">'


def caption_rows(p: Project) -> list[list[str]]:
    """Thumbnail, name and caption of each training image."""
    cfg = p.train_config()
    try:
        data = scan(cfg.train_data_dir, cfg.caption_extension)
    except FaceloraError:
        return []
    return [[thumbnail(img), img.name, caption] for img, caption, _ in data.items()]


def save_captions(p: Project, rows: list[list[Any]]) -> int:
    """Write each row's caption beside its image (names checked to lie in the training folder).
    A row is (name, caption), or (thumbnail, name, caption) as the page's table holds it."""
    cfg = p.train_config()
    folder, _ = p.concept_dir()
    written = 0
    for row in rows:
        row = list(row)[-2:]
        if len(row) < 2 or not str(row[0]).strip():
            continue
        image = inside(folder, str(row[0]).strip())
        if image.parent != folder or image.suffix.lower() not in IMAGE_EXTENSIONS or not image.is_file():
            raise FaceloraError("'{name}' is not an image of {folder}; reload the page.", name=row[0],
                                folder=folder.name)
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


def _layout(ws: Workspace) -> dict[str, Any]:
    w: dict[str, Any] = {}
    gr.Markdown("Upload 15-50 photos of the person (or name a folder of them), then **Prepare**: faces are "
                "found, cropped square around head and shoulders, upscaled where small, checked for blur, "
                "duplicates and other people, and captioned. Rejected photos are listed with the reason.")
    with gr.Row():
        w["upload"] = gr.File(label="Upload photos", file_count="multiple", file_types=list(PHOTO_SUFFIXES),
                              elem_id="photo-upload", scale=2)
        with gr.Column(scale=2):
            w["folder"] = gr.Textbox(label="…or a photos folder on this computer", elem_id="photo-folder",
                                     info="Inside one of the folders this GUI may use (add one on the Project "
                                          "page). Empty: the project's photos/ folder (the uploads).")
            pickers.folder(ws, w["folder"], "photos")
            w["prepare"] = gr.Button("Prepare", variant="primary", elem_id="run-prepare")
    w["options"] = {}
    for group, title in (("basic", "Prepare options"), ("advanced", "More prepare options")):
        with gr.Accordion(title, open=False, elem_id=f"prepare-{group}"):
            with gr.Row():
                cols = [gr.Column(), gr.Column(), gr.Column()]
            for i, spec in enumerate(s for s in prepare_specs() if s.group == group):
                with cols[i % 3]:
                    w["options"][spec.name] = widget(spec, "prepare")
    w["status"] = gr.HTML(elem_id="photos-status")
    w["notes"] = gr.HTML(elem_id="prepare-notes")  # what the last prepare said of the whole set
    w["sheet"] = gr.Image(label="Contact sheet", type="filepath", interactive=False, elem_id="contact-sheet",
                          buttons=["fullscreen"])
    w["report"] = gr.Dataframe(headers=REPORT_COLUMNS, label="Photos: accepted and rejected", interactive=False,
                               wrap=True, elem_id="prepare-report")
    w["captions"] = gr.Dataframe(headers=CAPTION_COLUMNS, label="Captions (edit in place, then Save captions)",
                                 datatype=["html", "str", "str"], interactive=True, static_columns=[0, 1],
                                 wrap=True, elem_id="captions", column_widths=["12%", "18%", "70%"])
    w["save"] = gr.Button("Save captions", elem_id="save-captions")
    return w


def build(ws: Workspace, current: gr.State) -> Page:
    by_name = {spec.name: spec for spec in prepare_specs()}
    with gr.Tab("Photos", id="photos"):
        w = _layout(ws)
    option_names = list(w["options"])
    status, sheet, report, captions = w["status"], w["sheet"], w["report"], w["captions"]
    shown = [w["notes"], sheet, report, captions]  # what the last prepare left, refreshed with the project

    @friendly()
    def uploaded(project_name: str, files: list[Any] | None) -> str:
        p = ws.open(project_name)
        if not files:
            return ""
        pairs = [(Path(f), Path(getattr(f, "orig_name", None) or f).name) for f in files]
        result = accept_uploads(p, pairs)
        msg = note(T("Kept {n} photo(s) in {folder}/photos/; press Prepare.", n=len(result.kept), folder=ws.name(p)),
                   "ok")
        for name, reason in result.refused:
            msg += note(T("Refused {name}: {reason}.", name=name, reason=reason), "error")
        return msg

    @friendly(outputs=5)
    def run_prepare(project_name: str, source: str, *values: Any, progress=gr.Progress()):
        p = ws.open(project_name)
        photos = ws.resolve(source) if str(source or "").strip() else photos_dir(p)
        if not photos.is_dir():
            raise FaceloraError("{path} is not a folder of photos: upload photos, or name a folder.", path=photos)
        chosen = {n: from_widget(by_name[n], v) for n, v in zip(option_names, values)}
        for n, keywords in PREPARE_COMBOS.items():  # a model file or folder: checked like any path
            if chosen.get(n) and chosen[n] not in keywords:
                chosen[n] = ws.outside_path(chosen[n])
        try:
            opts = PrepareOptions(**chosen)
        except ValueError as e:
            raise FaceloraError("Prepare options: {error}", error=e) from None
        shown = (lambda msg: msg) if language() == "en" else (lambda msg: tr("preparing the photos"))
        progress(0, desc=tr("loading the face detector"))
        with locks.running_here(p, "prepare", f"prepare {photos} (in the GUI)"):
            # each photo's English line is the terminal's; the page says its own words
            done = prepare(photos, p, opts, progress=lambda n, total, msg: progress((n, total), desc=shown(msg)))
        summary = T("Prepared {n} photo(s): {ok} accepted, {bad} rejected.", n=len(done.items),
                    ok=len(done.accepted), bad=len(done.rejected))
        return (note(summary, "ok" if done.accepted else "warn"), *refresh_values(p))

    @friendly()
    def save(project_name: str, table_value: Any) -> str:
        n = save_captions(ws.open(project_name), _table_rows(table_value))
        return note(T("Saved {n} caption(s).", n=n) if n else tr("No caption changed."), "ok")

    w["upload"].upload(uploaded, [current, w["upload"]], [status])
    w["prepare"].click(run_prepare, [current, w["folder"], *w["options"].values()], [status, *shown])
    w["save"].click(save, [current, captions], [status])

    def refresh_values(p: Project):
        sheet_path = p.contact_sheet
        return (set_notes(p), str(sheet_path) if sheet_path.is_file() else None,
                framed(REPORT_COLUMNS, report_rows(p)), framed(CAPTION_COLUMNS, caption_rows(p)))

    def refresh(project_name: str):
        try:
            p = ws.open(project_name)
        except (FaceloraError, OSError):
            return "", "", None, framed(REPORT_COLUMNS, []), framed(CAPTION_COLUMNS, [])
        return ("", *refresh_values(p))

    return Page(refresh, [status, *shown])
