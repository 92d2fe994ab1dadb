"""Evaluate: render the grid (saved files x LoRA weights), score how alike the faces are to the
training photos, see the best file and weight, and download the LoRA or install it into another
program's LoRA folder. The grid and the scoring run as their own processes (`facelora grid`,
`facelora score`), like training, so they survive a closed browser."""

from __future__ import annotations

import html
import shlex
from pathlib import Path
from typing import Any

import gradio as gr
from pydantic import ValidationError

from ...errors import FaceloraError
from ...evaluate import loras
from ...evaluate.gridplan import GridError, GridOptions
from ...evaluate.scoring import ScoreOptions
from ...messages import Message, said_as
from ...fileio import read_json
from ...filenames import LORA_SUFFIX
from ...project import Project
from .. import jobs
from .. import pickers
from ..common import Page, ticking, friendly, grid_table, note, num, widget
from ..i18n import T, said_in, tr
from ..fields import TINY, FieldSpec, from_widget, grid_specs
from ..workspace import Workspace

KINDS = ("grid", "score")


def _likeness(p: Project) -> dict[str, Any] | None:
    return read_json(p.likeness_json)


def _said(data: dict[str, Any], key: str) -> list[Message]:
    """likeness.json's `key` texts as messages (their templates beside them in `<key>_said`; a file
    written before the templates: its English)."""
    texts = data.get(key) or []
    texts = [texts] if isinstance(texts, str) else [str(t) for t in texts]
    saved = data.get(f"{key}_said") or []
    saved = [saved] if isinstance(saved, dict) else saved
    return said_as(texts, [Message(m.get("template", ""), m.get("values") or {}) for m in saved if isinstance(m, dict)])


def best_html(p: Project) -> str:
    """The best file and weight from likeness.json, with the scorer's verdict and warnings, in the
    page's language."""
    data = _likeness(p)
    if data is None:
        return note("Not scored yet: render the grid, then score it.")
    best, verdict = data.get("best"), "".join(said_in(m) for m in _said(data, "verdict"))
    if best:
        text = T("Most alike: {file} at weight {weight}.", file=f"<b>{html.escape(str(best.get('file')))}</b>",
                 weight=f"<b>{num(best.get('weight'))}</b>") + " " + html.escape(verdict)
        out = f'<div class="fl-note fl-ok" id="best-file">{text}</div>'
    else:
        out = note(verdict or tr("No generated image had a face, so there is no best file."), "warn")
    if data.get("rule"):
        out += note(T("Rule: {rule}", rule=tr(str(data["rule"]))))
    return out + "".join(note(w, "warn") for w in _said(data, "warnings"))


def lora_names(p: Project) -> list[str]:
    """The saved files in training order, as `<lora:NAME>` calls them."""
    cfg = p.train_config()
    return [f.name for f in loras.list_loras(Path(cfg.output_dir), cfg.output_name)] if Path(cfg.output_dir).is_dir() else []


def lora_path(p: Project, name: str) -> Path:
    source = Path(p.train_config().output_dir) / (Path(name or "").name + LORA_SUFFIX)
    if not name or not source.is_file():
        raise FaceloraError("Choose one of the project's LoRA files.")
    return source


def install(p: Project, ws: Workspace, name: str, dest: str, weight: float | None, overwrite: bool = False) -> Path:
    """Copy a LoRA file, with its preferred weight, into a folder the GUI was started with (e.g.
    A1111's models/Lora), as `facelora score --install-to` does."""
    if weight is None:
        raise FaceloraError("Give the weight the LoRA should be used at (the best weight, or 1.0).")
    folder = ws.roots.resolve(dest)
    return loras.install(lora_path(p, name), folder, float(weight), p.settings().trigger, overwrite)


def _grid_choices(ws: Workspace, specs: list[FieldSpec], values: list[Any]) -> dict[str, Any]:
    """The form's values as GridOptions takes them; a base model outside the allowed folders is refused."""
    chosen = {spec.name: from_widget(spec, v) for spec, v in zip(specs, values)}
    if chosen.get("base_model") and chosen["base_model"] != TINY:
        chosen["base_model"] = ws.outside_path(chosen["base_model"])
    probes = (chosen.get("z") or "").strip().lower() == "probes"  # the project's probes.toml: no values
    if not probes and bool(chosen.get("z")) != bool(chosen.get("z_values")):
        raise FaceloraError("The third axis needs both z (prompts, seeds, cfg, steps or probes) and z_values.")
    return chosen


def grid_options(ws: Workspace, specs: list[FieldSpec], values: list[Any]) -> GridOptions:
    """The grid job's options (it reads them from its options file)."""
    try:
        return GridOptions(**_grid_choices(ws, specs, values))
    except ValidationError as e:
        raise GridError("Grid settings: {problems}", problems="; ".join(f"{er['loc'][0]}: {er['msg']}"
                                                                    for er in e.errors())) from None


