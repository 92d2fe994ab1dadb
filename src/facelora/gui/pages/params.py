"""Plan and parameters: the step plan, updated as the numbers change; the tutorial's presets; every
training parameter with its one-line help, Basic and Advanced as in Kohya's LoRA tab. The widgets
are generated from TrainConfig's fields (fields.py), so a new parameter appears here by itself."""

from __future__ import annotations

from typing import Any

import gradio as gr

from ... import config as cfgmod
from ...dataset import Dataset, scan
from ...errors import FaceloraError
from ...plan import Plan, plan_for, plan_numbers, tutorial_said
from ...project import Project
from ... import locks
from .. import jobs
from .. import pickers
from ...fileio import atomic_write_text
from ..common import Page, friendly, note, table, widget
from ..i18n import T, error_message, said_in, tr
from ...config import PROJECT_FOLDERS
from ..fields import MODEL, OUTSIDE_FILES, TINY, field_specs, from_widget, to_widget
from ..workspace import MODEL_SUFFIXES, Workspace

PRESET_TITLES = {
    "static": "Static learning rate: AdamW8bit, cosine with 3 restarts, UNet 1e-4, text encoder 5e-5",
    "dynamic": "Dynamic learning rate: DAdaptAdam finds the rate itself (all rates 1)",
    "dynamic-adafactor": "Dynamic, for smaller GPUs: Adafactor with relative steps (all rates 1)",
    "face": "Static, for the face: loss weighted to the head mask, a tenth of the photos held out, min-SNR 5",
}


def plan_rows(plan: Plan) -> list[tuple[str, Any]]:
    return [
        ("images", plan.images), ("repeats", plan.repeats), ("epochs", plan.epochs),
        ("batch size", plan.batch_size), ("images x repeats per epoch", plan.samples_per_epoch),
        ("steps per epoch", plan.steps_per_epoch), ("total steps", plan.total_steps),
        ("files saved", "\n".join(plan.saved_files)),
    ]


def _int(v: Any) -> int | None:
    return int(v) if v not in (None, "") else None


# the fields the plan follows, in make_project_plan's order after (folder repeats, images)
PLAN_FIELDS = ("max_train_epochs", "max_train_steps", "train_batch_size", "output_name", "save_every_n_epochs",
               "gradient_accumulation_steps", "save_last_n_epochs")


def make_project_plan(folder_repeats: int | None, images: Any, epochs: Any, steps: Any, batch: Any,
                      output_name: str, save_every: Any, accumulation: Any = 1, save_last_n: Any = None, *,
                      base: cfgmod.TrainConfig | None = None, dataset: Dataset | None = None) -> Plan:
    """The tutorial's plan (facelora.plan.plan_for, as `facelora plan`): with epochs set, repeats
    are solved from the step budget; without, the folder's repeats run until the steps. `base`:
    the project's other settings; `dataset`: its images (their buckets), used while the image
    count is theirs."""
    images, epochs, steps = _int(images), _int(epochs), _int(steps)
    if not images or not steps:
        raise ValueError("Give the number of images and max_train_steps to see the plan.")
    cfg = cfgmod.apply(base or cfgmod.TrainConfig(), {
        "max_train_epochs": epochs, "max_train_steps": steps, "train_batch_size": _int(batch) or 1,
        "output_name": output_name or "lora", "save_every_n_epochs": _int(save_every),
        "gradient_accumulation_steps": _int(accumulation) or 1, "save_last_n_epochs": _int(save_last_n)})
    counted = dataset if dataset is not None and dataset.num_images == images else images
    return plan_for(cfg, counted, budget=bool(epochs), repeats=None if epochs else folder_repeats or 1)


