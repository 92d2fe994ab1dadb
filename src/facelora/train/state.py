"""All of the training loop's own state in one small object: where the run is (step, epoch,
position in the epoch), the loss figures, and the count of skipped non-finite steps.

There is no random-number state to keep: the data order comes from (seed, epoch) and each step's
noise and timesteps from (seed, step, micro-batch, place in the global batch), so a run restored
from a LoopState draws exactly what an unbroken run would have drawn, and N processes draw what
one process with N times the batch draws. (resume.py keeps the global generators' states too.)
"""

from __future__ import annotations

import hashlib
import json
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from ..fileio import atomic_write_text


def derived_seed(*parts: object) -> int:
    """A 63-bit seed from any values, stable across runs, processes and machines."""
    digest = hashlib.sha256("/".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


@dataclass
class LoopState:
    seed: int
    global_step: int = 0  # optimizer steps done (skipped non-finite steps included)
    epoch: int = 1  # the epoch in progress, 1-based
    step_in_epoch: int = 0  # optimizer steps done in that epoch: where the data order resumes
    nonfinite_in_row: int = 0
    nonfinite_total: int = 0
    recent_losses: list[float] = field(default_factory=list)  # the window of the average loss
    epoch_loss_sum: float = 0.0
    epoch_loss_count: int = 0
    validation_loss: float | None = None  # the latest validation loss (kept with each saved file)

    def generator(self, what: str, micro: int = 0, place: int = 0) -> torch.Generator:
        """A CPU generator for this step's `what` ("noise", "timesteps", ...); `place`: the
        sample's place in the step's global batch (or the process, for a whole micro-batch)."""
        return torch.Generator().manual_seed(derived_seed(self.seed, what, self.global_step, micro, place))

    def record(self, loss: float, window: int) -> float:
        """Add a finite step loss; return the moving average over the last `window` steps (one
        epoch, as Kohya's average loss)."""
        recent = deque(self.recent_losses, maxlen=window)
        recent.append(loss)
        self.recent_losses = list(recent)
        self.epoch_loss_sum += loss
        self.epoch_loss_count += 1
        return self.average_loss

    @property
    def average_loss(self) -> float:
        return sum(self.recent_losses) / len(self.recent_losses) if self.recent_losses else float("nan")

    @property
    def epoch_mean_loss(self) -> float:
        return self.epoch_loss_sum / self.epoch_loss_count if self.epoch_loss_count else float("nan")

    def next_epoch(self) -> None:
        """Move to the start of the next epoch."""
        self.epoch += 1
        self.step_in_epoch = 0
        self.epoch_loss_sum, self.epoch_loss_count = 0.0, 0

    def save(self, path: Path) -> None:
        atomic_write_text(path, json.dumps(asdict(self), indent=1) + "\n")

    @classmethod
    def load(cls, path: Path) -> "LoopState":
        return cls(**json.loads(Path(path).read_text(encoding="utf-8")))
