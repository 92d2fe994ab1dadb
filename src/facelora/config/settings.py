"""facelora.toml: the person and the training parameters of a project."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, get_args

import tomli_w
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import ConfigError
from ..fileio import atomic_write_text, read_text
from .fields import TrainConfig
from .overrides import problems

class ProjectSettings(BaseModel):
    """What facelora.toml holds: the person, and the training parameters."""

    model_config = ConfigDict(extra="forbid")
    trigger: str
    class_word: str | None = None
    train: TrainConfig = Field(default_factory=TrainConfig)


# TOML has no null: a parameter set to None ("off", or "use learning_rate") is written as this word,
# so it does not come back as the default when the file is read again.
NONE = "none"


def _nullable(name: str) -> bool:
    f = TrainConfig.model_fields.get(name)
    return f is not None and type(None) in get_args(f.annotation)


def _to_toml(train: dict[str, Any]) -> dict[str, Any]:
    return {k: (NONE if v is None else v) for k, v in train.items() if v is not None or _nullable(k)}


def _from_toml(train: dict[str, Any]) -> dict[str, Any]:
    return {k: (None if v == NONE and _nullable(k) else v) for k, v in train.items()}


def save_settings(path: Path, settings: ProjectSettings) -> None:
    data = settings.model_dump()
    project = {k: v for k, v in data.items() if k != "train"}
    text = "# facelora project settings; training parameters use Kohya's names.\n"
    project = {k: v for k, v in project.items() if v is not None}
    text += tomli_w.dumps({"project": project, "train": _to_toml(data["train"])})
    atomic_write_text(path, text)


def load_settings(path: Path) -> ProjectSettings:
    try:
        raw = tomllib.loads(read_text(path, "the project's settings"))
    except tomllib.TOMLDecodeError as e:
        raise ConfigError("{path} is not valid TOML: {error}", path=path, error=e) from None
    try:
        return ProjectSettings.model_validate({**raw.get("project", {}), "train": _from_toml(raw.get("train", {}))})
    except ValidationError as e:
        raise ConfigError("{path}: Invalid parameter(s): {problems}", path=path, problems=problems(e)) from None

