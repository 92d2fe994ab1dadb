"""Sample images during training, from a prompts file in Kohya's syntax: one prompt a line,
options after it: `--n negative prompt --w 512 --h 512 --d seed --l cfg scale --s steps`.
Lines that are empty or start with # are skipped. Images go to PROJECT/models/sample/ under
Kohya's names: `<output_name>_e000001_00_<seed>.png` (epoch 1, prompt 0)."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import FaceloraError
from ..fileio import atomic_write_bytes
from ..filenames import sample_filename
from .state import derived_seed


class PromptsError(FaceloraError):
    """A prompts file that cannot be read or has a bad option."""


@dataclass
class SamplePrompt:
    prompt: str
    negative: str = ""
    width: int = 512
    height: int = 512
    seed: int | None = None
    scale: float = 7.5
    steps: int = 30


_OPTIONS = {"w": "width", "h": "height", "d": "seed", "l": "scale", "s": "steps", "n": "negative"}


def parse_prompt(line: str) -> SamplePrompt:
    """`a photo of ohwx woman --n blurry --w 512 --h 768 --d 1 --l 7 --s 20` -> SamplePrompt."""
    parts = re.split(r"\s--(?=[a-zA-Z]\b)", " " + line.strip())
    sp = SamplePrompt(parts[0].strip())
    for part in parts[1:]:
        key, _, value = part.strip().partition(" ")
        key, value = key.lower(), value.strip()
        if key not in _OPTIONS:
            raise PromptsError("Unknown option --{key} in the sample prompt '{line}'; use --n --w --h --d --l --s.",
                               key=key, line=line.strip())
        field = _OPTIONS[key]
        try:
            if field == "negative":
                sp.negative = value
            elif field == "scale":
                sp.scale = float(value)
            else:
                setattr(sp, field, int(value))
        except ValueError:
            raise PromptsError("--{key} needs a number in the sample prompt '{line}' (got '{value}').", key=key,
                               line=line.strip(), value=value) from None
    if not sp.prompt:
        raise PromptsError("The sample prompt line '{line}' has options but no prompt.", line=line.strip())
    # Kohya: sides are multiples of 8, at least 64
    sp.width, sp.height = max(64, sp.width - sp.width % 8), max(64, sp.height - sp.height % 8)
    return sp


def read_prompts(path: str | Path) -> list[SamplePrompt]:
    path = Path(path)
    if not path.is_file():
        raise PromptsError("The sample prompts file {path} does not exist.", path=str(path))
    lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if not lines:
        raise PromptsError("The sample prompts file {path} holds no prompt (one prompt a line).", path=str(path))
    return [parse_prompt(ln) for ln in lines]


@torch.no_grad()
def make_samples(model, prompts: list[SamplePrompt], out_dir: Path, output_name: str, epoch: int, *,
                 sampler: str, clip_skip: int, base_seed: int, autocast) -> list[Path]:
    """One image per prompt with the LoRA as it is now (applied at weight 1), through
    the grid's pipeline and renderer. A prompt without --d gets a seed derived from the run's seed
    and its line."""
    from ..model.sampling import embed, make_pipeline, render

    pipe = make_pipeline(model, sampler)
    out: list[Path] = []
    for i, p in enumerate(prompts):
        seed = p.seed if p.seed is not None else derived_seed(base_seed, "sample", i) % 2**32
        with autocast():
            image = render(pipe, embed(model, p.prompt, clip_skip), embed(model, p.negative, clip_skip),
                           seed, p.steps, p.scale, p.width, p.height)
        buf = io.BytesIO()
        image.save(buf, format="PNG")
        path = Path(out_dir) / sample_filename(output_name, epoch, i, seed)
        atomic_write_bytes(path, buf.getvalue())
        out.append(path)
    return out
