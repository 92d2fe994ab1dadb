"""The base Stable Diffusion 1.5 model: loading it from a single .safetensors checkpoint, a
diffusers folder or a .ckpt (only when asked), saving it back in either layout, turning captions
into text embeddings, and building an inference pipeline with A1111's sampler names.

A single-file checkpoint carries no configs and no tokenizer: facelora ships SD1.5's configs and
CLIP's tokenizer files (sd15/), so loading never touches the network.
"""

from __future__ import annotations

import os
import pickle
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import torch
from accelerate import init_empty_weights
from diffusers import (
    AutoencoderKL,
    DDIMScheduler,
    DDPMScheduler,
    DPMSolverMultistepScheduler,
    EulerAncestralDiscreteScheduler,
    EulerDiscreteScheduler,
    StableDiffusionPipeline,
    UNet2DConditionModel,
)
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer
from transformers.utils import logging as transformers_logging

from ..errors import FaceloraError
from . import ldm
from ..fileio import clear_write_errors, load_json, usual_permissions
from .files import read_header, read_tensors, write_safetensors

SD15_DIR = Path(__file__).parent / "sd15"
TINY_CONFIG_DIR = SD15_DIR / "tiny"  # same layout as sd15/: unet/, text_encoder/, vae/ configs
TOKENIZER_DIR = SD15_DIR / "tokenizer"
TINY = "tiny"


class BaseModelError(FaceloraError, ValueError):
    """The base model is missing, unreadable, or not an SD1.5 model; the message says which."""


class UnknownSamplerError(FaceloraError, ValueError):
    """A sampler name that is not in SAMPLERS."""


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

    def __repr__(self) -> str:
        return f"SDModel(name={self.name!r}, path={self.path!r}{', tiny' if self.is_tiny else ''})"

    @property
    def is_tiny(self) -> bool:
        """The tiny test model, whose images are noise and never results."""
        return Path(self.config_dir) == TINY_CONFIG_DIR


# --- configs shipped with facelora -------------------------------------------------------------


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
        unet = UNet2DConditionModel.from_config(read_config(config_dir, "unet"))
        text_encoder = CLIPTextModel(CLIPTextConfig.from_json_file(Path(config_dir) / "text_encoder" / "config.json"))
        vae = AutoencoderKL.from_config(read_config(config_dir, "vae"))
    return unet, text_encoder, vae


# --- loading -----------------------------------------------------------------------------------


def load_base(path_or_name: str, allow_pickle: bool = False, *, dtype: torch.dtype = torch.float32) -> SDModel:
    """Load SD1.5 from 'tiny' (the test model), a single .safetensors checkpoint, a diffusers
    folder, or (only with allow_pickle) a .ckpt. Weights come back in `dtype` (fp32 for training)."""
    if str(path_or_name) == TINY:
        from .tiny import tiny_path  # tiny builds on this module

        path_or_name = str(tiny_path())
    path = Path(path_or_name).expanduser()
    if path.is_file() and path.name == "model_index.json":
        path = path.parent
    if not path.exists():
        raise BaseModelError(
            f"No base model at '{path_or_name}': no such file or folder. facelora never downloads "
            f"models; download an SD1.5 checkpoint yourself and give its path. {ldm.EXPECTED}"
        )
    if path.is_dir():
        return _load_diffusers_folder(path, allow_pickle, dtype)
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        shapes, _ = read_header(path, "base model", BaseModelError)
        _check_single_file(path, shapes)
        checkpoint = read_tensors(path, "base model", BaseModelError)
    elif suffix in (".ckpt", ".pt", ".pth", ".bin"):
        checkpoint = _read_pickle(path, allow_pickle)
        _check_single_file(path, {k: tuple(v.shape) for k, v in checkpoint.items()})
    else:
        raise BaseModelError(f"'{path.name}' is neither a .safetensors checkpoint nor a diffusers folder. {ldm.EXPECTED}")
    return _from_checkpoint(checkpoint, path, dtype)


