"""The plan of a project on disk: read its images and settings, or adopt a new step budget (solve
the repeats, rename `image/<old>_<trigger>`, save epochs and steps) as the tutorial does by hand.
The CLI's `plan --yes`, `facelora run` and the GUI's plan page share these."""

from __future__ import annotations

from pathlib import Path

from . import config as cfgmod
from .dataset import scan
from .plan import Plan, make_plan, plan_from_budget
from .project import Project


def project_plan(p: Project, num_processes: int = 1) -> Plan:
    """The plan of an existing project, from its images and settings."""
    cfg = p.train_config()
    data = scan(cfg.train_data_dir, cfg.caption_extension)
    if cfg.enable_bucket:  # batches form per aspect-ratio bucket: the trainer's own count
        from .train.data import TrainData

        return TrainData(data, cfg).plan(num_processes)
    return make_plan(
        data.num_images, data.subsets[0].repeats, cfg.train_batch_size, cfg.output_name, cfg.max_train_epochs,
        cfg.max_train_steps, cfg.save_every_n_epochs, cfg.save_last_n_epochs, num_processes,
        cfg.gradient_accumulation_steps,
    )


def budget_plan(p: Project, images: int, epochs: int, max_train_steps: int, num_processes: int = 1) -> Plan:
    """What a step budget gives for this project's batch size and saving settings."""
    cfg = p.train_config()
    return plan_from_budget(images, epochs, max_train_steps, cfg.train_batch_size, cfg.output_name,
                            cfg.save_every_n_epochs, num_processes)


def adopt(p: Project, plan: Plan, max_train_steps: int) -> Path:
    """Make the project follow `plan`: rename the folder to its repeats, save its epochs and the
    budget. Returns the (possibly renamed) training folder."""
    folder = p.rename_repeats(plan.repeats)
    settings = p.settings()
    settings.train = cfgmod.apply(settings.train, {"max_train_epochs": plan.epochs, "max_train_steps": max_train_steps})
    p.save_settings(settings)
    return folder
