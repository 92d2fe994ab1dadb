"""The loaded base model (SDModel) and what is built from the configs facelora ships: the empty
UNet, text encoder and VAE, the CLIP tokenizer and the training noise schedule."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import diffusers
from accelerate import init_empty_weights
from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer
from transformers.utils import logging as transformers_logging

from ..errors import FaceloraError
from ..fileio import load_json
from .family import FAMILIES, SD15, ModelFamily

SD15_DIR = SD15.config_dir
TINY_CONFIG_DIR = SD15.tiny_config_dir  # same layout as sd15/: unet/, text_encoder/, vae/ configs
TOKENIZER_DIR = SD15.tokenizer_dir
# Each family's pipeline class, imported with this module as a direct import would be (importing
# diffusers' pipelines logs transformers' start-up warnings; they belong before any work starts).
PIPELINES = {f.name: getattr(diffusers, f.pipeline) for f in FAMILIES}


class BaseModelError(FaceloraError, ValueError):
    """The base model is missing, unreadable, or not an SD1.5 model; the message says which."""


@dataclass
class SDModel:
    """The five parts of SD1.5 that training and sampling use. `name` is the file (or folder)
    name written into LoRA metadata as ss_sd_model_name; `path` is where it was loaded from."""

    unet: UNet2DConditionModel
    text_encoder: CLIPTextModel
    vae: AutoencoderKL
    tokenizer: CLIPTokenizer
    noise_scheduler: DDPMScheduler
    name: str = ""
    path: str = ""
    config_dir: Path = field(default=SD15_DIR, repr=False)  # which shipped config set it follows
    family: ModelFamily = field(default=SD15, repr=False)

    def __repr__(self) -> str:
        return f"SDModel(name={self.name!r}, path={self.path!r}{', tiny' if self.is_tiny else ''})"

    @property
    def is_tiny(self) -> bool:
        """The tiny test model, whose images are noise and never results."""
        return Path(self.config_dir) == self.family.tiny_config_dir


def read_config(config_dir: Path, part: str) -> dict[str, Any]:
    return load_json(Path(config_dir) / part / "config.json", f"the {part} config")


@cache
def shipped_tokenizer() -> CLIPTokenizer:
    """SD1.5's CLIP tokenizer from the files facelora ships (vocab.json, merges.txt)."""
    return CLIPTokenizer.from_pretrained(str(TOKENIZER_DIR))


def noise_scheduler() -> DDPMScheduler:
    """SD1.5's training noise schedule: DDPM, 1000 steps, scaled_linear 0.00085-0.012, epsilon."""
    return DDPMScheduler.from_config(read_config(SD15_DIR, "scheduler"))


def empty_models(config_dir: Path = SD15_DIR) -> tuple[UNet2DConditionModel, CLIPTextModel, AutoencoderKL]:
    """UNet, text encoder and VAE built from a config set with their weights on the `meta`
    device: the structure without the memory, to be filled by load_state_dict(assign=True)."""
    with init_empty_weights():
        return build_models(config_dir)


def build_models(config_dir: Path) -> tuple[UNet2DConditionModel, CLIPTextModel, AutoencoderKL]:
    """UNet, text encoder and VAE from a config set, with freshly initialised weights."""
    unet = UNet2DConditionModel.from_config(read_config(config_dir, "unet"))
    text_encoder = CLIPTextModel(CLIPTextConfig.from_json_file(Path(config_dir) / "text_encoder" / "config.json"))
    vae = AutoencoderKL.from_config(read_config(config_dir, "vae"))
    return unet, text_encoder, vae


@contextmanager
def no_progress_bars() -> Iterator[None]:
    """transformers draws a progress bar for every load and save (of the tiny text encoder, of a
    LoRA adapter); facelora shows its own progress."""
    was_enabled = transformers_logging.is_progress_bar_enabled()
    transformers_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            transformers_logging.enable_progress_bar()


def build_pipeline(model: SDModel, scheduler):
    """The family's pipeline class over the model's own modules, without a safety checker."""
    pipe = PIPELINES[model.family.name](
        vae=model.vae, text_encoder=model.text_encoder, tokenizer=model.tokenizer, unet=model.unet,
        scheduler=scheduler, safety_checker=None, feature_extractor=None, image_encoder=None,
        requires_safety_checker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe
