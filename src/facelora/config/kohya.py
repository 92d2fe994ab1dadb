"""Kohya's training TOML: written for sd-scripts' `train_network.py --config_file`, and read
from sd-scripts' or the kohya_ss GUI's files."""

from __future__ import annotations

import shlex
import tomllib
from pathlib import Path
from typing import Any

import tomli_w

from ..errors import ConfigError
from .fields import PROJECT_FOLDERS, TrainConfig
from .overrides import apply


# Where each parameter goes in the sectioned TOML that sd-scripts writes with --output_config
# (sd-scripts flattens the tables again when it reads the file).
_KOHYA_SECTIONS = {
    "model_arguments": ["pretrained_model_name_or_path"],
    "additional_network_arguments": [
        "network_module", "network_dim", "network_alpha", "network_args", "network_weights",
        "network_train_unet_only", "network_train_text_encoder_only", "unet_lr", "text_encoder_lr",
    ],
    "optimizer_arguments": [
        "optimizer_type", "optimizer_args", "learning_rate", "max_grad_norm", "lr_scheduler",
        "lr_scheduler_num_cycles", "lr_scheduler_power", "lr_warmup_steps",
    ],
    "dataset_arguments": [
        "train_data_dir", "resolution", "enable_bucket", "min_bucket_reso", "max_bucket_reso",
        "bucket_reso_steps", "cache_latents", "cache_latents_to_disk", "caption_extension",
        "shuffle_caption", "keep_tokens", "max_token_length",
    ],
    "training_arguments": [
        "output_dir", "output_name", "save_precision", "save_every_n_epochs", "save_every_n_steps",
        "save_last_n_epochs", "save_state", "train_batch_size", "max_train_steps", "max_train_epochs",
        "max_data_loader_n_workers", "seed", "gradient_checkpointing", "gradient_accumulation_steps",
        "mixed_precision", "xformers", "sdpa", "torch_compile", "clip_skip", "noise_offset", "min_snr_gamma",
        "sample_every_n_epochs", "sample_prompts", "sample_sampler",
    ],
    "logging_arguments": ["logging_dir"],
}

# kohya_ss GUI spellings -> sd-scripts names.
_GUI_ALIASES = {
    "optimizer": "optimizer_type",
    "epoch": "max_train_epochs",
    "max_resolution": "resolution",
    "lr_warmup": None,  # a percentage in the GUI; handled below
    "lr_scheduler_args": None,
}
# Parameters of Kohya's that facelora accepts silently because they change nothing here.
_HARMLESS = {
    "persistent_data_loader_workers", "log_with", "log_prefix", "lowram", "highvram",
    "mem_eff_attn", "full_fp16", "full_bf16", "save_model_as", "prior_loss_weight", "reg_data_dir",
    "bucket_no_upscale", "caption_dropout_rate", "caption_tag_dropout_rate", "color_aug", "flip_aug",
    "random_crop", "training_comment", "no_half_vae", "vae", "LoRA_type", "output_config", "config_file",
}


def export_kohya(cfg: TrainConfig, project_root: Path) -> str:
    """A TOML that sd-scripts' `train_network.py --config_file` runs as it is."""
    data = cfg.model_dump()
    if not data["output_name"]:
        raise ConfigError("Set output_name before exporting: Kohya needs a file name.")
    for key in PROJECT_FOLDERS:
        data[key] = str((Path(project_root) / data[key]).resolve())
    if cfg.pretrained_model_name_or_path and cfg.pretrained_model_name_or_path != "tiny":
        data["pretrained_model_name_or_path"] = str(Path(cfg.pretrained_model_name_or_path).resolve())
    if 0 < cfg.lr_warmup_steps < 1:
        data["lr_warmup_steps"] = cfg.warmup_steps(data["max_train_steps"])
    else:
        data["lr_warmup_steps"] = int(cfg.lr_warmup_steps)
    out: dict[str, dict[str, Any]] = {}
    for section, keys in _KOHYA_SECTIONS.items():
        out[section] = {k: data[k] for k in keys if data.get(k) not in (None, [])}
    return tomli_w.dumps(out)


def import_kohya(text: str, base: TrainConfig | None = None) -> tuple[TrainConfig, list[str]]:
    """Read a Kohya training TOML (sd-scripts' argparse names, tables flattened as sd-scripts
    does) or a kohya_ss GUI config. Returns the config and notes on ignored keys."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"Not a valid TOML file: {e}") from None
    flat: dict[str, Any] = {}
    for k, v in raw.items():
        if isinstance(v, dict):
            flat.update(v)
        else:
            flat[k] = v
    return _from_kohya_values(flat, base)


def _from_kohya_values(flat: dict[str, Any], base: TrainConfig | None) -> tuple[TrainConfig, list[str]]:
    for flag in ("v2", "v_parameterization", "sdxl"):
        if flat.get(flag):
            raise ConfigError(f"This config trains with {flag}=true; facelora trains SD1.5 LoRA only.")
    notes: list[str] = []
    updates: dict[str, Any] = {}
    for key, value in flat.items():
        key = _GUI_ALIASES.get(key, key) if key in _GUI_ALIASES else key
        if key is None or value in ("", None):
            continue
        if key in ("optimizer_args", "network_args") and isinstance(value, str):
            value = shlex.split(value)
        if key == "resolution" and isinstance(value, (int, list)):
            value = ",".join(str(v) for v in value) if isinstance(value, list) else str(value)
        if key in ("xformers",) and isinstance(value, str):  # kohya_ss GUI: "xformers" | "sdpa" | "none"
            updates["sdpa"] = value == "sdpa"
            value = value == "xformers"
        if key in TrainConfig.model_fields:
            updates[key] = value
        elif key not in _HARMLESS and key not in ("v2", "v_parameterization", "sdxl"):
            notes.append(key)
    if "lr_warmup" in flat and "lr_warmup_steps" not in flat and flat["lr_warmup"]:
        updates["lr_warmup_steps"] = float(flat["lr_warmup"]) / 100.0
    cfg = apply(base or TrainConfig(), updates)
    msgs = [f"Ignored Kohya parameters facelora does not use: {', '.join(sorted(notes))}."] if notes else []
    return cfg, msgs