def grid_args(p: Project, ws: Workspace, specs: list[FieldSpec], values: list[Any]) -> list[str]:
    """`facelora grid PROJECT` with an option for every field changed from its default, as a person
    would type it (the third axis is `--z AXIS VALUES`): the page shows it, to repeat the grid at a
    terminal."""
    chosen = _grid_choices(ws, specs, values)
    defaults = {spec.name: spec.default for spec in specs}
    args = ["grid", str(p.root)]
    z, z_values = chosen.pop("z", None), chosen.pop("z_values", None)
    if z and z.strip().lower() == "probes":  # the project's probes.toml: no values to give
        args += ["--probes"]
    elif z and z_values:
        args += ["--z", z, z_values]
    for name, value in chosen.items():
        if value is None or value == defaults[name] or value is False:
            continue
        flag = "--" + name.replace("_", "-")
        args += [flag] if value is True else [flag, str(value)]
    return args


def job_status(job: jobs.JobState) -> str:
    """running, finished, failed, ended (a job another GUI started: its exit code is unknown) or none."""
    if job.running:
        return "running"
    if not job.command:
        return "none"
    return {None: "ended", 0: "finished"}.get(job.returncode, "failed")


JOB_TEXTS = {
    "grid": {"running": "The grid is running (process {pid}).", "finished": "The grid finished.",
             "failed": "The grid failed (exit code {code}); the log says why.", "ended": "The grid ended."},
    "score": {"running": "Scoring is running (process {pid}).", "finished": "Scoring finished.",
              "failed": "Scoring failed (exit code {code}); the log says why.", "ended": "Scoring ended."},
}


def job_html(job: jobs.JobState) -> str:
    status = job_status(job)
    template = JOB_TEXTS[job.kind].get(status)
    text = T(template, pid=job.pid, code=job.returncode) if template else ""
    kind = {"failed": "error", "finished": "ok"}.get(status, "info")
    return f'<div id="eval-state" data-kind="{job.kind}" data-status="{status}">{note(text, kind)}</div>'


SCORE_COLUMNS = ["LoRA file", "weight", "faces found", "mean distance", "match rate"]


def scores_html(p: Project) -> str:
    """likeness.json's groups (file x weight) as a table; lower distance = more alike."""
    groups = (_likeness(p) or {}).get("groups") or []
    rows = [[g.get("file") or g.get("label"), g.get("weight"), f"{g.get('faces')}/{g.get('images')}",
             "-" if g.get("mean_distance") is None else g["mean_distance"],
             f"{100 * (g.get('match_rate') or 0):.0f}%"] for g in groups]
    return grid_table(SCORE_COLUMNS, rows, "score-table") if rows else ""


def _options(ws: Workspace, specs: list[FieldSpec], group: str) -> dict[str, gr.components.Component]:
    """The grid form's fields of one group, in three columns."""
    out: dict[str, gr.components.Component] = {}
    with gr.Row():
        cols = [gr.Column(), gr.Column(), gr.Column()]
    for i, spec in enumerate(s for s in specs if s.group == group):
        with cols[i % 3]:
            out[spec.name] = widget(spec, "grid", ws.base_models() if spec.name == "base_model" else ())
    return out


def _layout(ws: Workspace, specs: list[FieldSpec]) -> dict[str, Any]:
    w: dict[str, Any] = {}
    gr.Markdown("The grid renders the same prompts and seeds with each saved LoRA file at several "
                "weights; scoring measures how alike each face is to the training photos (dlib's face "
                "descriptors; below 0.6 usually means the same person). Images of the tiny test "
                "model are noise, never results.")
    with gr.Group():
        w["options"] = _options(ws, specs, "basic")
    with gr.Accordion("More grid options", open=False, elem_id="grid-advanced"):
        w["options"].update(_options(ws, specs, "advanced"))
    with gr.Row():
        w["grid_btn"] = gr.Button("Render grid", variant="primary", elem_id="run-grid")
        w["score_btn"] = gr.Button("Score likeness", elem_id="run-score")
        w["stop_btn"] = gr.Button("Stop", variant="stop", elem_id="eval-stop")
    w["action"] = gr.HTML(elem_id="eval-action")
    w["state"] = gr.HTML(elem_id="eval-status")
    w["log"] = gr.Textbox(label="Log", lines=8, max_lines=8, autoscroll=True, interactive=False, elem_id="eval-log")
    w["best"] = gr.HTML(elem_id="eval-best")
    w["scores"] = gr.HTML(elem_id="eval-scores")
    with gr.Row():
        w["grid"] = gr.Image(label="Grid", type="filepath", interactive=False, elem_id="grid-image",
                             buttons=["fullscreen", "download"])
        w["heatmap"] = gr.Image(label="Likeness", type="filepath", interactive=False, elem_id="heatmap-image",
                                buttons=["fullscreen", "download"])
    gr.Markdown("### The LoRA file")
    with gr.Row(equal_height=True):
        w["chosen"] = gr.Dropdown([], label="LoRA file", elem_id="lora-file")
        w["weight"] = gr.Number(label="Weight", value=1.0, elem_id="lora-weight",
                                info="Recorded with the installed file (the best weight once scored).")
        w["download"] = gr.DownloadButton("Download", elem_id="lora-download")
    with gr.Row(equal_height=True):
        w["dest"] = gr.Textbox(label="Install into folder", scale=3, elem_id="install-dest",
                               info="Your program's LoRA folder (e.g. stable-diffusion-webui/models/Lora), "
                                    "one of the folders this GUI may use (add it on the Project page).")
        w["overwrite"] = gr.Checkbox(label="Replace a different file of that name", value=False, scale=1)
        w["install_btn"] = gr.Button("Install", scale=1, elem_id="lora-install")
    pickers.folder(ws, w["dest"], "install")
    return w


