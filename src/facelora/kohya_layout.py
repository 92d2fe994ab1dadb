"""A folder laid out the Kohya way (image/<repeats>_<name>, models, log, or the kohya_ss GUI's
img/model/log) without facelora.toml: found, and made a project where it is."""

from __future__ import annotations

from pathlib import Path

from .config import ProjectSettings, TrainConfig
from .project import CONCEPT_FOLDER, CONFIG_FILE, IMAGE_DIR, LOG_DIR, MODELS_DIR, Concept, Project, ProjectError, check_trigger

# A folder laid out the Kohya way: the training folder (facelora's, or the kohya_ss GUI's "img")
# with <repeats>_<name> folders, and the folder the LoRA files go to (facelora's, or the GUI's "model").
KOHYA_IMAGE_DIRS = (IMAGE_DIR, "img")
KOHYA_MODEL_DIRS = (MODELS_DIR, "model")


def kohya_layout(root: str | Path) -> dict[str, str] | None:
    """The folders of a Kohya layout at `root` as TrainConfig names them (train_data_dir,
    output_dir), or None when `root` holds no `<training folder>/<repeats>_<name>` folder."""
    root = Path(root)
    for image in KOHYA_IMAGE_DIRS:
        d = root / image
        if d.is_dir() and any(sub.is_dir() and CONCEPT_FOLDER.match(sub.name) for sub in d.iterdir()):
            models = next((m for m in KOHYA_MODEL_DIRS if (root / m).is_dir()), MODELS_DIR)
            return {"train_data_dir": image, "output_dir": models}
    return None


def adopt_kohya_layout(root: str | Path, train: TrainConfig | None = None, trigger: str | None = None) -> Project:
    """Make a folder laid out the Kohya way a project where it is: facelora.toml is written, with
    the trigger and class from its one `<repeats>_<trigger> <class>` folder; nothing else changes
    (models and log are made when missing)."""
    root = Path(root).expanduser()
    layout = kohya_layout(root)
    if layout is None or (root / CONFIG_FILE).exists():
        raise ProjectError("'{root}' holds no Kohya layout to adopt (image/<repeats>_<name>/).", root=root)
    project = Project(root.resolve())
    train = (train or TrainConfig()).model_copy(update=layout)
    found = [(d, Concept.parse(d.name)) for d in sorted((root / layout["train_data_dir"]).iterdir())
             if d.is_dir() and CONCEPT_FOLDER.match(d.name)]
    if len(found) != 1:
        raise ProjectError("{folder} holds {n} '<repeats>_<name>' folders ({names}); facelora trains one person per "
                           "project: keep one there.", folder=root / layout["train_data_dir"], n=len(found),
                           names=", ".join(d.name for d, _ in found))
    concept = found[0][1]
    if trigger and trigger != concept.trigger:
        raise ProjectError("The folder {folder} names the trigger '{found}', not '{trigger}'; give --trigger {found}, "
                           "or rename the folder. Nothing was changed.", folder=found[0][0].name,
                           found=concept.trigger, trigger=trigger)
    check_trigger(concept.trigger)
    for d in (root / layout["output_dir"], root / LOG_DIR):
        d.mkdir(exist_ok=True)
    if not train.output_name:
        train = train.model_copy(update={"output_name": concept.trigger})
    project.save_settings(ProjectSettings(trigger=concept.trigger, class_word=concept.class_word, train=train))
    return project
