"""facelora.toml: the person and the training parameters of a project."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import tomli_w
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import ConfigError
from ..fileio import atomic_write_text, read_text
from .fields import TrainConfig
from .overrides import explain



class ProjectSettings(BaseModel):
    """What facelora.toml holds: the person, and the training parameters."""

    model_config = ConfigDict(extra="forbid")
    trigger: str
    class_word: str | None = None
    train: TrainConfig = Field(default_factory=TrainConfig)


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: (_drop_none(v) if isinstance(v, dict) else v) for k, v in d.items() if v is not None}


def save_settings(path: Path, settings: ProjectSettings) -> None:
    data = settings.model_dump()
    project = {k: v for k, v in data.items() if k != "train"}
    text = "# facelora project settings; training parameters use Kohya's names.\n"
    text += tomli_w.dumps(_drop_none({"project": project, "train": data["train"]}))
    atomic_write_text(path, text)


def load_settings(path: Path) -> ProjectSettings:
    try:
        raw = tomllib.loads(read_text(path, "the project's settings"))
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path} is not valid TOML: {e}") from None
    try:
        return ProjectSettings.model_validate({**raw.get("project", {}), "train": raw.get("train", {})})
    except ValidationError as e:
        raise ConfigError(f"{path}: {explain(e)}") from None

