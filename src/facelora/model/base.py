"""Loading the base model (SD1.5) from a single .safetensors checkpoint, a diffusers folder or a
.ckpt (only when asked), or the tiny test model by the name 'tiny'.

A single-file checkpoint carries no configs and no tokenizer: facelora ships SD1.5's configs and
CLIP's tokenizer files (sd15/), so loading never touches the network.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from transformers import CLIPTextModel, CLIPTokenizer

from ..fileio import load_json
from .family import EXPECTED, SD15, TINY
from .files import read_header, read_tensors
from .sdmodel import (
    SD15_DIR,
    TINY_CONFIG_DIR,
    BaseModelError,
    SDModel,
    empty_models,
    no_progress_bars,
    noise_scheduler,
    read_config,
    shipped_tokenizer,
)
from .tiny import tiny_path

ldm = SD15.key_map()  # the single-file key names this loader reads

# --- loading -----------------------------------------------------------------------------------


def load_base(path_or_name: str, allow_pickle: bool = False, *, dtype: torch.dtype = torch.float32) -> SDModel:
    """Load SD1.5 from 'tiny' (the test model), a single .safetensors checkpoint, a diffusers
    folder, or (only with allow_pickle) a .ckpt. Weights come back in `dtype` (fp32 for training)."""
    if str(path_or_name) == TINY:
        path_or_name = str(tiny_path())
    path = Path(path_or_name).expanduser()
    if path.is_file() and path.name == "model_index.json":
        path = path.parent
    if not path.exists():
        raise BaseModelError(
            "No base model at '{path}': no such file or folder. facelora never downloads "
            "models; download an SD1.5 checkpoint yourself and give its path. {expected}",
            path=str(path_or_name), expected=EXPECTED
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
        raise BaseModelError("'{name}' is neither a .safetensors checkpoint nor a diffusers folder. {expected}",
                             name=path.name, expected=EXPECTED)
    return _from_checkpoint(checkpoint, path, dtype)


def _check_single_file(path: Path, shapes: dict[str, tuple[int, ...]]) -> None:
    problem = ldm.identify_problem(shapes)
    if problem:
        raise BaseModelError("{name}: {problem} {expected}", name=path.name, problem=problem, expected=EXPECTED)


def _read_pickle(path: Path, allow_pickle: bool) -> dict[str, torch.Tensor]:
    if not allow_pickle:
        raise BaseModelError(
            "{name} is a pickle checkpoint ({suffix}), which can run code when it is loaded. "
            "Use the model's .safetensors version, or, if you trust the file, pass --allow-pickle "
            "(allow_pickle=True): facelora then reads it with torch.load(weights_only=True), which "
            "refuses anything but tensors.", name=path.name, suffix=path.suffix
        )
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise BaseModelError(
            "{name} could not be read as a checkpoint of plain tensors ({error}). It may be "
            "truncated, or hold Python objects that torch.load(weights_only=True) refuses to run. "
            "Use the model's .safetensors version.", name=path.name, error=first
        ) from None
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise BaseModelError("{name} holds a {type}, not a checkpoint's weights. {expected}", name=path.name,
                             type=type(obj).__name__, expected=EXPECTED)
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
        "{name}: its UNet starts {conv_in} channels wide and its text encoder is {token} wide; "
        "SD1.5's are 320 and 768. {expected}", name=path.name, conv_in=conv_in, token=token, expected=EXPECTED
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
        raise BaseModelError("{name}: its {what} weights do not fit SD1.5's {what} ({detail}). {expected}",
                             name=path.name, what=what, detail=detail, expected=EXPECTED) from None
    if missing or unexpected:
        values = dict(name=path.name, what=what, n=len(missing), key=(missing or [""])[0], unknown=len(unexpected),
                      other=(unexpected or [""])[0], expected=EXPECTED)
        if missing and unexpected:
            raise BaseModelError("{name} is incomplete or not SD1.5: {n} {what} weights are missing (e.g. {key}); "
                                 "{unknown} are unknown (e.g. {other}). {expected}", **values)
        raise BaseModelError("{name} is incomplete or not SD1.5: {n} {what} weights are missing (e.g. {key}). "
                             "{expected}" if missing else "{name} is incomplete or not SD1.5: {unknown} are unknown "
                             "(e.g. {other}). {expected}", **values)


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
        raise BaseModelError("{problem} {expected}", problem=problem, expected=EXPECTED)
    variants = {p: _weights_variant(folder / p, allow_pickle) for p in ("unet", "text_encoder", "vae")}
    try:
        unet = UNet2DConditionModel.from_pretrained(folder, subfolder="unet", torch_dtype=dtype, **variants["unet"])
        vae = AutoencoderKL.from_pretrained(folder, subfolder="vae", torch_dtype=dtype, **variants["vae"])
        with no_progress_bars():
            text_encoder = CLIPTextModel.from_pretrained(folder / "text_encoder", dtype=dtype, **variants["text_encoder"])
    except (OSError, ValueError, RuntimeError, KeyError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise BaseModelError("The diffusers folder {folder} could not be loaded ({error}). {expected}",
                             folder=str(folder), error=first, expected=EXPECTED) from None
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
                "{part} holds only pickle weights (.bin), which can run code when loaded. Use a "
                "model with .safetensors weights or, if you trust it, pass --allow-pickle.", part=str(part)
            )
        fp16_only = not any(n.endswith(".bin") and ".fp16." not in n for n in names)
        return {"use_safetensors": False, **({"variant": "fp16"} if fp16_only else {})}
    raise BaseModelError("{part} has a config but no weights (.safetensors). {expected}", part=str(part), expected=EXPECTED)
