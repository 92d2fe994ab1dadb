"""Parameters given on the command line in Kohya's spelling, and applying updates to a config
with a clear error for a bad value."""

from __future__ import annotations

import difflib
import shlex
from typing import Any

from pydantic import ValidationError

from ..errors import ConfigError, Templated
from ..messages import Message, joined, said
from .fields import TrainConfig


ALIASES = {"base_model": "pretrained_model_name_or_path", "base-model": "pretrained_model_name_or_path"}
LIST_FIELDS = {n for n, f in TrainConfig.model_fields.items() if f.annotation == list[str]}


def _field_type_is_bool(name: str) -> bool:
    return TrainConfig.model_fields[name].annotation is bool


def parse_overrides(args: list[str]) -> dict[str, Any]:
    """`--network_dim 32 --optimizer_args "decouple=True" "weight_decay=0.01" --cache_latents`
    -> {'network_dim': '32', ...}. A bare boolean flag means True; list fields take every value
    up to the next option."""
    out: dict[str, Any] = {}
    i = 0
    while i < len(args):
        tok = args[i]
        if not tok.startswith("--"):
            raise ConfigError("Unexpected argument '{arg}'; parameters are given as --name value.", arg=tok)
        name, eq, inline = tok[2:].partition("=")
        name = ALIASES.get(name, name)
        if name not in TrainConfig.model_fields:
            dashed = name.replace("-", "_")
            if dashed in TrainConfig.model_fields:
                name = dashed
            else:
                raise ConfigError("Unknown parameter '--{name}'. {hint}", name=name, hint=_suggest(name))
        values = [inline] if eq else []
        i += 1
        while not eq and i < len(args) and not args[i].startswith("--"):
            values.append(args[i])
            i += 1
        if name in LIST_FIELDS:
            out[name] = [v for item in values for v in (shlex.split(item) if " " in item else [item])]
        elif not values and _field_type_is_bool(name):
            out[name] = True
        elif len(values) == 1:
            out[name] = None if values[0].lower() in ("none", "null") else values[0]
        else:
            raise ConfigError("--{name} takes one value, got {n}: {values}.", name=name, n=len(values),
                              values=" ".join(values) or "none")
    return out


def _suggest(name: str) -> str:
    close = difflib.get_close_matches(name, list(TrainConfig.model_fields), n=3)
    return f"Did you mean {', '.join('--' + c for c in close)}?" if close else "See 'facelora train --help'."


def apply(cfg: TrainConfig, updates: dict[str, Any]) -> TrainConfig:
    """A new config with `updates`, validated, with a clear error for a bad value."""
    try:
        return TrainConfig.model_validate({**cfg.model_dump(), **updates})
    except ValidationError as e:
        raise ConfigError("Invalid parameter(s): {problems}", problems=problems(e)) from None


def problems(e: ValidationError) -> Message:
    """Pydantic's errors as one line a person reads: field, problem, value given. A validator's
    own error keeps its template (the GUI says it in its language); pydantic's words stay as
    pydantic writes them."""
    found = []
    for err in e.errors():
        where, got = ".".join(str(p) for p in err["loc"]), repr(err.get("input"))
        error = (err.get("ctx") or {}).get("error")
        if isinstance(error, Templated) and err["msg"] == f"Value error, {error}":
            found.append(said("{where}: Value error, {error} (got {got})", where=where, error=error.said, got=got))
        else:
            found.append(said("{where}: {msg} (got {got})", where=where, msg=err["msg"], got=got))
    return joined(found)