def _check_single_file(path: Path, shapes: dict[str, tuple[int, ...]]) -> None:
    problem = ldm.identify_problem(shapes)
    if problem:
        raise BaseModelError(f"{path.name}: {problem} {ldm.EXPECTED}")


def _read_pickle(path: Path, allow_pickle: bool) -> dict[str, torch.Tensor]:
    if not allow_pickle:
        raise BaseModelError(
            f"{path.name} is a pickle checkpoint ({path.suffix}), which can run code when it is loaded. "
            f"Use the model's .safetensors version, or, if you trust the file, pass --allow-pickle "
            f"(allow_pickle=True): facelora then reads it with torch.load(weights_only=True), which "
            f"refuses anything but tensors."
        )
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise BaseModelError(
            f"{path.name} could not be read as a checkpoint of plain tensors ({first}). It may be "
            f"truncated, or hold Python objects that torch.load(weights_only=True) refuses to run. "
            f"Use the model's .safetensors version."
        ) from None
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise BaseModelError(f"{path.name} holds a {type(obj).__name__}, not a checkpoint's weights. {ldm.EXPECTED}")
    return {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}


def _config_dir_for(path: Path, shapes: dict[str, tuple[int, ...]]) -> Path:
    """SD1.5 or the tiny model, from the UNet's first width and the text encoder's width."""
    conv_in = shapes.get(ldm.UNET_PREFIX + "input_blocks.0.0.weight", (0,))[0]
    token = shapes.get(ldm.CLIP_PREFIX + "text_model.embeddings.token_embedding.weight",
                       shapes.get(ldm.CLIP_PREFIX + "embeddings.token_embedding.weight", (0, 0)))[1]
    for config_dir in (SD15_DIR, TINY_CONFIG_DIR):
        unet, te = read_config(config_dir, "unet"), read_config(config_dir, "text_encoder")
        if conv_in == unet["block_out_channels"][0] and token == te["hidden_size"]:
            return config_dir
    raise BaseModelError(
        f"{path.name}: its UNet starts {conv_in} channels wide and its text encoder is {token} wide; "
        f"SD1.5's are 320 and 768. {ldm.EXPECTED}"
    )


def _from_checkpoint(checkpoint: dict[str, torch.Tensor], path: Path, dtype: torch.dtype) -> SDModel:
    config_dir = _config_dir_for(path, {k: tuple(v.shape) for k, v in checkpoint.items()})
    unet, text_encoder, vae = empty_models(config_dir)
    unet_sd, vae_sd, te_sd = ldm.to_diffusers(checkpoint, read_config(config_dir, "unet"), read_config(config_dir, "vae"))
    checkpoint.clear()  # _fill copies tensor by tensor; let each original go as soon as it is copied
    _fill(unet, unet_sd, "UNet", path, dtype)
    _fill(vae, vae_sd, "VAE", path, dtype)
    _fill(text_encoder, ldm.text_encoder_keys(te_sd, text_encoder), "text encoder", path, dtype)
    return SDModel(unet.eval(), text_encoder.eval(), vae.eval(), shipped_tokenizer(), noise_scheduler(),
                   name=path.name, path=str(path.resolve()), config_dir=config_dir)


def _fill(module: torch.nn.Module, state_dict: dict[str, torch.Tensor], what: str, path: Path, dtype: torch.dtype) -> None:
    """Put the weights into a meta-device module; every weight must be there, with its shape.
    Each tensor is copied: a file's tensors need not be 64-byte aligned, and unaligned weights
    make CPU kernels take other (slower, not bit-identical) paths."""
    state_dict = {k: _own_copy(state_dict.pop(k), dtype) for k in list(state_dict)}
    try:
        missing, unexpected = module.load_state_dict(state_dict, strict=False, assign=True)
    except RuntimeError as e:
        detail = next((line.strip() for line in str(e).splitlines() if "size mismatch" in line), str(e)[:300])
        raise BaseModelError(f"{path.name}: its {what} weights do not fit SD1.5's {what} ({detail}). {ldm.EXPECTED}") from None
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} {what} weights are missing (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} are unknown (e.g. {unexpected[0]})")
        raise BaseModelError(f"{path.name} is incomplete or not SD1.5: {'; '.join(parts)}. {ldm.EXPECTED}")