def build(ws: Workspace, current: gr.State) -> Page:
    specs = field_specs()
    tab, images, folder_repeats, plan_html, preset_btns, widgets, save_btn, status, prompts_box = _layout(ws, specs)
    names = [s.name for s in specs]
    by_name = {s.name: s for s in specs}
    plan_inputs = [current, folder_repeats, images] + [widgets[n] for n in PLAN_FIELDS]

    def show_plan(project_name: str, *values: Any) -> str:
        return plan_html_for(ws, project_name, *values)

    for c in plan_inputs[2:]:
        c.change(show_plan, plan_inputs, [plan_html], show_progress="hidden")

    def fill_preset(name: str):
        values = cfgmod.preset(name)
        return [gr.update(value=to_widget(by_name[n], values[n])) if n in values else gr.skip() for n in names]

    for name, btn in preset_btns.items():
        btn.click(lambda n=name: fill_preset(n), None, [widgets[n] for n in names])

    @friendly(outputs=3)
    def save(project_name: str, prompts: str, *values: Any):
        return save_params(ws, ws.open(project_name), specs, list(values), prompts)

    save_btn.click(save, [current, prompts_box] + [widgets[n] for n in names],
                   [status, folder_repeats, widgets["sample_prompts"]])

    def refresh(project_name: str):
        try:
            p = ws.open(project_name)
            cfg = p.settings().train
        except (FaceloraError, OSError):
            return [gr.skip()] * (len(names) + 3) + ["", gr.skip()]
        folder_r, count = _folder_numbers(p, cfg)
        values = [folder_r, count] + [to_widget(by_name[n], getattr(cfg, n)) for n in names]
        widget_values = dict(zip(names, values[2:]))
        plan = show_plan(project_name, folder_r, count, *(widget_values[n] for n in PLAN_FIELDS))
        return values + [plan, "", prompts_text(ws, cfg)]

    def numbers(project_name: str, *plan_values: Any):
        """On opening the tab: the image count and repeats (prepare may have changed them) and the
        plan; the parameter fields keep what the person typed."""
        try:
            p = ws.open(project_name)
            folder_r, count = _folder_numbers(p, p.train_config())
        except (FaceloraError, OSError):
            return gr.skip(), gr.skip(), gr.skip()
        return folder_r, count, show_plan(project_name, folder_r, count, *plan_values)

    return Page(refresh, [folder_repeats, images] + [widgets[n] for n in names] + [plan_html, status, prompts_box], tab,
                numbers, plan_inputs[3:], [folder_repeats, images, plan_html])


def save_params(ws: Workspace, p: Project, specs: list, values: list[Any], prompts: str = "") -> tuple[str, Any, str]:
    """Save the page's parameters in facelora.toml (paths checked, the folder renamed to the plan's
    repeats); typed sample prompts go to PROJECT/sample_prompts.txt, which sample_prompts then
    names. Returns (message, repeats now, sample_prompts)."""
    if jobs.state(p, "train").running:
        raise locks.JobError("Training is running: stop it before changing its parameters.")
    by_name = {s.name: s for s in specs}
    updates = {s.name: from_widget(s, v) for s, v in zip(specs, values)}
    if str(prompts or "").strip():
        atomic_write_text(p.sample_prompts, str(prompts).strip() + "\n")
        updates["sample_prompts"] = str(p.sample_prompts)
    for n in PROJECT_FOLDERS:
        ws.inside_project(p, updates[n] or ".")
    for n in OUTSIDE_FILES:
        if updates.get(n) and not (n == "pretrained_model_name_or_path" and updates[n] == TINY):
            updates[n] = ws.outside_path(updates[n])
    settings = p.settings()
    cfg = cfgmod.apply(settings.train, updates)
    _, notes = cfgmod.check(cfg, cuda=_cuda())
    messages = []
    _, images_now = _folder_numbers(p, cfg)
    if cfg.max_train_epochs and not images_now:
        messages.append(tr("No training images yet: save again after preparing photos to set the repeats."))
    elif cfg.max_train_epochs:
        plan = plan_for(cfg, _dataset(p, cfg) or images_now, budget=True)
        _, concept = p.concept_dir()
        if plan.repeats != concept.repeats:
            new = p.rename_repeats(plan.repeats)
            messages.append(T("Renamed the training folder to image/{folder} ({n} repeats).", folder=new.name,
                              n=plan.repeats))
    settings.train = cfg
    p.save_settings(settings)
    messages.insert(0, T("Saved in {file}.", file=p.config_path.name))
    done = note(" ".join(messages), "ok") + "".join(note(said_in(n), "warn") for n in notes)
    return done, _folder_numbers(p, cfg)[0], to_widget(by_name["sample_prompts"], cfg.sample_prompts)


def prompts_text(ws: Workspace, cfg: cfgmod.TrainConfig) -> str:
    """The sample prompts file's text for the box (empty when there is none, or it lies outside)."""
    if not cfg.sample_prompts:
        return ""
    try:
        path = ws.resolve(cfg.sample_prompts)
        return path.read_text(encoding="utf-8") if path.is_file() else ""
    except (FaceloraError, OSError, UnicodeDecodeError):
        return ""


