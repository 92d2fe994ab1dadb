"""The names of the files a training run writes, as written and as read back: the LoRA files
(`<name>-000001.safetensors` per epoch, `<name>.safetensors` at the end, step, interrupted and EMA
files), sample images and TensorBoard runs. With project.py (the folders and the files in them),
the one owner of every artefact name of a project.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

LORA_SUFFIX = ".safetensors"
SAMPLE_DIR = "sample"  # inside output_dir, as Kohya's trainer puts it
LoraKind = Literal["epoch", "step", "final", "interrupted"]

# --- LoRA files: Kohya's names, written and read back here only ----------------------------------

FINAL_ORDER = 10**9  # the final file sorts after every numbered one
EMA_TAIL = "-ema"  # the EMA weights' file of a save (ema_filename)
_NUMBERED = (  # (kind, the name's tail after `<output_name>`), tried in this order
    ("interrupted", re.compile(r"-interrupted-step(\d{8})")),
    ("step", re.compile(r"-step(\d{8})")),
    ("epoch", re.compile(r"-(\d{6})")),
)


@dataclass(frozen=True)
class LoraName:
    """What a LoRA file's name says: the run's output_name, and which save it is."""

    output_name: str
    kind: LoraKind = "final"
    number: int | None = None  # the epoch of an epoch file, the step of a step or interrupted file
    ema: bool = False  # the EMA of the weights (ema_decay), saved beside the file of that save

    @property
    def epoch(self) -> int | None:
        return self.number if self.kind == "epoch" else None

    @property
    def step(self) -> int | None:
        return self.number if self.kind in ("step", "interrupted") else None

    @property
    def stem(self) -> str:
        """The file name without .safetensors: what a `<lora:NAME:W>` tag calls it."""
        return self._save_stem + (EMA_TAIL if self.ema else "")

    @property
    def _save_stem(self) -> str:
        if self.kind == "epoch":
            return f"{self.output_name}-{self.number:06d}"
        if self.kind == "step":
            return f"{self.output_name}-step{self.number:08d}"
        if self.kind == "interrupted":  # named so it is never taken for an epoch's file
            return f"{self.output_name}-interrupted-step{self.number:08d}"
        return self.output_name

    @property
    def filename(self) -> str:
        return self.stem + LORA_SUFFIX

    def order(self, steps: int | None = None) -> int:
        """The file's place in training order: the step it was saved at when known (`steps`, its
        metadata's ss_steps), else the number in its name; the final file last."""
        if self.kind == "final":
            return FINAL_ORDER
        return steps if steps is not None else int(self.number or 0)


def lora_filename(output_name: str, epoch: int | None = None, step: int | None = None) -> str:
    """Kohya's names: `<name>-000001.safetensors` per epoch, `<name>-step00000500.safetensors`
    per step save, and `<name>.safetensors` for the final file."""
    if epoch is not None:
        return LoraName(output_name, "epoch", epoch).filename
    if step is not None:
        return LoraName(output_name, "step", step).filename
    return LoraName(output_name).filename


def interrupted_filename(output_name: str, step: int) -> str:
    """The file written on Ctrl-C: named so it is never taken for an epoch's file."""
    return LoraName(output_name, "interrupted", step).filename


def parse_lora_filename(name: str, output_name: str | None = None) -> LoraName | None:
    """Read a LoRA file name (or a `<lora:NAME>` tag's name) back: with `output_name`, None for a
    file of another run; without (a file made anywhere), a name with no save number is a final file."""
    stem = name[: -len(LORA_SUFFIX)] if name.endswith(LORA_SUFFIX) else name
    ema = stem.endswith(EMA_TAIL) and stem != EMA_TAIL and stem != output_name
    if ema:
        stem = stem[: -len(EMA_TAIL)]
    for kind, tail in _NUMBERED:
        m = re.fullmatch(rf"(.+?){tail.pattern}", stem)
        if m and (output_name is None or m.group(1) == output_name):
            return LoraName(m.group(1), kind, int(m.group(2)), ema)
    if output_name is None or stem == output_name:
        return LoraName(stem, ema=ema)
    return None


def ema_filename(filename: str) -> str:
    """The EMA weights' file beside a save: `<name>-000001-ema.safetensors` beside
    `<name>-000001.safetensors` (`<name>-ema.safetensors` beside the final file)."""
    return replace(parse_lora_filename(filename) or LoraName(filename), ema=True).filename


def samples_dir(output_dir: str | Path) -> Path:
    return Path(output_dir) / SAMPLE_DIR


def sample_filename(output_name: str, epoch: int, index: int, seed: int) -> str:
    """Kohya's names: `<output_name>_e000001_00_<seed>.png` (epoch 1, prompt 0)."""
    return f"{output_name}_e{epoch:06d}_{index:02d}_{seed}.png"


def tensorboard_run_name(output_name: str, started_at: float) -> str:
    """A run's TensorBoard folder in logging_dir, `<output_name>_<YYYYmmddHHMMSS>` as Kohya's."""
    return f"{output_name}_{time.strftime('%Y%m%d%H%M%S', time.localtime(started_at))}"