def _own_copy(t: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    return t.to(dtype, copy=True) if t.is_floating_point() else t.clone()


def _align(module: torch.nn.Module) -> None:
    """Copy the weights that sit unaligned in memory (see _fill)."""
    for p in module.parameters():
        if p.data_ptr() % 64:
            p.data = p.data.clone()


def _load_diffusers_folder(folder: Path, allow_pickle: bool, dtype: torch.dtype) -> SDModel:
    problem = _diffusers_folder_problem(folder)
    if problem:
        raise BaseModelError(f"{problem} {ldm.EXPECTED}")
    variants = {p: _weights_variant(folder / p, allow_pickle) for p in ("unet", "text_encoder", "vae")}
    try:
        unet = UNet2DConditionModel.from_pretrained(folder, subfolder="unet", torch_dtype=dtype, **variants["unet"])
        vae = AutoencoderKL.from_pretrained(folder, subfolder="vae", torch_dtype=dtype, **variants["vae"])
        with _no_progress_bars():
            text_encoder = CLIPTextModel.from_pretrained(folder / "text_encoder", dtype=dtype, **variants["text_encoder"])
    except (OSError, ValueError, RuntimeError, KeyError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise BaseModelError(f"The diffusers folder {folder} could not be loaded ({first}). {ldm.EXPECTED}") from None
    for module in (unet, vae, text_encoder):
        _align(module)
    has_tokenizer = (folder / "tokenizer" / "vocab.json").is_file()
    tokenizer = CLIPTokenizer.from_pretrained(str(folder / "tokenizer")) if has_tokenizer else shipped_tokenizer()
    tiny_width = read_config(TINY_CONFIG_DIR, "unet")["block_out_channels"][0]
    config_dir = TINY_CONFIG_DIR if unet.config.block_out_channels[0] == tiny_width else SD15_DIR
    return SDModel(unet.eval(), text_encoder.eval(), vae.eval(), tokenizer, noise_scheduler(),
                   name=folder.name, path=str(folder.resolve()), config_dir=config_dir)


def _diffusers_folder_problem(folder: Path) -> str | None:
    """Why a folder is not an SD1.5 diffusers model, saying what it is; None when it is one."""
    index_file = folder / "model_index.json"
    if not index_file.is_file():
        return f"The folder {folder} has no model_index.json, so it is not a diffusers model."
    index = load_json(index_file, "the diffusers index")
    if not isinstance(index, dict):
        return f"{index_file} is not a diffusers index (a JSON object of the model's parts)."
    if "text_encoder_2" in index or "XL" in str(index.get("_class_name", "")):
        return f"{folder.name} is an SDXL diffusers model (it has a second text encoder)."
    missing = [p + "/" for p in ("unet", "text_encoder", "vae") if not (folder / p / "config.json").is_file()]
    if missing:
        return f"The diffusers folder {folder} lacks {', '.join(missing)}."
    unet = read_config(folder, "unet")
    if unet.get("addition_embed_type") == "text_time":
        return f"{folder.name} is an SDXL diffusers model (its UNet has a size embedding)."
    if unet.get("cross_attention_dim") == 1024:
        return f"{folder.name} is an SD2.x diffusers model (its cross attention is 1024 wide, SD1.5's is 768)."
    if unet.get("in_channels", 4) != 4:
        return f"{folder.name} is an inpainting or instruct model ({unet['in_channels']} UNet input channels)."
    return None


def _weights_variant(part: Path, allow_pickle: bool) -> dict[str, Any]:
    """from_pretrained's file choice for one part: safetensors (plain or fp16 variant), pickles
    (.bin) only when allowed."""
    names = {p.name for p in part.iterdir()}
    if any(n.endswith(".safetensors") for n in names):
        fp16_only = not any(n.endswith(".safetensors") and ".fp16." not in n for n in names)
        return {"use_safetensors": True, **({"variant": "fp16"} if fp16_only else {})}
    if any(n.endswith(".bin") for n in names):
        if not allow_pickle:
            raise BaseModelError(
                f"{part} holds only pickle weights (.bin), which can run code when loaded. Use a "
                f"model with .safetensors weights or, if you trust it, pass --allow-pickle."
            )
        fp16_only = not any(n.endswith(".bin") and ".fp16." not in n for n in names)
        return {"use_safetensors": False, **({"variant": "fp16"} if fp16_only else {})}
    raise BaseModelError(f"{part} has a config but no weights (.safetensors). {ldm.EXPECTED}")


@contextmanager
def _no_progress_bars() -> Iterator[None]:
    """transformers draws a progress bar for every load and save of the tiny text encoder; the
    CLI shows its own progress."""
    was_enabled = transformers_logging.is_progress_bar_enabled()
    transformers_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            transformers_logging.enable_progress_bar()


# --- saving ------------------------------------------------------------------------------------


def single_file_state_dict(model: SDModel, dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
    """The model's weights under the single-file (LDM) names that A1111, ComfyUI and Kohya read."""
    sd = ldm.to_single_file(
        model.unet.state_dict(), model.vae.state_dict(), model.text_encoder.state_dict(),
        dict(model.unet.config), dict(model.vae.config), model.text_encoder.config.max_position_embeddings,
    )
    return {k: (v.to(dtype) if dtype is not None and v.is_floating_point() else v).detach().cpu() for k, v in sd.items()}


def save_single_file(model: SDModel, path: str | Path, dtype: torch.dtype | None = None) -> None:
    """Write the model as one .safetensors checkpoint (atomically); load_base reads it back."""
    write_safetensors(Path(path), single_file_state_dict(model, dtype), metadata={"format": "pt"})


def save_diffusers(model: SDModel, folder: str | Path) -> None:
    """Write the model as a diffusers folder (model_index.json, unet/, text_encoder/, vae/,
    tokenizer/, scheduler/) that load_base and StableDiffusionPipeline.from_pretrained read.
    Built beside the target and renamed into place, so a failure leaves any earlier folder."""
    folder = Path(folder)
    if folder.exists() and any(folder.iterdir()) and not (folder / "model_index.json").is_file():
        raise BaseModelError(f"{folder} exists and is not a diffusers model; facelora will not replace it. "
                             f"Choose another folder.")
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=folder.parent))
    try:
        with clear_write_errors(folder), _no_progress_bars():
            _pipeline(model, model.noise_scheduler).save_pretrained(tmp, safe_serialization=True)
            usual_permissions(tmp)
            if folder.exists():
                old = folder.with_name(f".{folder.name}.old-{os.getpid()}")
                os.replace(folder, old)
                os.replace(tmp, folder)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp, folder)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


