"""What every page shares: errors shown as the CLI shows them (a message in the page that says
what to do, no traceback), numbers written short, and small HTML helpers."""

from __future__ import annotations

import functools
import html
import math
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, Callable

import gradio as gr

from ..errors import FaceloraError
from ..messages import Message
from .fields import FieldSpec, to_widget
from .i18n import T, error_message, label_of, said_in, tr

# Where a real bug's traceback is written (app.launch points it at the workspace).
BUG_LOG = [Path(tempfile.gettempdir()) / "facelora-gui.log"]


def log_bug(e: BaseException) -> Path:
    """A traceback for a bug (not for a refused click): on the terminal and in the GUI's log."""
    text = "".join(traceback.format_exception(e))
    path = BUG_LOG[0]
    try:
        with path.open("a", encoding="utf-8") as f:
            f.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')}\n{text}")
    except OSError:
        pass
    print(f"facelora gui: unexpected error (also in {path}):\n{text}", file=sys.stderr, flush=True)
    return path


def friendly(outputs: int = 1) -> Callable[[Callable], Callable]:
    """A handler whose first output is a message line. A FaceloraError (or a ValueError from the
    step maths) becomes that message and the other outputs stay as they were; any other
    exception is a bug: its traceback goes to the terminal and the log, and the page says where."""

    def wrap(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except (FaceloraError, ValueError) as e:
                message = note(error_message(e), "error")
            except Exception as e:  # noqa: BLE001 - shown to the person, logged in full
                path = log_bug(e)
                message = note(T("Unexpected error: {error}. The traceback is in {path}; please report it.",
                                 error=f"{type(e).__name__}: {e}", path=path), "error")
            return message if outputs == 1 else (message, *[gr.skip()] * (outputs - 1))

        return wrapper

    return wrap


def ticking(outputs: int) -> Callable[[Callable], Callable]:
    """A timer's handler (it runs every second or two): a bug is logged once, not every tick, and
    the page keeps what it shows."""
    seen: set[str] = set()

    def wrap(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except Exception as e:  # noqa: BLE001 - logged with its traceback
                if repr(e) not in seen:
                    seen.add(repr(e))
                    log_bug(e)
                return tuple(gr.skip() for _ in range(outputs))

        return wrapper

    return wrap


def num(value: Any) -> str:
    """A number as a person reads it: 3 significant digits for floats (3.8e-07, 0.000123, 1.5),
    integers as they are."""
    if isinstance(value, bool) or not isinstance(value, float):
        return str(value)
    if math.isnan(value) or math.isinf(value):
        return str(value)
    return f"{value:.3g}" if value != int(value) or abs(value) >= 1e6 else str(int(value))


def note(text: str | Message, kind: str = "info") -> str:
    """A coloured message line (kind: info, ok, warn, error) in the page's language: a fixed text
    translated, a message (template and values) said in it."""
    shown = said_in(text) if isinstance(text, Message) else tr(text)
    return f'<div class="fl-note fl-{kind}">{html.escape(shown)}</div>' if shown else ""


def table(rows: list[tuple[Any, Any]], cls: str = "fl-table") -> str:
    body = "".join(f"<tr><th>{html.escape(tr(str(k)))}</th><td>{html.escape(num(v))}</td></tr>" for k, v in rows)
    return f'<table class="{cls}">{body}</table>'


def grid_table(headers: list[str], rows: list[list[Any]], elem_id: str = "") -> str:
    """A table with a header row; numbers written short."""
    head = "".join(f"<th>{html.escape(tr(h))}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(num(v))}</td>" for v in row) + "</tr>" for row in rows)
    ident = f' id="{elem_id}"' if elem_id else ""
    return f'<table class="fl-table"{ident}><tr>{head}</tr>{body}</table>'


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def widget(spec: FieldSpec, prefix: str, more_choices: list[str] | tuple = ()) -> gr.components.Component:
    """The widget of one generated field, labelled with plain words and its Kohya name and explained
    by its help; elem_id `<prefix>-<name>`. A combo offers its suggestions (and `more_choices`)
    but takes any text."""
    common: dict[str, Any] = dict(label=label_of(spec.name), info=spec.help or None, elem_id=f"{prefix}-{spec.name}")
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
#train-log textarea,#eval-log textarea,#train-command textarea{font-family:ui-monospace,Menlo,Consolas,monospace;
  font-size:12px}
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
