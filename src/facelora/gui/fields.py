"""The Parameters page is generated from TrainConfig's fields (one place for every parameter, its
default, its one-line help and its Basic/Advanced group), the Photos page's prepare form from
PrepareOptions' fields and the Evaluate page's grid form from GridOptions' (the CLI's options of
those steps): this module says which widget each field gets and converts values between the widget
and the model. It does not import gradio."""

from __future__ import annotations

import shlex
import types
import typing
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel

from ..config import TrainConfig, config_fields
from ..evaluate.gridplan import GridOptions
from ..model.family import SD15, TINY
from ..prepare.options import PrepareOptions
from ..prepare.upscale import UPSCALERS
from ..train.optim import OPTIMIZERS, SCHEDULERS

# Fields whose values are paths: the GUI checks them against the folders it may use (PROJECT_FOLDERS
# are inside the project).
OUTSIDE_FILES = ("pretrained_model_name_or_path", "network_weights", "sample_prompts")
MODEL = "pretrained_model_name_or_path"

CHOICES: dict[str, tuple[str, ...]] = {"optimizer_type": tuple(OPTIMIZERS), "lr_scheduler": tuple(SCHEDULERS)}

# Prepare's options: the ones most people touch are shown first; the thresholds are "advanced".
PREPARE_BASIC = ("resolution", "upscaler", "captioner", "tags", "overwrite_captions", "allow_multiple")
PREPARE_COMBOS = {"upscaler": tuple(UPSCALERS), "captioner": ("template",)}
GRID_BASIC = ("checkpoints", "weights", "prompt", "negative", "seeds", "steps", "size", "sampler", "cfg")


@dataclass(frozen=True)
class FieldSpec:
    name: str
    widget: str  # "checkbox" | "number" | "integer" | "dropdown" | "combo" | "text" | "list"
    default: Any
    help: str
    group: str  # "basic" | "advanced"
    optional: bool  # None is allowed (an empty widget means None)
    choices: tuple[str, ...] = ()  # a dropdown's values; a combo's suggestions (any text is taken)


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """(the type without None, whether None is allowed)."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return (args[0] if len(args) == 1 else annotation), len(args) < len(typing.get_args(annotation))
    return annotation, False


def _spec(name: str, annotation: Any, default: Any, help_: str, group: str,
          combos: dict[str, tuple[str, ...]]) -> FieldSpec:
    typ, optional = _unwrap(annotation)
    choices: tuple[Any, ...] = ()
    if name in combos:
        widget, choices = "combo", combos[name]
    elif name in CHOICES:
        widget, choices = "dropdown", CHOICES[name]
    elif typing.get_origin(typ) is Literal:
        widget, choices = "dropdown", tuple(typing.get_args(typ))
    elif typ is bool:
        widget = "checkbox"
    elif typ is int:
        widget = "integer"
    elif typ is float:
        widget = "number"
    elif typing.get_origin(typ) is list:
        widget = "list"
    else:
        widget = "text"
    return FieldSpec(name, widget, default, help_, group, optional, choices)


def field_specs(group: str | None = None) -> list[FieldSpec]:
    """Every TrainConfig field of `group` (or all), in the order they are declared."""
    return [_spec(name, TrainConfig.model_fields[name].annotation, default, help_, grp, {MODEL: (TINY,)})
            for name, (default, help_, grp) in config_fields(group).items()]


def model_specs(model: type[BaseModel], basic: tuple[str, ...], combos: dict[str, tuple[str, ...]]) -> list[FieldSpec]:
    """The fields of an options model (PrepareOptions, GridOptions: the CLI's options of a step),
    those in `basic` first in the page as "basic", the rest "advanced"."""
    out = []
    for name, f in model.model_fields.items():
        group = "basic" if name in basic else "advanced"
        out.append(_spec(name, f.annotation, f.get_default(call_default_factory=True), f.description or "",
                         group, combos))
    return out


def prepare_specs() -> list[FieldSpec]:
    return model_specs(PrepareOptions, PREPARE_BASIC, PREPARE_COMBOS)


def grid_specs() -> list[FieldSpec]:
    samplers = tuple(s.display for s in SD15.samplers.values())
    return model_specs(GridOptions, GRID_BASIC, {"sampler": samplers, "base_model": (TINY,)})


def to_widget(spec: FieldSpec, value: Any) -> Any:
    """A config value as its widget shows it."""
    if spec.widget == "list":
        return shlex.join(value or [])
    if value is None and spec.widget in ("text", "combo"):
        return ""
    return value


def from_widget(spec: FieldSpec, value: Any) -> Any:
    """A widget's value as the config takes it (pydantic validates it afterwards)."""
    if spec.widget == "list":
        try:
            return shlex.split(value or "")
        except ValueError:
            return [value]  # unbalanced quotes: let validation show the text as it is
    if isinstance(value, str):
        value = value.strip()
        if value == "" and spec.optional:
            return None
    if spec.widget == "integer" and isinstance(value, float) and value.is_integer():
        return int(value)
    if spec.widget in ("number", "integer") and value is None and not spec.optional:
        return spec.default
    return value
