"""The step maths, in one place: repeats from a step budget, steps per epoch, total steps and
the files a run will save. `plan_for` is the one entry point: `facelora plan`, `train`, `run`,
the GUI's plan table and the estimate all read the plan from it, so what is planned is what
training runs.

Kohya's counting (train_network.py): one epoch is len(dataloader) micro-batches (each bucket's
samples batched on their own); an optimizer step is one update after gradient_accumulation_steps
micro-batches, so num_update_steps_per_epoch = ceil(batches / num_processes / accumulation),
max_train_steps = max_train_epochs x that when epochs are set, and epochs = ceil(max_train_steps /
steps per epoch) when not.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import config as cfgmod
from .dataset import Bucketing, Dataset, scan_for, with_repeats
from .filenames import lora_filename
from .messages import Message, said
from .project import Project


def solve_repeats(max_train_steps: int, images: int, epochs: int, batch_size: int = 1) -> int:
    """repeats = max_steps x batch / (images x epochs), to the nearest whole number, at least 1.
    The tutorial's example: 4800 steps, 32 images, 10 epochs, batch 1 -> 15. `batch_size` is the
    samples of one optimizer step: batch x processes x gradient accumulation."""
    if images < 1 or epochs < 1 or batch_size < 1 or max_train_steps < 1:
        raise ValueError("images, epochs, batch size and steps must all be at least 1")
    return max(1, round(max_train_steps * batch_size / (images * epochs)))


def steps_per_epoch(samples: int, batch_size: int, num_processes: int = 1, accumulation: int = 1,
                    bucket_samples: list[int] | None = None) -> int:
    """Optimizer steps in one epoch, as Kohya counts them: ceil(images x repeats / batch) batches
    (with aspect-ratio buckets, each bucket's samples batched on their own), shared among the
    processes, then divided by gradient accumulation."""
    if bucket_samples:
        batches = sum(math.ceil(n / batch_size) for n in bucket_samples)
    else:
        batches = math.ceil(samples / batch_size)
    return max(1, math.ceil(batches / num_processes / accumulation))


def saved_epochs(epochs: int, save_every_n_epochs: int | None, save_last_n_epochs: int | None = None) -> list[int]:
    """Epochs whose LoRA file stays on disk: every n-th epoch (only the newest save_last_n_epochs
    of them, as Kohya keeps them), and the last epoch always, as `<name>.safetensors`."""
    every = [e for e in range(1, epochs) if save_every_n_epochs and e % save_every_n_epochs == 0]
    if save_last_n_epochs:
        every = every[-save_last_n_epochs:]
    return every + [epochs]


def epoch_to_remove(saved_epoch: int, save_every_n_epochs: int | None, save_last_n_epochs: int | None) -> int | None:
    """The epoch file that falls out of the kept window when `saved_epoch` is saved (Kohya's
    get_remove_epoch_no): save_last_n_epochs keeps the newest n epoch files."""
    if not save_last_n_epochs or not save_every_n_epochs:
        return None
    old = saved_epoch - save_every_n_epochs * save_last_n_epochs
    return old if old > 0 else None


@dataclass
class Plan:
    images: int
    repeats: int
    epochs: int
    batch_size: int
    steps_per_epoch: int
    total_steps: int
    saved_files: list[str]
    num_processes: int = 1
    gradient_accumulation_steps: int = 1
    samples_per_epoch: int = 0  # images x repeats (class images included)
    reg_images: int = 0  # class images found in reg_data_dir
    reg_samples: int = 0  # class images x the repeats Kohya cycles them to, per epoch
    validation_images: int = 0  # photos held out for the validation loss
    validation_photos: list[str] = field(default_factory=list)  # which: "<folder>/<file>" each
    notes: list[str] = field(default_factory=list)
    notes_said: list[Message] = field(default_factory=list)  # each note's template and values (the GUI's language)

    def note(self, message: Message) -> None:
        self.notes.append(message.text)
        self.notes_said.append(message)

    def to_dict(self) -> dict:
        return asdict(self)

    def epoch_of_step(self, step: int) -> int:
        """1-based epoch that contains global step `step` (1-based)."""
        return (step - 1) // self.steps_per_epoch + 1


def plan_for(cfg: cfgmod.TrainConfig, images: Dataset | int, num_processes: int = 1, *,
             budget: bool = False, repeats: int | None = None) -> Plan:
    """The schedule training runs for `cfg` on `images`: a scanned Dataset (its repeats and, with
    enable_bucket, its buckets), or a number of images (a plan before they exist: one bucket, and
    `repeats`, 1 unless given). budget: solve the repeats from the step budget, max_train_steps
    over max_train_epochs epochs, as the tutorial plans (`facelora plan --epochs --max-train-steps`)."""
    dataset = images.bucketed(Bucketing.of(cfg)) if isinstance(images, Dataset) else None
    count = dataset.num_images if dataset is not None else int(images)
    if count < 1:
        raise ValueError("The training folder holds no images.")
    batch, acc = cfg.train_batch_size, cfg.gradient_accumulation_steps
    if budget:
        if not cfg.max_train_epochs:
            raise ValueError("A step budget needs the number of epochs (max_train_epochs).")
        # class images double an epoch (they are cycled to the person's samples)
        doubled = 2 if dataset is not None and dataset.reg_subsets else 1
        repeats = solve_repeats(cfg.max_train_steps, count * doubled, cfg.max_train_epochs, batch * num_processes * acc)
    if dataset is not None:
        if repeats:
            dataset = with_repeats(dataset, repeats).bucketed(Bucketing.of(cfg))
        per_image = [r for _, _, r in dataset.items()]
        buckets = [sum(per_image[i] for i in indices) for indices in dataset.bucket_images().values()]
        repeats = repeats or dataset.subsets[0].repeats
    else:
        repeats = repeats or 1
        buckets = [count * repeats]
    spe = steps_per_epoch(sum(buckets), batch, num_processes, acc, buckets)
    if cfg.max_train_epochs:
        epochs, total = cfg.max_train_epochs, cfg.max_train_epochs * spe
    else:
        epochs, total = math.ceil(cfg.max_train_steps / spe), cfg.max_train_steps
    files = [lora_filename(cfg.output_name, epoch=e if e != epochs else None)
             for e in saved_epochs(epochs, cfg.save_every_n_epochs, cfg.save_last_n_epochs)]
    plan = Plan(count, repeats, epochs, batch, spe, total, files, num_processes, acc, sum(buckets))
    if not cfg.max_train_epochs:
        plan.note(said("max_train_epochs is not set: training stops at step {step} in epoch {epoch}.", step=total,
                       epoch=epochs))
    if budget and total != cfg.max_train_steps:
        plan.note(said("{repeats} repeats give {total} steps, not exactly the {asked} asked for (repeats must be a "
                       "whole number).", repeats=repeats, total=total, asked=cfg.max_train_steps))
    plan = with_held_and_class_images(plan, dataset)
    if cfg.validation_split and dataset is not None and not plan.validation_images:
        plan.note(said("validation_split {split:g} of {n} photos holds none out (Kohya rounds the share): no "
                       "validation loss. Raise it, or add photos.", split=cfg.validation_split, n=count))
    return plan


def with_held_and_class_images(plan: Plan, dataset: Dataset | None) -> Plan:
    """The plan's count of class images and held-out photos, and a note on how Kohya counts the
    class images: cycled to as many samples as the person's images x repeats, so they double the
    epoch."""
    if dataset is None:
        return plan
    plan.validation_images = sum(len(s.images) for s in dataset.validation)
    plan.validation_photos = [f"{s.folder.name}/{p.name}" for s in dataset.validation for p in s.images]
    reg = dataset.reg_subsets
    if reg:
        plan.reg_images = sum(len(s.images) for s in reg)
        plan.reg_samples = dataset.num_samples - dataset.num_train_samples
        plan.note(said(
            "{reg} class images are cycled to {samples} samples per epoch, as many as the person's {images} images "
            "x repeats (Kohya's DreamBooth counting), so an epoch is {epoch} samples.", reg=plan.reg_images,
            samples=plan.reg_samples, images=dataset.num_train_samples, epoch=plan.samples_per_epoch))
    return plan


def adopt(project: Project, plan: Plan, max_train_steps: int) -> Path:
    """Make the project follow `plan` (a budget plan_for): rename image/<old>_<trigger> to its
    repeats, save its epochs and the step budget. Returns the (possibly renamed) training folder."""
    folder = project.rename_repeats(plan.repeats)
    settings = project.settings()
    settings.train = cfgmod.apply(settings.train, {"max_train_epochs": plan.epochs, "max_train_steps": max_train_steps})
    project.save_settings(settings)
    return folder


# The tutorial's ranges for a face: repeats 10-30 (the folder's number), epochs 5-10, total steps
# 3000-5000, and at least 10 photos. Outside them a run still works, so they warn, never refuse.
TUTORIAL_RANGES = {"repeats": (10, 30), "epochs": (5, 10), "total steps": (3000, 5000)}
TUTORIAL_MIN_PHOTOS = 10


def tutorial_said(images: int | None = None, repeats: int | None = None, epochs: int | None = None,
                  total_steps: int | None = None) -> list[Message]:
    """What lies outside the tutorial's ranges: the one rule `prepare`, `plan`, `train`, `run` and
    the GUI warn with (as templates and values: the GUI says them in its language). Give what is
    known; a plan's numbers: tutorial_said(**plan_numbers(plan))."""
    out = []
    if images is not None and images < TUTORIAL_MIN_PHOTOS:
        out.append(said("{images} photo(s): the tutorial uses at least {least} of the face (more angles and lights "
                        "make a more faithful LoRA).", images=images, least=TUTORIAL_MIN_PHOTOS))
    for name, value in (("repeats", repeats), ("epochs", epochs), ("total steps", total_steps)):
        low, high = TUTORIAL_RANGES[name]
        if value is not None and not low <= value <= high:
            out.append(said("{name} {value} lies outside the tutorial's {low}-{high} for a face." if name == "epochs"
                            else "{name} {value} lies outside the tutorial's {low}-{high} for a face (facelora plan "
                            "PROJECT --epochs E --max-train-steps S works out the repeats).",
                            name=name, value=value, low=low, high=high))
    return out


def trained_outside_tutorial(cfg: cfgmod.TrainConfig) -> list[Message]:
    """tutorial_said of the plan `cfg` trains, its images counted: what prepare, train and the
    Photos page warn with; none when the images cannot be read (training itself says why)."""
    from .errors import FaceloraError

    try:
        plan = plan_for(cfg, scan_for(cfg))
    except (FaceloraError, ValueError):
        return []
    return tutorial_said(**plan_numbers(plan))


def tutorial_warnings(**numbers: int | None) -> list[str]:
    """tutorial_said's warnings in English (the CLI's)."""
    return [m.text for m in tutorial_said(**numbers)]


def plan_numbers(plan: Plan) -> dict[str, int]:
    return {"images": plan.images, "repeats": plan.repeats, "epochs": plan.epochs, "total_steps": plan.total_steps}
