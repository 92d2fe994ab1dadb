"""What every page shares: errors shown as the CLI shows them (the message says what to do, no
traceback), and small HTML helpers."""

from __future__ import annotations

import functools
import html
from typing import Any, Callable

import gradio as gr

from ..errors import FaceloraError
from .fields import FieldSpec, to_widget


def friendly(fn: Callable) -> Callable:
    """A FaceloraError (and a plain ValueError from the step maths) becomes a message in the page."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (FaceloraError, ValueError) as e:
            raise gr.Error(str(e), duration=None, title="facelora") from None

    return wrapper


def note(text: str, kind: str = "info") -> str:
    """A coloured message line (kind: info, ok, warn, error)."""
    return f'<div class="fl-note fl-{kind}">{html.escape(text)}</div>' if text else ""


def table(rows: list[tuple[Any, Any]], cls: str = "fl-table") -> str:
    body = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in rows)
    return f'<table class="{cls}">{body}</table>'


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def widget(spec: FieldSpec, prefix: str, more_choices: list[str] | tuple = ()) -> gr.components.Component:
    """The widget of one generated field, labelled with its name and explained by its help;
    elem_id `<prefix>-<name>`. A combo offers its suggestions (and `more_choices`) but takes any text."""
    common: dict[str, Any] = dict(label=spec.name, info=spec.help or None, elem_id=f"{prefix}-{spec.name}")
    value = to_widget(spec, spec.default)
    if spec.widget == "checkbox":
        return gr.Checkbox(value=value, **common)
    if spec.widget in ("number", "integer"):
        return gr.Number(value=value, precision=0 if spec.widget == "integer" else None, **common)
    if spec.widget == "dropdown":
        return gr.Dropdown(list(spec.choices), value=value, **common)
    if spec.widget == "combo":
        return gr.Dropdown([*spec.choices, *more_choices], value=value or None, allow_custom_value=True, **common)
    return gr.Textbox(value=value, **common)


CSS = """
.fl-note{padding:.5em .8em;border-radius:6px;margin:.3em 0;border:1px solid}
.fl-info{background:#eef4fb;border-color:#a8c4e6} .fl-ok{background:#eef8ee;border-color:#9c9}
.fl-warn{background:#fff6e0;border-color:#e8c56b} .fl-error{background:#fdecec;border-color:#e59a9a}
.fl-table{border-collapse:collapse;margin:.3em 0} .fl-table th,.fl-table td{text-align:left;
  padding:.2em .9em;border-bottom:1px solid #e5e5e5;vertical-align:top;white-space:pre-line}
.fl-table th{font-weight:600}
.fl-bar{height:14px;background:#e6e6e6;border-radius:7px;overflow:hidden;margin:.4em 0}
.fl-bar>div{height:100%;background:#4a8fd8}
#fl-header{margin-bottom:0}
#loss-chart{overflow:visible;padding-bottom:3em}
#train-log textarea,#eval-log textarea{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px}
"""


class Page:
    """A tab's `refresh(project_name) -> values for outputs`, called when the project changes, and
    optionally a lighter `on_select` for when the tab is opened (what other tabs may have changed,
    never the fields a person may be editing)."""

    def __init__(self, refresh: Callable[[str], Any], outputs: list[Any], tab: Any = None,
                 on_select: Callable[..., Any] | None = None, select_inputs: list[Any] | None = None,
                 select_outputs: list[Any] | None = None):
        self.refresh = refresh
        self.outputs = outputs
        self.tab = tab
        self.on_select = on_select  # called with the project name, then the select_inputs' values
        self.select_inputs = select_inputs or []
        self.select_outputs = select_outputs or []