# --- text --------------------------------------------------------------------------------------


def tokenize(model: SDModel, captions: list[str]) -> torch.Tensor:
    """Token ids [len(captions), 77]: BOS, the caption (truncated), EOS, padded with EOS."""
    length = model.text_encoder.config.max_position_embeddings
    return model.tokenizer(list(captions), padding="max_length", max_length=length, truncation=True,
                           return_tensors="pt").input_ids


def encode_prompt(model: SDModel, input_ids: torch.Tensor, clip_skip: int = 1) -> torch.Tensor:
    """The UNet's text conditioning [batch, 77, hidden]. clip_skip 1 is the last layer (after the
    final layer norm); clip_skip n takes the n-th last layer's hidden state and applies the final
    layer norm to it, as Kohya and A1111 do."""
    te = model.text_encoder
    layers = te.config.num_hidden_layers
    if not 1 <= clip_skip <= layers:
        raise FaceloraError(f"clip_skip {clip_skip} is out of range: the text encoder has {layers} layers (use 1 or 2).")
    input_ids = input_ids.to(te.device)
    if clip_skip == 1:
        return te(input_ids)[0]
    hidden = te(input_ids, output_hidden_states=True).hidden_states[-clip_skip]
    return final_layer_norm(te)(hidden)


def final_layer_norm(text_encoder: CLIPTextModel) -> torch.nn.LayerNorm:
    """transformers 5 flattened CLIPTextModel; older versions keep it under `text_model`."""
    return getattr(text_encoder, "text_model", text_encoder).final_layer_norm


