"""Kohya's training TOML: written for sd-scripts' `train_network.py --config_file`, and read
from sd-scripts' or the kohya_ss GUI's files."""

from __future__ import annotations

import json
import shlex
import tomllib
from pathlib import Path
from typing import Any

import tomli_w

from ..errors import ConfigError, FaceloraError
from ..networks import check_args
from .fields import OPTIONAL_PROJECT_FOLDERS, PROJECT_FOLDERS, TrainConfig
from .kohya_dataset import DATASET_CONFIG_FILE, needs_dataset_config
from .kohya_gui import GUI_NAMES, GUI_SECTIONS, gui_values, is_off, sd_scripts_defaults
from .overrides import LIST_FIELDS, apply
from .values import parse_kv_args


# Where each parameter goes in the sectioned TOML that sd-scripts writes with --output_config
# (sd-scripts flattens the tables again when it reads the file).
_KOHYA_SECTIONS = {
    "model_arguments": ["pretrained_model_name_or_path"],
    "additional_network_arguments": [
        "network_module", "network_dim", "network_alpha", "network_dropout", "network_args", "network_weights",
        "network_train_unet_only", "network_train_text_encoder_only", "unet_lr", "text_encoder_lr",
    ],
    "optimizer_arguments": [
        "optimizer_type", "optimizer_args", "learning_rate", "max_grad_norm", "lr_scheduler",
        "lr_scheduler_num_cycles", "lr_scheduler_power", "lr_warmup_steps",
    ],
    "dataset_arguments": [
        "train_data_dir", "dataset_config", "resolution", "enable_bucket", "min_bucket_reso", "max_bucket_reso",
        "bucket_reso_steps", "bucket_no_upscale", "cache_latents", "cache_latents_to_disk", "caption_extension",
        "shuffle_caption", "keep_tokens", "max_token_length", "alpha_mask", "reg_data_dir", "caption_dropout_rate",
        "caption_dropout_every_n_epochs", "caption_tag_dropout_rate",
    ],
    "training_arguments": [
        "output_dir", "output_name", "save_precision", "save_every_n_epochs", "save_every_n_steps",
        "save_last_n_epochs", "save_state", "train_batch_size", "max_train_steps", "max_train_epochs",
        "max_data_loader_n_workers", "seed", "gradient_checkpointing", "gradient_accumulation_steps",
        "mixed_precision", "full_fp16", "full_bf16", "xformers", "sdpa", "torch_compile", "clip_skip",
        "noise_offset", "min_snr_gamma",
        "sample_every_n_epochs", "sample_prompts", "sample_sampler",
        "masked_loss", "prior_loss_weight", "validation_split", "validation_seed", "validate_every_n_steps",
        "validate_every_n_epochs", "max_validation_steps", "multires_noise_iterations",
        "multires_noise_discount", "ip_noise_gamma", "debiased_estimation_loss", "scale_weight_norms",
    ],
    "logging_arguments": ["logging_dir"],
}

# Parameters of Kohya's that facelora accepts silently because they change nothing here (or are
# the kohya_ss GUI's own: its folders, threads, launch settings).
_HARMLESS = {
    "persistent_data_loader_workers", "log_with", "log_prefix", "lowram", "highvram",
    "mem_eff_attn", "save_model_as", "training_comment", "no_half_vae", "vae",
    "output_config", "config_file",
    "num_cpu_threads_per_process", "noise_offset_type", "models_dir", "config_dir", "state_dir", "vae_dir",
    "log_tracker_config_dir", "num_processes", "num_machines", "dynamo_backend", "dynamo_mode", "gpu_ids",
    "main_process_port", "multi_gpu", "extra_accelerate_launch_args",
}
# sd-scripts parameters facelora has not, at the sd-scripts defaults that change nothing (and the
# kohya_ss GUI's SDXL-only text encoder rates).
_AT_DEFAULT = {"loss_type": "l2", "huber_c": 0.1, "huber_schedule": "snr", "max_timestep": 1000, "min_timestep": 0}
_SDXL_ONLY = {"learning_rate_te1", "learning_rate_te2"}
# sd-scripts' dataset_config names -> its argument names.
_DATASET_NAMES = {"batch_size": "train_batch_size"}


