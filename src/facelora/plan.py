"""The step maths, in one place: repeats from a step budget, steps per epoch, total steps and
the files a run will save. The trainer, the CLI and the GUI all read it from here."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from .project import lora_filename


def solve_repeats(max_train_steps: int, images: int, epochs: int, batch_size: int = 1) -> int:
    """repeats = max_steps x batch / (images x epochs), to the nearest whole number, at least 1.
    The tutorial's example: 4800 steps, 32 images, 10 epochs, batch 1 -> 15."""
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
    notes: list[str] = field(default_factory=list)

    @property
    def samples_per_epoch(self) -> int:
        return self.images * self.repeats

    def to_dict(self) -> dict:
        return asdict(self)

    def epoch_of_step(self, step: int) -> int:
        """1-based epoch that contains global step `step` (1-based)."""
        return (step - 1) // self.steps_per_epoch + 1


def make_plan(
    images: int,
    repeats: int,
    batch_size: int,
    output_name: str,
    max_train_epochs: int | None,
    max_train_steps: int,
    save_every_n_epochs: int | None = 1,
    save_last_n_epochs: int | None = None,
    num_processes: int = 1,
    gradient_accumulation_steps: int = 1,
    bucket_samples: list[int] | None = None,
) -> Plan:
    """The real schedule. `max_train_epochs` overrides `max_train_steps`, as in Kohya.
    `bucket_samples`: samples per aspect-ratio bucket, when the images are bucketed."""
    if images < 1:
        raise ValueError("The training folder holds no images.")
    spe = steps_per_epoch(images * repeats, batch_size, num_processes, gradient_accumulation_steps, bucket_samples)
    notes = []
    if max_train_epochs:
        epochs, total = max_train_epochs, max_train_epochs * spe
    else:
        epochs, total = math.ceil(max_train_steps / spe), max_train_steps
        notes.append(f"max_train_epochs is not set: training stops at step {total} in epoch {epochs}.")
    files = [
        lora_filename(output_name, epoch=e if e != epochs else None)
        for e in saved_epochs(epochs, save_every_n_epochs, save_last_n_epochs)
    ]
    return Plan(images, repeats, epochs, batch_size, spe, total, files, num_processes,
                gradient_accumulation_steps, notes)


def plan_from_budget(images: int, epochs: int, max_train_steps: int, batch_size: int = 1,
                     output_name: str = "lora", save_every_n_epochs: int | None = 1, num_processes: int = 1) -> Plan:
    """The tutorial's planning: solve repeats from a step budget, then the real schedule."""
    repeats = solve_repeats(max_train_steps, images, epochs, batch_size * num_processes)
    plan = make_plan(images, repeats, batch_size, output_name, epochs, max_train_steps,
                     save_every_n_epochs, num_processes=num_processes)
    if plan.total_steps != max_train_steps:
        plan.notes.append(
            f"{repeats} repeats give {plan.total_steps} steps, not exactly the {max_train_steps} asked for "
            f"(repeats must be a whole number)."
        )
    return plan