def prompt_embeds(model: SDModel, prompts: list[str], clip_skip: int = 1) -> torch.Tensor:
    """tokenize + encode_prompt: pass the result to a pipeline as prompt_embeds= (and
    negative_prompt_embeds=) to sample with A1111's clip_skip."""
    return encode_prompt(model, tokenize(model, prompts), clip_skip)


# --- sampling ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sampler:
    display: str  # the name A1111 shows
    scheduler: type
    options: dict[str, Any]


# The one table of samplers, by A1111 name. k-diffusion samplers (A1111's Euler, DPM++) space
# their steps over the whole noise range ("linspace"); A1111's DDIM uses "leading" with offset 1.
SAMPLERS: dict[str, Sampler] = {
    "euler_a": Sampler("Euler a", EulerAncestralDiscreteScheduler, {"timestep_spacing": "linspace"}),
    "euler": Sampler("Euler", EulerDiscreteScheduler, {"timestep_spacing": "linspace"}),
    "dpmpp_2m": Sampler("DPM++ 2M", DPMSolverMultistepScheduler,
                        {"algorithm_type": "dpmsolver++", "solver_order": 2, "timestep_spacing": "linspace"}),
    "dpmpp_2m_karras": Sampler("DPM++ 2M Karras", DPMSolverMultistepScheduler,
                               {"algorithm_type": "dpmsolver++", "solver_order": 2, "use_karras_sigmas": True}),
    "ddim": Sampler("DDIM", DDIMScheduler, {"timestep_spacing": "leading", "steps_offset": 1, "set_alpha_to_one": False}),
}


def sampler_key(name: str) -> str:
    """'Euler a', 'euler_a', 'DPM++ 2M Karras', 'dpmpp_2m_karras' ... -> the SAMPLERS key."""
    key = name.strip().lower().replace("++", "pp").replace("+", "p").replace("-", "_").replace(" ", "_")
    if key not in SAMPLERS:
        names = ", ".join(f"{k} ('{s.display}')" for k, s in SAMPLERS.items())
        raise UnknownSamplerError(f"Unknown sampler '{name}'. Choose one of: {names}.")
    return key


def make_scheduler(model: SDModel, sampler: str = "euler_a"):
    s = SAMPLERS[sampler_key(sampler)]
    return s.scheduler.from_config(model.noise_scheduler.config, **s.options)


def make_pipeline(model: SDModel, sampler: str = "euler_a") -> StableDiffusionPipeline:
    """A StableDiffusionPipeline over the model's own modules (no copies, no safety checker), so
    a LoRANetwork applied to the model acts on its images. For A1111's clip_skip, pass
    prompt_embeds(model, prompts, clip_skip) as prompt_embeds= rather than the pipeline's
    clip_skip argument (whose numbering is one lower and which fails on transformers 5)."""
    return _pipeline(model, make_scheduler(model, sampler))


def _pipeline(model: SDModel, scheduler) -> StableDiffusionPipeline:
    pipe = StableDiffusionPipeline(
        vae=model.vae, text_encoder=model.text_encoder, tokenizer=model.tokenizer, unet=model.unet,
        scheduler=scheduler, safety_checker=None, feature_extractor=None, image_encoder=None,
        requires_safety_checker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe
