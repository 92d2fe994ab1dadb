"""The project folder, laid out as Kohya's trainer expects it.

    PROJECT/
      facelora.toml                 the project's settings (trigger word, training parameters)
      image/<repeats>_<trigger>[ <class>]/   training images and same-stem captions
      models/                       LoRA files (and sample/ images)
      log/                          TensorBoard events, events.jsonl, state/ for resume
      eval/                         grid, cells, likeness scores

This module owns the folder names, the `<repeats>_<trigger>` convention and the LoRA file names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .errors import FaceloraError
from .config import PROJECT_FOLDERS, ProjectSettings, TrainConfig, load_settings, save_settings
from .paths import check_name, check_output_name, inside

CONFIG_FILE = "facelora.toml"
IMAGE_DIR = "image"
MODELS_DIR = "models"
LOG_DIR = "log"
EVAL_DIR = "eval"
STATE_DIR = "state"
PREPARE_REPORT = "prepare-report.json"

_CONCEPT = re.compile(r"^(\d+)_(.+)$")
_TRIGGER = re.compile(r"^[^\s/\\]+$")


class ProjectError(FaceloraError, ValueError):
    """A project folder that is missing, malformed or would be overwritten."""


@dataclass(frozen=True)
class Concept:
    """One `<repeats>_<trigger>[ <class>]` folder."""

    repeats: int
    trigger: str
    class_word: str | None = None

    @property
    def folder_name(self) -> str:
        return f"{self.repeats}_{self.trigger}" + (f" {self.class_word}" if self.class_word else "")

    @property
    def words(self) -> str:
        """The caption Kohya uses for an image without a caption file."""
        return self.trigger + (f" {self.class_word}" if self.class_word else "")

    @classmethod
    def parse(cls, folder_name: str) -> "Concept":
        m = _CONCEPT.match(folder_name)
        if not m:
            raise ProjectError(
                f"Folder '{folder_name}' has no '<repeats>_' prefix. Kohya's layout needs the "
                f"number of repeats first, e.g. '15_{folder_name}'. Rename it, or run "
                f"'facelora plan PROJECT --yes' to name it from the plan."
            )
        repeats = int(m.group(1))
        if repeats < 1:
            raise ProjectError(f"Folder '{folder_name}': repeats must be at least 1.")
        rest = m.group(2).strip()
        trigger, _, class_word = rest.partition(" ")
        return cls(repeats, trigger, class_word.strip() or None)


def check_trigger(trigger: str) -> str:
    if not trigger or not _TRIGGER.match(trigger):
        raise ProjectError(
            f"Trigger word {trigger!r} must be one word without spaces or slashes (e.g. 'ohwx' or "
            f"'ScarlettJohansson'); it names the folder and starts every caption."
        )
    check_name(trigger, "The trigger word")
    return trigger


def lora_filename(output_name: str, epoch: int | None = None, step: int | None = None) -> str:
    """Kohya's names: `<name>-000001.safetensors` per epoch, `<name>-step00000500.safetensors`
    per step save, and `<name>.safetensors` for the final file."""
    if epoch is not None:
        return f"{output_name}-{epoch:06d}.safetensors"
    if step is not None:
        return f"{output_name}-step{step:08d}.safetensors"
    return f"{output_name}.safetensors"


def interrupted_filename(output_name: str, step: int) -> str:
    """The file written on Ctrl-C: named so it is never taken for an epoch's file."""
    return f"{output_name}-interrupted-step{step:08d}.safetensors"


