"""What a Kohya file means, as sd-scripts and the kohya_ss GUI run it: sd-scripts' defaults for
absent keys, and the GUI's conventions (its own key names, 0 or "" meaning "off", `LoRA_type`
naming the network, numbers written as strings, `lr_warmup` in percent, a `dataset_config` file).

kohya.import_kohya reads a file with these; nothing here touches a project.
"""

from __future__ import annotations

import random
import shlex
from typing import Any

from .kohya_network import network_values

# sd-scripts' defaults (library/train_util.py add_*_arguments, library/custom_train_functions.py,
# train_network.py setup_parser, commit 48d368fa) of the parameters facelora implements, as
# TrainConfig holds them: a None default whose meaning is a value is that value (network_dim None
# is networks/lora.py's 4, clip_skip None is 1, max_token_length None is 75, save_precision None
# saves the trained fp32 weights, optimizer_type "" is AdamW). seed None is a random seed: drawn
# at import. resolution has no default (sd-scripts requires it), so facelora's stays.
SD_SCRIPTS_DEFAULTS: dict[str, Any] = {
    "network_module": "networks.lora", "network_dim": 4, "network_alpha": 1.0, "network_dropout": None,
    "network_args": [], "network_weights": None, "network_train_unet_only": False,
    "network_train_text_encoder_only": False,
    "train_batch_size": 1, "max_train_steps": 1600, "max_train_epochs": None, "gradient_accumulation_steps": 1,
    "learning_rate": 2e-6, "unet_lr": None, "text_encoder_lr": None, "optimizer_type": "AdamW",
    "optimizer_args": [], "lr_scheduler": "constant", "lr_scheduler_num_cycles": 1, "lr_scheduler_power": 1.0,
    "lr_warmup_steps": 0, "max_grad_norm": 1.0,
    "enable_bucket": False, "min_bucket_reso": 256, "max_bucket_reso": 1024, "bucket_reso_steps": 64,
    "bucket_no_upscale": False,
    "cache_latents": False, "cache_latents_to_disk": False, "caption_extension": ".caption",
    "shuffle_caption": False, "keep_tokens": 0, "max_token_length": 75, "max_data_loader_n_workers": 8,
    "mixed_precision": "no", "full_fp16": False, "full_bf16": False, "save_precision": "float",
    "gradient_checkpointing": False, "xformers": False, "sdpa": False, "torch_compile": False, "clip_skip": 1,
    "noise_offset": 0.0, "min_snr_gamma": None,
    "save_every_n_epochs": None, "save_every_n_steps": None, "save_last_n_epochs": None, "save_state": False,
    "sample_every_n_epochs": None, "sample_prompts": None, "sample_sampler": "ddim",
}


def sd_scripts_defaults() -> dict[str, Any]:
    """The values a Kohya file's absent keys take; the seed sd-scripts would draw, drawn now."""
    return {**SD_SCRIPTS_DEFAULTS, "seed": random.randint(0, 2**31 - 1)}


# The kohya_ss GUI's names -> sd-scripts' (its lora_gui.py passes them on so).
GUI_NAMES = {
    "optimizer": "optimizer_type", "max_resolution": "resolution", "learning_rate_te": "text_encoder_lr",
    "lora_network_weights": "network_weights",
}
# GUI values where 0 means "off", which sd-scripts spells None (the GUI leaves them out).
ZERO_IS_OFF = {
    "max_train_epochs", "max_train_steps", "save_every_n_epochs", "save_every_n_steps", "save_last_n_epochs",
    "min_snr_gamma", "sample_every_n_epochs", "noise_offset", "max_token_length", "seed", "clip_skip",
    "multires_noise_iterations", "multires_noise_discount", "ip_noise_gamma", "scale_weight_norms",
    "network_dropout",
}
# Sections of the GUI's config.toml that hold the GUI's own settings, not a training run's.
GUI_SECTIONS = {"settings", "server", "configuration", "dataset_preparation", "huggingface", "sdxl",
                "wd14_caption", "metadata"}


def is_off(value: Any) -> bool:
    """A value that changes nothing in Kohya: empty, false or zero."""
    return value in ("", None, False, 0, [], "0", "0.0", "none", "None")


def number(value: Any) -> Any:
    """The GUI writes numbers as strings ("0.0001", "64.0"): read them as numbers."""
    if isinstance(value, str):
        try:
            f = float(value)
        except ValueError:
            return value
        return int(f) if f.is_integer() else f
    return int(value) if isinstance(value, float) and value.is_integer() else value


def gui_values(flat: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """A kohya_ss GUI file's keys as sd-scripts' arguments (off values left out, as the GUI leaves
    them off the command line), and notes on what was read differently."""
    notes: list[str] = []
    out: dict[str, Any] = {}
    for key, value in flat.items():
        key = GUI_NAMES.get(key, key)
        if key in ZERO_IS_OFF and is_off(value) or value in ("", None):
            continue
        out[key] = number(value)
    if "epoch" in out:  # the GUI's epochs; its max_train_epochs, when set, wins
        out.setdefault("max_train_epochs", out["epoch"])
        del out["epoch"]
    warmup = out.pop("lr_warmup", None)
    if warmup and "lr_warmup_steps" not in out:
        out["lr_warmup_steps"] = float(warmup) / 100.0
    if isinstance(out.get("xformers"), str):  # "xformers" | "sdpa" | "none"
        out["sdpa"] = out["xformers"] == "sdpa"  # sd-scripts' --sdpa
        out["xformers"] = out["xformers"] == "xformers"
    for key in ("optimizer_args", "network_args"):
        if isinstance(out.get(key), str):
            out[key] = shlex.split(out[key])
    if isinstance(out.get("resolution"), (int, list)):
        res = out["resolution"]
        out["resolution"] = ",".join(map(str, res)) if isinstance(res, list) else str(res)
    te = out.get("text_encoder_lr")
    if isinstance(te, list):  # sd-scripts takes one rate per text encoder; SD1.5 has one
        if len(set(te)) > 1:
            notes.append(f"text_encoder_lr {te}: SD1.5 has one text encoder, so {te[0]} is used.")
        out["text_encoder_lr"] = number(te[0]) if te else None
    _noise_offset_type(out)
    _train_parts(out)
    notes += network_values(out)
    return out, notes


def _train_parts(out: dict[str, Any]) -> None:
    """A rate of 0 trains that part not at all: the GUI then trains the UNet only (text_encoder_lr
    0) or the text encoder only (unet_lr 0) and leaves the 0 off (lora_gui.py
    resolve_network_train_flags); an absent rate is the GUI's 1e-4."""
    te, unet = (out.get(k) for k in ("text_encoder_lr", "unet_lr"))
    if te == 0 and unet != 0:
        out["network_train_unet_only"] = True
    if unet == 0 and te != 0:
        out["network_train_text_encoder_only"] = True
    for key in ("text_encoder_lr", "unet_lr"):
        if out.get(key) == 0:
            del out[key]


def _noise_offset_type(out: dict[str, Any]) -> None:
    """The GUI's noise_offset_type picks one kind of noise: "Multires" passes on the multires
    iterations and discount, "Original" (its default) the noise offset."""
    kind = out.pop("noise_offset_type", "Original")
    off = ("noise_offset", "adaptive_noise_scale", "noise_offset_random_strength") if kind == "Multires" else \
        ("multires_noise_iterations", "multires_noise_discount")
    for key in off:
        out.pop(key, None)