def build(ws: Workspace, current: gr.State) -> Page:
    specs = grid_specs()
    with gr.Tab("Evaluate", id="evaluate"):
        w = _layout(ws, specs)
        seen = gr.State(None)
        timer = gr.Timer(2.0)
    options, action = w["options"], w["action"]
    grid_specs_in_order = [next(s for s in specs if s.name == n) for n in options]
    _wire_jobs(ws, current, w, grid_specs_in_order)
    _wire_install(ws, current, w)

    @ticking(8)
    def values(project_name: str, last: Any):
        try:
            p = ws.open(project_name)
        except (FaceloraError, OSError):
            return last, "", "", None, None, "", "", gr.skip()
        states = [jobs.state(p, k, lines=8) for k in KINDS]
        running = [s for s in states if s.running]
        shown = running[0] if running else max(states, key=lambda s: s.started or 0)
        files = [p.grid_png, p.heatmap_png, p.likeness_json]
        stamp = tuple(f.stat().st_mtime if f.is_file() else 0 for f in files)
        names = lora_names(p)
        key = (str(p.root), stamp, tuple(names), shown.output[-200:], bool(running))
        if key == last:
            return (last,) + (gr.skip(),) * 7
        if last is not None and last[:3] == key[:3]:
            return (key, job_html(shown), shown.output) + (gr.skip(),) * 5
        best_file = ((_likeness(p) or {}).get("best") or {}).get("file")
        return (key, job_html(shown), shown.output,
                str(files[0]) if files[0].is_file() else None,
                str(files[1]) if files[1].is_file() else None,
                best_html(p), scores_html(p),
                gr.update(choices=names, value=best_file if best_file in names else None))

    outputs = [seen, w["state"], w["log"], w["grid"], w["heatmap"], w["best"], w["scores"], w["chosen"]]
    timer.tick(values, [current, seen], outputs, show_progress="hidden")

    def refresh(project_name: str):
        return values(project_name, None)[1:] + ("",)

    return Page(refresh, outputs[1:] + [action])


def _wire_jobs(ws: Workspace, current: gr.State, w: dict[str, Any], specs: list[FieldSpec]) -> None:
    """Render grid, Score likeness and Stop: each a job of its own."""

    @friendly()
    def run(project_name: str, kind: str, *values: Any) -> str:
        p = ws.open(project_name)  # a grid may run beside training: it draws the files saved so far
        if kind == "grid":
            options: GridOptions | ScoreOptions = grid_options(ws, specs, list(values))
            same = grid_args(p, ws, specs, list(values))
        else:
            options, same = ScoreOptions(), ["score", str(p.root)]
        job = jobs.start(p, kind, [kind, str(p.root)], options=options)
        return note(T("Grid started (process {pid}). At a terminal: {command}" if kind == "grid" else
                      "Scoring started (process {pid}). At a terminal: {command}", pid=job.pid,
                      command=shlex.join(["facelora", *same])), "ok")

    @friendly()
    def stop(project_name: str) -> str:
        p = ws.open(project_name)
        running = [k for k in KINDS if jobs.state(p, k).running]
        if not running:
            return note("Nothing is running.")
        for k in running:
            jobs.stop(p, k, wait_s=10)
        return note(T("Stopped: {jobs}.", jobs=", ".join(tr(k) for k in running)), "ok")

    w["grid_btn"].click(lambda n, *v: run(n, "grid", *v), [current, *w["options"].values()], [w["action"]])
    w["score_btn"].click(lambda n: run(n, "score"), [current], [w["action"]])
    w["stop_btn"].click(stop, [current], [w["action"]])


def _wire_install(ws: Workspace, current: gr.State, w: dict[str, Any]) -> None:
    """The LoRA file: choosing it fills Download and its best weight; Install copies it."""

    @friendly(outputs=3)
    def pick(project_name: str, name: str):
        if not name:
            return "", None, gr.skip()
        p = ws.open(project_name)
        best = (_likeness(p) or {}).get("best") or {}
        return "", str(lora_path(p, name)), best.get("weight") if best.get("file") == name else gr.skip()

    @friendly()
    def do_install(project_name: str, name: str, folder: str, weight: float | None, replace: bool) -> str:
        target = install(ws.open(project_name), ws, name, folder, weight, replace)
        return note(T("Installed {target} (weight {weight}).", target=target, weight=num(float(weight))), "ok")

    w["chosen"].change(pick, [current, w["chosen"]], [w["action"], w["download"], w["weight"]])
    w["install_btn"].click(do_install, [current, w["chosen"], w["dest"], w["weight"], w["overwrite"]], [w["action"]])
