"""The project folder, laid out as Kohya's trainer expects it.

    PROJECT/
      facelora.toml                 the project's settings (trigger word, training parameters)
      image/<repeats>_<trigger>[ <class>]/   training images and same-stem captions
      prepare-report.json, prepare-contact-sheet.png   what prepare made of each photo
      models/                       LoRA files (and sample/ images)
      log/                          TensorBoard runs, events.jsonl, state/ for resume, loss.png,
                                    <kind>.lock / .last / .out of the jobs
      cache/latents/                the VAE's latents, with cache_latents_to_disk
      eval/                         grid.json, grid.png, cells/, likeness.json, heatmap.png
      report.html                   the run's report

This module owns every artefact's name: the folders, the files in them and the `<repeats>_<trigger>`
convention; a run's own file names (LoRA files, samples, TensorBoard runs), written and read back,
are filenames.py's.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from .errors import FaceloraError
from .config import OPTIONAL_PROJECT_FOLDERS, PROJECT_FOLDERS, ProjectSettings, TrainConfig, load_settings, save_settings
from .filenames import LORA_SUFFIX, parse_lora_filename
from .paths import check_name, check_output_name, inside

CONFIG_FILE = "facelora.toml"
# Kohya's folders: the defaults of train_data_dir, output_dir and logging_dir (relative to the project)
IMAGE_DIR = TrainConfig.model_fields["train_data_dir"].default
REG_DIR = "reg"
MODELS_DIR = TrainConfig.model_fields["output_dir"].default
LOG_DIR = TrainConfig.model_fields["logging_dir"].default
EVAL_DIR = "eval"
STATE_DIR = "state"
PREPARE_REPORT = "prepare-report.json"
CONTACT_SHEET = "prepare-contact-sheet.png"
POSE_PLOT = "prepare-pose.png"  # the training photos' yaw and pitch (prepare/pose_plot.py)
REPORT_HTML = "report.html"
LATENT_CACHE_DIR = "cache/latents"
EVENTS_FILE = "events.jsonl"
LOSS_CHART = "loss.png"
EPOCH_LOSS_CHART = "loss-per-epoch.png"
GRID_JSON = "grid.json"
GRID_PNG = "grid.png"
CELLS_DIR = "cells"
LIKENESS_JSON = "likeness.json"
HEATMAP_PNG = "heatmap.png"
REFERENCE_CACHE = "reference-faces.json"
PROBES_TOML = "probes.toml"  # the grid's probe prompts (evaluate/probes.py)
SAMPLE_PROMPTS = "sample_prompts.txt"  # the prompts typed in the GUI (Kohya's sample_prompts syntax)

CONCEPT_FOLDER = re.compile(r"^(\d+)_(.+)$")
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
        m = CONCEPT_FOLDER.match(folder_name)
        if not m:
            raise ProjectError(
                "Folder '{folder}' has no '<repeats>_' prefix. Kohya's layout needs the "
                "number of repeats first, e.g. '15_{folder}'. Rename it, or run "
                "'facelora plan PROJECT --yes' to name it from the plan.", folder=folder_name
            )
        repeats = int(m.group(1))
        if repeats < 1:
            raise ProjectError("Folder '{folder}': repeats must be at least 1.", folder=folder_name)
        rest = m.group(2).strip()
        trigger, _, class_word = rest.partition(" ")
        return cls(repeats, trigger, class_word.strip() or None)


def check_trigger(trigger: str) -> str:
    if not trigger or not _TRIGGER.match(trigger):
        raise ProjectError(
            "Trigger word {trigger!r} must be one word without spaces or slashes (e.g. 'ohwx' or "
            "'ScarlettJohansson'); it names the folder and starts every caption.", trigger=trigger
        )
    check_name(trigger, "The trigger word")
    return trigger



@dataclass(frozen=True)
class Project:
    root: Path

    @property
    def config_path(self) -> Path:
        return self.root / CONFIG_FILE

    @property
    def image_dir(self) -> Path:
        """The training folder, train_data_dir: image/, or the kohya_ss GUI's img/ of an adopted layout."""
        if not self.is_project(self.root):  # being made
            return self.root / IMAGE_DIR
        return self.folder(self.settings().train.train_data_dir, "train_data_dir")

    @property
    def reg_dir(self) -> Path:
        """Class (regularisation) images, `reg/<repeats>_<class>/`, as `facelora reg generate` makes them."""
        return self.root / REG_DIR

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
    def contact_sheet(self) -> Path:
        return self.root / CONTACT_SHEET

    @property
    def pose_plot(self) -> Path:
        return self.root / POSE_PLOT

    @property
    def report_html(self) -> Path:
        return self.root / REPORT_HTML

    @property
    def latent_cache_dir(self) -> Path:
        return self.root / LATENT_CACHE_DIR

    @property
    def events_path(self) -> Path:
        return self.log_dir / EVENTS_FILE

    @property
    def loss_chart(self) -> Path:
        return self.log_dir / LOSS_CHART

    @property
    def epoch_loss_chart(self) -> Path:
        return self.log_dir / EPOCH_LOSS_CHART

    @property
    def grid_json(self) -> Path:
        return self.eval_dir / GRID_JSON

    @property
    def grid_png(self) -> Path:
        return self.eval_dir / GRID_PNG

    @property
    def cells_dir(self) -> Path:
        return self.eval_dir / CELLS_DIR

    @property
    def likeness_json(self) -> Path:
        return self.eval_dir / LIKENESS_JSON

    @property
    def heatmap_png(self) -> Path:
        return self.eval_dir / HEATMAP_PNG

    @property
    def probes_toml(self) -> Path:
        return self.eval_dir / PROBES_TOML

    @property
    def reference_cache(self) -> Path:
        """The reference photos' face vectors, kept so scoring again skips the detector."""
        return self.eval_dir / REFERENCE_CACHE

    @property
    def sample_prompts(self) -> Path:
        return self.root / SAMPLE_PROMPTS

    def job_lock(self, kind: str) -> Path:
        """Held while a `kind` job (train, prepare, grid, score) runs."""
        return self.log_dir / f"{kind}.lock"

    def job_last(self, kind: str) -> Path:
        """The lock of the last `kind` job that ended, with its exit code."""
        return self.log_dir / f"{kind}.last"

    def job_output(self, kind: str) -> Path:
        """The terminal output of the `kind` job the GUI started."""
        return self.log_dir / f"{kind}.out"

    @classmethod
    def open(cls, root: str | Path) -> "Project":
        root = Path(root).expanduser()
        if not (root / CONFIG_FILE).is_file():
            from .kohya_layout import kohya_layout  # it builds on this module

            if kohya_layout(root):
                raise ProjectError("'{root}' is not a facelora project (no {file}) (it is laid out the Kohya way: "
                                   "'facelora init' or 'facelora train' adopts it). Create one with: "
                                   "facelora init {quoted} --trigger NAME", root=root, quoted=shlex.quote(str(root)),
                                   file=CONFIG_FILE)
            raise ProjectError("'{root}' is not a facelora project (no {file}). Create one with: "
                               "facelora init {quoted} --trigger NAME", root=root, quoted=shlex.quote(str(root)),
                               file=CONFIG_FILE)
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
        for k in OPTIONAL_PROJECT_FOLDERS:  # class images, masks, held-out photos: inside the project unless absolute
            if getattr(cfg, k):
                updates[k] = str(self.root / getattr(cfg, k))
        return cfg.model_copy(update=updates)

    def earlier_run_files(self, output_dir: str | Path, output_name: str) -> list[Path]:
        """The LoRA files an earlier run of `output_name` left in output_dir (a new run would mix
        with them: same names, and the grid would compare them as one run)."""
        folder = Path(output_dir)
        return [] if not folder.is_dir() else sorted(f for f in folder.glob(f"*{LORA_SUFFIX}") if parse_lora_filename(f.name, output_name))

    def room_for_new_run(self, output_dir: str | Path, output_name: str, overwrite: bool = False) -> list[Path]:
        """Runs never mix: with an earlier run's files of `output_name` in output_dir, a new run is
        refused (saying what to do), or with `overwrite` they are deleted first (returned)."""
        earlier = self.earlier_run_files(output_dir, output_name)
        if earlier and not overwrite:
            names = ", ".join(f.name for f in earlier[:4]) + (" ..." if len(earlier) > 4 else "")
            raise ProjectError(
                "{folder} holds files of an earlier run of '{name}' ({files}); a new run would mix "
                "with them. Give --overwrite to delete them and train again, --output_name NAME to keep both "
                "runs apart, or --resume to go on with the earlier run. Nothing was changed.", folder=output_dir,
                name=output_name, files=names)
        for f in earlier:
            f.unlink(missing_ok=True)  # every launched process runs this
        return earlier

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
            raise ProjectError("Expected exactly one '<repeats>_<trigger>' folder in {folder}, found {names}.",
                               folder=self.image_dir, names=names)
        return found[0]

    def rename_repeats(self, repeats: int) -> Path:
        """Rename `image/<old>_<trigger>` to the new repeats; returns the new folder."""
        folder, concept = self.concept_dir()
        new = folder.with_name(Concept(repeats, concept.trigger, concept.class_word).folder_name)
        if new != folder:
            if new.exists():
                raise ProjectError("Cannot rename {old} to {new}: it already exists.", old=folder.name, new=new.name)
            folder.rename(new)
        return new


def init_project(root: str | Path, trigger: str, class_word: str | None = None, repeats: int = 10,
                 train: TrainConfig | None = None) -> Project:
    """Make a new project: Kohya's folders and facelora.toml. Refuses to touch an existing one; a
    folder laid out the Kohya way becomes a project where it is (adopt_kohya_layout)."""
    concept = Concept(repeats, trigger, class_word or None)
    root = Path(root).expanduser()
    if (root / CONFIG_FILE).exists():
        raise ProjectError("'{root}' is already a facelora project; nothing was changed.", root=root)
    from .kohya_layout import adopt_kohya_layout, kohya_layout  # it builds on this module

    if kohya_layout(root) is not None:
        return adopt_kohya_layout(root, train, trigger)
    if root.exists() and any(root.iterdir()):
        raise ProjectError(
            "'{root}' exists and is not empty and is not laid out the Kohya way (image/<repeats>_<name>/); "
            "choose a new folder so nothing of yours is overwritten.", root=root
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