@dataclass(frozen=True)
class Project:
    root: Path

    @property
    def config_path(self) -> Path:
        return self.root / CONFIG_FILE

    @property
    def image_dir(self) -> Path:
        return self.root / IMAGE_DIR

    @property
    def models_dir(self) -> Path:
        return self.root / MODELS_DIR

    @property
    def log_dir(self) -> Path:
        return self.root / LOG_DIR

    @property
    def state_dir(self) -> Path:
        return self.log_dir / STATE_DIR

    @property
    def eval_dir(self) -> Path:
        return self.root / EVAL_DIR

    @property
    def prepare_report(self) -> Path:
        return self.root / PREPARE_REPORT

    @property
    def events_path(self) -> Path:
        return self.log_dir / "events.jsonl"

    @classmethod
    def open(cls, root: str | Path) -> "Project":
        root = Path(root).expanduser()
        if not (root / CONFIG_FILE).is_file():
            raise ProjectError(
                f"'{root}' is not a facelora project (no {CONFIG_FILE}). Create one with "
                f"'facelora init {root} --trigger NAME'."
            )
        return cls(root.resolve())

    @classmethod
    def is_project(cls, root: str | Path) -> bool:
        return (Path(root) / CONFIG_FILE).is_file()

    def settings(self) -> ProjectSettings:
        return load_settings(self.config_path)

    def save_settings(self, settings: ProjectSettings) -> None:
        save_settings(self.config_path, settings)

    def train_config(self) -> TrainConfig:
        """The project's parameters with its folders made absolute and output_name filled in."""
        s = self.settings()
        cfg = s.train
        updates = {k: str(self.folder(getattr(cfg, k), k)) for k in PROJECT_FOLDERS}
        updates["output_name"] = check_output_name(cfg.output_name or s.trigger)
        return cfg.model_copy(update=updates)

    def folder(self, value: str, what: str) -> Path:
        """A folder parameter (relative to the project, or absolute) resolved; it must lie inside
        the project, links followed (paths.py's policy)."""
        return inside(self.root, value, what)

    def concepts(self) -> list[tuple[Path, Concept]]:
        """The `<repeats>_<trigger>` folders under image/, sorted by name."""
        if not self.image_dir.is_dir():
            return []
        return [(d, Concept.parse(d.name)) for d in sorted(self.image_dir.iterdir()) if d.is_dir()]

    def concept_dir(self) -> tuple[Path, Concept]:
        """The project's single concept folder (facelora trains one person per project)."""
        found = self.concepts()
        if len(found) != 1:
            names = ", ".join(d.name for d, _ in found) or "none"
            raise ProjectError(
                f"Expected exactly one '<repeats>_<trigger>' folder in {self.image_dir}, found {names}."
            )
        return found[0]

    def rename_repeats(self, repeats: int) -> Path:
        """Rename `image/<old>_<trigger>` to the new repeats; returns the new folder."""
        folder, concept = self.concept_dir()
        new = folder.with_name(Concept(repeats, concept.trigger, concept.class_word).folder_name)
        if new != folder:
            if new.exists():
                raise ProjectError(f"Cannot rename {folder.name} to {new.name}: it already exists.")
            folder.rename(new)
        return new


def init_project(root: str | Path, trigger: str, class_word: str | None = None, repeats: int = 10,
                 train: TrainConfig | None = None) -> Project:
    """Make a new project: Kohya's folders and facelora.toml. Refuses to touch an existing one."""
    concept = Concept(repeats, trigger, class_word or None)
    root = Path(root).expanduser()
    if (root / CONFIG_FILE).exists():
        raise ProjectError(f"'{root}' is already a facelora project; nothing was changed.")
    if root.exists() and any(root.iterdir()):
        raise ProjectError(
            f"'{root}' exists and is not empty; choose a new folder so nothing of yours is overwritten."
        )
    check_trigger(concept.trigger)
    check_name(concept.folder_name, "The image folder (repeats, trigger and class word)")
    project = Project(root.resolve())
    for d in (project.image_dir / concept.folder_name, project.models_dir, project.log_dir):
        d.mkdir(parents=True, exist_ok=True)
    train = train or TrainConfig()
    if not train.output_name:
        train = train.model_copy(update={"output_name": concept.trigger})
    project.save_settings(ProjectSettings(trigger=concept.trigger, class_word=concept.class_word, train=train))
    return project