def export_kohya(cfg: TrainConfig, project_root: Path, dataset_config: Path | None = None) -> str:
    """A TOML that sd-scripts' `train_network.py --config_file` runs as it is. With masks from
    conditioning_data_dir or a validation_data_dir it names the dataset config (kohya_dataset.py's,
    at `dataset_config`, else kohya-dataset.toml in the project) in place of the folders."""
    data = cfg.model_dump()
    if not data["output_name"]:
        raise ConfigError("Set output_name before exporting: Kohya needs a file name.")
    if cfg.enable_bucket and cfg.bucket_reso_steps % 64:
        raise ConfigError("bucket_reso_steps {steps} with enable_bucket: sd-scripts' train_network.py stops unless it "
                          "is divisible by 64; set 64 or 128 before exporting.", steps=cfg.bucket_reso_steps)
    for key in PROJECT_FOLDERS + OPTIONAL_PROJECT_FOLDERS:
        if data[key] is not None:
            data[key] = str((Path(project_root) / data[key]).resolve())
    if cfg.pretrained_model_name_or_path and cfg.pretrained_model_name_or_path != "tiny":
        data["pretrained_model_name_or_path"] = str(Path(cfg.pretrained_model_name_or_path).resolve())
    if 0 < cfg.lr_warmup_steps < 1:
        data["lr_warmup_steps"] = cfg.warmup_steps(data["max_train_steps"])
    else:
        data["lr_warmup_steps"] = int(cfg.lr_warmup_steps)
    if needs_dataset_config(cfg):  # sd-scripts reads the folders from it (and would ignore these)
        data.update(train_data_dir=None, reg_data_dir=None,
                    dataset_config=str(Path(dataset_config or Path(project_root) / DATASET_CONFIG_FILE).resolve()))
    out: dict[str, dict[str, Any]] = {}
    for section, keys in _KOHYA_SECTIONS.items():
        out[section] = {k: data[k] for k in keys if data.get(k) not in (None, [])}
    return tomli_w.dumps(out)


def import_kohya(text: str, base: TrainConfig | None = None, source: Path | None = None) -> tuple[TrainConfig, list[str]]:
    """Read a Kohya file as sd-scripts would run it: a training TOML (sd-scripts' argument names,
    tables flattened as sd-scripts does), or a kohya_ss GUI config (JSON, or its config.toml).
    Absent keys take sd-scripts' defaults; keys facelora does not have keep `base`'s values.
    Returns the config and the notes to print (every key facelora does not use in one line, what
    a GUI convention or a seed drawn made of a value); face_differences(cfg) says what differs from
    facelora's face defaults. `source`: the file, whose folder a relative dataset_config is read from."""
    raw, gui = _parse(text)
    flat: dict[str, Any] = {}
    for k, v in raw.items():
        if isinstance(v, dict):
            if k not in GUI_SECTIONS:
                flat.update(v)
        else:
            flat[k] = v
    gui = gui or "LoRA_type" in flat or "epoch" in flat
    for flag in ("v2", "v_parameterization", "sdxl"):
        if flat.get(flag) is True:
            raise ConfigError("This config trains with {flag}=true; facelora trains SD1.5 LoRA only.", flag=flag)
    _check_is_training_config(raw, flat, source)
    notes: list[str] = []
    if gui:
        flat, notes = gui_values(flat)
    dataset = flat.pop("dataset_config", None)
    if dataset:
        flat, more = _dataset_values(flat, Path(dataset), source)
        notes += more
    updates = sd_scripts_defaults()
    unused = []
    harmless = _HARMLESS | _SDXL_ONLY
    for key, value in flat.items():
        if key in TrainConfig.model_fields:
            updates[key] = _kohya_value(key, value)
            if key == "resolution" and updates[key] != str(value).replace(" ", ""):
                notes.append(f"resolution {value} rounded down to {updates[key]}: SD's VAE works in 8-pixel blocks.")
        elif key not in harmless and not is_off(value) and _AT_DEFAULT.get(key, ...) != value:
            unused.append(key)
    unused_note = (f"Kohya parameters facelora does not use (training differs from Kohya's in these): "
                   f"{', '.join(sorted(unused))}." if unused else "")
    notes += _bucket_steps(updates) + _token_length(updates)
    problems = [p for p in (_network_problem(updates),) if p]
    try:
        cfg = apply(base or TrainConfig(), {k: v for k, v in updates.items() if k not in PROJECT_FOLDERS})
    except ConfigError as e:
        problems.insert(0, str(e))
    if problems:
        raise ConfigError("{file} holds values facelora cannot train with; change them in the file and import again. "
                          "{problems} {unused}" if unused_note else "{file} holds values facelora cannot train with; "
                          "change them in the file and import again. {problems}",
                          file=source.name if source else "The file", problems="; ".join(problems), unused=unused_note)
    if flat.get("reg_data_dir") and not Path(cfg.reg_data_dir).is_absolute():
        notes.append(f"reg_data_dir '{cfg.reg_data_dir}' is read inside the project: put the <repeats>_<class> "
                     f"folders of class images there, or make them with facelora reg generate.")
    if "seed" not in flat:
        notes.append(f"The file sets no seed, so a random one was drawn ({cfg.seed}), as sd-scripts does.")
    return cfg, ([unused_note] if unused_note else []) + notes  # what Kohya does differently, first


def _check_is_training_config(raw: dict[str, Any], flat: dict[str, Any], source: Path | None) -> None:
    """Refuse a file that is no training config (a dataset config, a caption metadata JSON, a LECO
    prompts file) before it resets every parameter to sd-scripts' defaults."""
    file = source.name if source else "The file"
    if "datasets" in raw:
        raise ConfigError("{file} is a Kohya dataset config (folders, repeats, resolution), not a training config: "
                          "import the training config that names it (dataset_config), or lay its folders out as "
                          "image/<repeats>_<trigger> and run facelora init there. Nothing was changed.", file=file)
    if not any(k in TrainConfig.model_fields or k in GUI_NAMES or k == "LoRA_type" for k in flat):
        raise ConfigError("{file} holds no training parameter of sd-scripts or kohya_ss (learning_rate, network_dim, "
                          "...): it is not a Kohya training config. Nothing was changed.", file=file)


def _network_problem(updates: dict[str, Any]) -> str | None:
    """What the network type says of the file's network_args (None: it trains them)."""
    args = updates.get("network_args")
    try:
        check_args(updates["network_module"], parse_kv_args(args if isinstance(args, list) else []))
    except FaceloraError as e:
        return str(e)
    return None


def _bucket_steps(updates: dict[str, Any]) -> list[str]:
    """sd-scripts' train_network.py (SD1.5) stops with bucket steps not divisible by 64 when
    enable_bucket is on (library/train_util.py verify_bucket_reso_steps(64)) and reads none
    without it; the kohya_ss GUI lets any step from 1 through. Such a step (the GUI's LoHa preset
    has 1) is read as the nearest multiple of 64, with a note; below 1 it is refused (the GUI's
    own check)."""
    steps = updates.get("bucket_reso_steps")
    if not isinstance(steps, int) or steps < 1 or steps % 64 == 0:
        return []  # TrainConfig names a step below 1 with the value given
    updates["bucket_reso_steps"] = new = max(64, round(steps / 64) * 64)
    why = (f"sd-scripts' train_network.py refuses it with enable_bucket (\"bucket_reso_steps is {steps}. it must "
           f"be divisible by 64\")" if updates.get("enable_bucket") else "sd-scripts uses it only with enable_bucket")
    return [f"bucket_reso_steps {steps} is read as {new}: {why}."]


def _token_length(updates: dict[str, Any]) -> list[str]:
    """sd-scripts reads captions of 150 or 225 tokens in 75-token chunks; facelora reads one chunk
    (the check refuses more), so a longer max_token_length is read as 75, with a note."""
    length = updates.get("max_token_length")
    if not isinstance(length, int) or length <= 75:
        return []
    updates["max_token_length"] = 75
    return [f"max_token_length {length} is read as 75: facelora reads one 75-token chunk of each caption, so a "
            f"caption longer than 75 tokens is cut there, where sd-scripts reads up to {length} tokens."]


def _parse(text: str) -> tuple[dict[str, Any], bool]:
    """The file's keys, and whether it is a kohya_ss GUI file (JSON)."""
    if text.lstrip().startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ConfigError("Not a valid kohya_ss JSON config: {error}", error=e) from None
        if not isinstance(data, dict):
            raise ConfigError("Not a kohya_ss config: the JSON holds no parameters.")
        return data, True
    try:
        return tomllib.loads(text), False
    except tomllib.TOMLDecodeError as e:
        raise ConfigError("Not a valid TOML file, nor a kohya_ss JSON config: {error}", error=e) from None


def _kohya_value(key: str, value: Any) -> Any:
    if key in LIST_FIELDS and isinstance(value, str):
        return shlex.split(value)
    if key == "resolution":
        return _resolution(value)
    if key == "text_encoder_lr" and isinstance(value, list):  # sd-scripts: one rate per text encoder
        return value[0] if value else None
    if key == "save_precision" and value is None:
        return "float"
    return value


def _resolution(value: Any) -> str:
    """Kohya's resolution, each side rounded down to a multiple of 8 as SD's VAE needs (sd-scripts
    rounds its sample images' sides the same way; the kohya_ss GUI lets any number through)."""
    sides = value if isinstance(value, list) else [p for p in str(value).replace("x", ",").split(",") if p.strip()]
    try:
        return ",".join(str(max(64, int(float(s)) // 8 * 8)) for s in sides)
    except ValueError:
        return str(value)  # TrainConfig says what is wrong with it


def face_differences(cfg: TrainConfig) -> list[str]:
    """Every parameter of `cfg` (folders and output_name aside) that differs from facelora's face
    defaults, as 'name value (face default value)'."""
    face = TrainConfig()
    return [f"{k} {getattr(cfg, k)!r} (face default {getattr(face, k)!r})" for k in TrainConfig.model_fields
            if k not in PROJECT_FOLDERS and k != "output_name" and getattr(cfg, k) != getattr(face, k)]


def _dataset_values(flat: dict[str, Any], path: Path, source: Path | None) -> tuple[dict[str, Any], list[str]]:
    """sd-scripts' dataset_config: its folders and repeats (as a note: a facelora project trains
    its own image/<repeats>_<trigger> folder) and the training values it sets."""
    candidates = [path] if path.is_absolute() else [*([source.parent / path] if source else []), path]
    found = next((c for c in candidates if c.is_file()), None)
    if found is None:  # the kohya_ss GUI's own config.toml names a template's file
        return flat, [f"dataset_config '{path}' was not found (looked in {', '.join(map(str, candidates))}), so "
                      f"its folders and repeats were not read."]
    try:
        data = tomllib.loads(found.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise ConfigError("dataset_config {path} cannot be read: {error}", path=found, error=e) from None
    out = dict(flat)
    for k, v in data.get("general", {}).items():
        out.setdefault(_DATASET_NAMES.get(k, k), v)
    folders, held = [], []
    for ds in data.get("datasets", []):
        if ds.get("validation_split") == 1.0:  # Kohya's form of a folder of held-out photos
            held += [str(sub.get("image_dir", "?")) for sub in ds.get("subsets", [])]
            continue
        for k, v in ds.items():
            if k != "subsets":
                out[_DATASET_NAMES.get(k, k)] = v
        for sub in ds.get("subsets", []):
            masks = f", masks in {sub['conditioning_data_dir']}" if "conditioning_data_dir" in sub else ""
            folders.append(f"{sub.get('image_dir', '?')} ({sub.get('num_repeats', 1)} repeats{masks})")
    notes = [f"dataset_config {found.name} trains {', '.join(folders) or 'no folders'}; a facelora project "
             f"trains its image/<repeats>_<trigger> folder: put those photos there (facelora prepare) with "
             f"the repeats in the folder's name (and masks under conditioning_data_dir in a folder of that name)."]
    if held:
        notes.append(f"dataset_config {found.name} holds out {', '.join(held)} for the validation loss: set "
                     f"validation_data_dir to a folder of such <repeats>_<trigger> folders.")
    return out, notes