def _layout(ws: Workspace, specs: list) -> tuple:
    """The tab's widgets: the plan (image count, repeats, table), the presets, every parameter
    (Basic and Advanced), the Save button and its status."""
    widgets: dict[str, gr.components.Component] = {}
    with gr.Tab("Plan and parameters", id="params") as tab:
        gr.Markdown("### Plan\nThe tutorial's sum: repeats = steps x batch / (images x epochs). "
                    "The plan follows `max_train_epochs`, `max_train_steps`, `train_batch_size`, "
                    "`gradient_accumulation_steps` and the saving settings below.")
        with gr.Row():
            images = gr.Number(label="images", precision=0, info="Training images (from the project; "
                               "change it to try other numbers).", elem_id="plan-images")
            folder_repeats = gr.Number(label="repeats now", precision=0, interactive=False,
                                       info="The number in the image/<repeats>_<trigger> folder name.")
        plan_html = gr.HTML(elem_id="plan-table")
        gr.Markdown("### Presets\nThe tutorial's two learning-rate schemes; a preset fills the fields, "
                    "**Save** keeps them.")
        with gr.Row():
            preset_btns = {name: gr.Button(title, size="sm", elem_id=f"preset-{name}")
                           for name, title in PRESET_TITLES.items() if name in cfgmod.PRESETS}
        for group, title, open_ in (("basic", "Basic", True), ("advanced", "Advanced", False)):
            with gr.Accordion(title, open=open_, elem_id=f"params-{group}"):
                with gr.Row():
                    cols = [gr.Column(), gr.Column()]
                group_specs = [s for s in specs if s.group == group]
                for i, spec in enumerate(group_specs):
                    with cols[i % 2]:
                        widgets[spec.name] = widget(spec, "param", [*ws.base_models()])
                        if spec.name == MODEL:
                            pickers.file(ws, widgets[spec.name], "model", MODEL_SUFFIXES)
                if group == "advanced":
                    prompts_box = gr.Textbox(label="Sample prompts", lines=4, elem_id="sample-prompts-text",
                                             placeholder="ohwx woman, portrait photo --n blurry --w 512 --h 512 --s 20",
                                             info="One prompt a line, in Kohya's syntax (--n negative, --w --h "
                                                  "--s steps --l cfg --d seed). Saved as sample_prompts.txt "
                                                  "in the project and used as sample_prompts.")
        with gr.Row():
            save_btn = gr.Button("Save parameters and plan", variant="primary", elem_id="save-params")
        status = gr.HTML(elem_id="params-status")

    return tab, images, folder_repeats, plan_html, preset_btns, widgets, save_btn, status, prompts_box


def plan_html_for(ws: Workspace, project_name: str, *values: Any) -> str:
    """The plan table for the plan fields' values (make_project_plan's order), over the
    project's other settings and its images."""
    try:
        p = ws.open(project_name)
        base = p.settings().train
        dataset = _dataset(p, base)
    except (FaceloraError, OSError):
        base, dataset = None, None
    try:
        plan = make_project_plan(*values, base=base, dataset=dataset)
    except (ValueError, FaceloraError) as e:
        return note(error_message(e), "warn")
    warnings = tutorial_said(**plan_numbers(plan))  # the tutorial's ranges, as `facelora plan` warns
    return table(plan_rows(plan)) + "".join(note(n) for n in plan.notes_said) + "".join(note(w, "warn") for w in warnings)


def _dataset(p: Project, cfg: cfgmod.TrainConfig) -> Dataset | None:
    """The project's training images, or None where the folder is not usable yet."""
    try:
        return scan(p.root / cfg.train_data_dir, cfg.caption_extension)
    except FaceloraError:
        return None


def _folder_numbers(p: Project, cfg: cfgmod.TrainConfig) -> tuple[int | None, int | None]:
    """(repeats in the folder name, images in it), or None where the folder is not usable yet."""
    if (data := _dataset(p, cfg)) is not None:
        return data.subsets[0].repeats, data.num_images
    try:
        return p.concept_dir()[1].repeats, 0
    except FaceloraError:
        return None, None


def _cuda() -> bool:
    """Whether training here would have CUDA (the 8-bit and fp16 notes depend on it)."""
    import torch

    return torch.cuda.is_available()
