"""Every training parameter, under Kohya's names, with the defaults for a face.

One place for each default: the GUI reads its labels, help and Basic/Advanced groups from the
field descriptions here; the CLI overrides fields by their Kohya spelling; `facelora.toml` and
Kohya's TOML are read and written here.
"""

from __future__ import annotations

import shlex
import tomllib
from pathlib import Path
from typing import Any, Literal

import tomli_w
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from .errors import FaceloraError
from .fileio import atomic_write_text, read_text
from .networks import NETWORK_MODULES
from .paths import PathError, check_folder_text, check_output_name


class ConfigError(FaceloraError, ValueError):
    """A parameter or combination of parameters that cannot work."""


def _f(default: Any, help: str, group: str = "advanced", **kw: Any) -> Any:
    return Field(default, description=help, json_schema_extra={"group": group}, **kw)


OPTIMIZERS = ("AdamW", "AdamW8bit", "DAdaptAdam", "Adafactor", "Prodigy", "Lion", "Lion8bit", "SGDNesterov")
EIGHT_BIT = ("AdamW8bit", "Lion8bit")
ADAPTIVE = ("DAdaptAdam", "Prodigy")
SCHEDULERS = (
    "constant",
    "constant_with_warmup",
    "linear",
    "cosine",
    "cosine_with_restarts",
    "polynomial",
    "adafactor",
)
Precision = Literal["no", "fp16", "bf16"]
SavePrecision = Literal["float", "fp16", "bf16"]


# The parameters that name folders inside the project (paths.py's rule for them).
PROJECT_FOLDERS = ("train_data_dir", "output_dir", "logging_dir")


def _path_rule(rule: Any, *args: Any) -> Any:
    """paths.py's check as a pydantic validation error (so the field is named with it)."""
    try:
        return rule(*args)
    except PathError as e:
        raise ValueError(str(e)) from None


class TrainConfig(BaseModel):
    """Kohya's `train_network.py` parameters that facelora implements."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    # --- model and folders -------------------------------------------------------------------
    pretrained_model_name_or_path: str = _f(
        "", "Base SD1.5 checkpoint: a .safetensors file, a diffusers folder, or 'tiny' (test model).", "basic"
    )
    train_data_dir: str = _f("image", "Folder that holds the <repeats>_<trigger> folders (relative to the project).", "basic")
    output_dir: str = _f("models", "Where LoRA files are saved (relative to the project).", "basic")
    output_name: str = _f("", "File name of the LoRA; empty means the trigger word.", "basic")
    logging_dir: str = _f("log", "TensorBoard logs, events.jsonl and resume state.", "basic")
    caption_extension: str = _f(".txt", "Extension of the caption files beside the images.", "basic")

    # --- network -----------------------------------------------------------------------------
    network_module: str = _f("networks.lora", "Kohya's network type; facelora trains standard LoRA.")
    network_dim: int = _f(128, "LoRA rank: more holds finer face detail and makes a bigger file.", "basic", ge=1, le=1024)
    network_alpha: float = _f(64.0, "Scales the update by alpha/rank; half the rank or less.", "basic", gt=0)
    network_args: list[str] = _f([], "Extra network arguments as 'key=value' strings.")
    network_weights: str | None = _f(None, "Start from an existing LoRA file instead of zeros.")
    network_train_unet_only: bool = _f(False, "Train the UNet only, not the text encoder.")
    network_train_text_encoder_only: bool = _f(False, "Train the text encoder only, not the UNet.")

    # --- steps -------------------------------------------------------------------------------
    train_batch_size: int = _f(1, "Images per step; 1 suits most GPUs.", "basic", ge=1)
    max_train_steps: int = _f(1600, "Total optimizer steps when max_train_epochs is not set.", "basic", ge=1)
    max_train_epochs: int | None = _f(10, "Epochs to train; overrides max_train_steps. 5-10 for a face.", "basic", ge=1)
    gradient_accumulation_steps: int = _f(1, "Batches summed before each optimizer step.", ge=1)
    seed: int = _f(42, "Random seed: the same seed gives the same run.", "basic")

    # --- learning rate -----------------------------------------------------------------------
    learning_rate: float = _f(1e-4, "Base learning rate (used where unet_lr or text_encoder_lr is unset).", "basic", ge=0)
    unet_lr: float | None = _f(1e-4, "Learning rate of the UNet's LoRA.", "basic", ge=0)
    text_encoder_lr: float | None = _f(5e-5, "Learning rate of the text encoder's LoRA.", "basic", ge=0)
    optimizer_type: str = _f("AdamW8bit", "Optimizer: " + ", ".join(OPTIMIZERS) + ".", "basic")
    optimizer_args: list[str] = _f([], "Optimizer arguments as 'key=value' strings, e.g. decouple=True.", "basic")
    lr_scheduler: str = _f("cosine_with_restarts", "How the learning rate changes over the run.", "basic")
    lr_scheduler_num_cycles: int = _f(3, "Restarts of cosine_with_restarts (3-5 for a face).", "basic", ge=1)
    lr_scheduler_power: float = _f(1.0, "Power of the polynomial scheduler.", gt=0)
    lr_warmup_steps: float = _f(0, "Warm-up: a step count, or a fraction of all steps when below 1.", ge=0)
    max_grad_norm: float = _f(1.0, "Clip gradients to this norm; 0 turns clipping off.", ge=0)

    # --- data --------------------------------------------------------------------------------
    resolution: str = _f("512", "Training resolution, 'W,H' or one number (512 or 768).", "basic")
    enable_bucket: bool = _f(False, "Group images by aspect ratio; off when all crops are square.", "basic")
    min_bucket_reso: int = _f(256, "Smallest bucket side.", ge=64)
    max_bucket_reso: int = _f(1024, "Largest bucket side.", ge=64)
    bucket_reso_steps: int = _f(64, "Bucket sides are multiples of this.", ge=8)
    cache_latents: bool = _f(True, "Encode every image once before training (faster).", "basic")
    cache_latents_to_disk: bool = _f(False, "Keep the cached latents on disk, so a second run skips encoding.")
    shuffle_caption: bool = _f(False, "Shuffle the comma-separated tags of each caption.")
    keep_tokens: int = _f(0, "Keep this many leading tags in place when shuffling (the trigger word).", ge=0)
    max_token_length: int = _f(75, "Caption tokens; SD1.5 reads 75.", ge=75)
    max_data_loader_n_workers: int = _f(0, "Processes that load images; 0 loads in the main process.", ge=0)

    # --- precision and speed -----------------------------------------------------------------
    mixed_precision: Precision = _f("fp16", "fp16 saves memory on NVIDIA GPUs; bf16 on newer ones; no = fp32.", "basic")
    save_precision: SavePrecision = _f("fp16", "Precision of the saved LoRA file.", "basic")
    gradient_checkpointing: bool = _f(False, "Recompute activations to save memory (slower).")
    xformers: bool = _f(False, "Use xformers attention where installed (facelora uses PyTorch SDPA otherwise).", "basic")
    torch_compile: bool = _f(False, "Compile the UNet with torch.compile (slow start, faster steps).")
    clip_skip: int = _f(1, "Use the text encoder's n-th last layer; 1 for photo models.", ge=1, le=12)

    # --- noise and loss ----------------------------------------------------------------------
    noise_offset: float = _f(0.0, "Adds offset noise so images can be darker or brighter; 0.05-0.1.", ge=0)
    min_snr_gamma: float | None = _f(None, "Min-SNR loss weighting; 5 is the paper's value.", gt=0)

    # --- saving ------------------------------------------------------------------------------
    save_every_n_epochs: int | None = _f(1, "Save a LoRA file every n epochs, to pick the best later.", "basic", ge=1)
    save_every_n_steps: int | None = _f(None, "Also save every n steps.", ge=1)
    save_last_n_epochs: int | None = _f(None, "Keep only the newest n epoch files.", ge=1)
    save_state: bool = _f(True, "Save optimizer and data position with each file, for --resume.")

    # --- samples -----------------------------------------------------------------------------
    sample_every_n_epochs: int | None = _f(None, "Make sample images every n epochs.", ge=1)
    sample_prompts: str | None = _f(None, "Prompts file in Kohya's syntax (--n --w --h --d --l --s).")
    sample_sampler: str = _f("euler_a", "Sampler for sample images: euler_a, dpmsolver++, ddim.")

    # --- robustness --------------------------------------------------------------------------
    max_nonfinite_steps: int = _f(5, "Stop after this many NaN/inf steps in a row.", ge=1)

    @field_validator("optimizer_type")
    @classmethod
    def _known_optimizer(cls, v: str) -> str:
        by_lower = {o.lower(): o for o in OPTIMIZERS}
        if v.lower() not in by_lower:
            raise ValueError(f"unknown optimizer '{v}'; choose one of {', '.join(OPTIMIZERS)}")
        return by_lower[v.lower()]

    @field_validator("lr_scheduler")
    @classmethod
    def _known_scheduler(cls, v: str) -> str:
        if v not in SCHEDULERS:
            raise ValueError(f"unknown scheduler '{v}'; choose one of {', '.join(SCHEDULERS)}")
        return v

    @field_validator(*PROJECT_FOLDERS)
    @classmethod
    def _project_folder(cls, v: str, info: ValidationInfo) -> str:
        return _path_rule(check_folder_text, v, info.field_name)

    @field_validator("output_name")
    @classmethod
    def _file_name(cls, v: str) -> str:
        return _path_rule(check_output_name, v)

    @field_validator("resolution")
    @classmethod
    def _resolution(cls, v: str) -> str:
        parse_resolution(v)
        return v

    # --- derived values ----------------------------------------------------------------------
    @property
    def resolution_wh(self) -> tuple[int, int]:
        return parse_resolution(self.resolution)

    @property
    def effective_unet_lr(self) -> float:
        return self.learning_rate if self.unet_lr is None else self.unet_lr

    @property
    def effective_text_encoder_lr(self) -> float:
        return self.learning_rate if self.text_encoder_lr is None else self.text_encoder_lr

    @property
    def train_unet(self) -> bool:
        return not self.network_train_text_encoder_only

    @property
    def train_text_encoder(self) -> bool:
        return not self.network_train_unet_only

    def optimizer_kwargs(self) -> dict[str, Any]:
        return parse_kv_args(self.optimizer_args)

    def warmup_steps(self, total_steps: int) -> int:
        w = self.lr_warmup_steps
        return int(round(w * total_steps)) if 0 < w < 1 else int(w)


# --- checks before anything runs ---------------------------------------------------------------


def check(cfg: TrainConfig, cuda: bool) -> tuple[TrainConfig, list[str]]:
    """Reject combinations that cannot work; return the config that will actually run on this
    machine and the warnings to print. 8-bit optimizers fall back to AdamW without CUDA (see
    README: bitsandbytes' 8-bit states need a GPU; AdamW is the same update with fp32 states)."""
    notes: list[str] = []
    if cfg.network_train_unet_only and cfg.network_train_text_encoder_only:
        raise ConfigError("network_train_unet_only and network_train_text_encoder_only exclude each other; set one.")
    if cfg.lr_scheduler == "constant" and cfg.lr_warmup_steps > 0:
        raise ConfigError(
            "lr_scheduler 'constant' ignores warm-up, but lr_warmup_steps is set. Use "
            "'constant_with_warmup', or set lr_warmup_steps to 0."
        )
    if cfg.optimizer_type in ADAPTIVE:
        lrs = {lr for lr in (cfg.effective_unet_lr, cfg.effective_text_encoder_lr) if lr}
        if len(lrs) > 1:
            raise ConfigError(
                f"{cfg.optimizer_type} adapts one learning rate for all parameters, so unet_lr "
                f"({cfg.effective_unet_lr}) and text_encoder_lr ({cfg.effective_text_encoder_lr}) must be "
                f"equal (the tutorial sets all learning rates to 1), or set one of them to 0."
            )
    if cfg.lr_scheduler == "adafactor" and cfg.optimizer_type != "Adafactor":
        raise ConfigError("lr_scheduler 'adafactor' works only with optimizer_type Adafactor.")
    if cfg.network_alpha > cfg.network_dim:
        notes.append(
            f"network_alpha {cfg.network_alpha:g} is above network_dim {cfg.network_dim}: the update is scaled "
            f"up by {cfg.network_alpha / cfg.network_dim:g}; the tutorial uses half the rank or less."
        )
    if cfg.sample_every_n_epochs and not cfg.sample_prompts:
        raise ConfigError("sample_every_n_epochs needs sample_prompts (a prompts file).")
    if cfg.network_module not in NETWORK_MODULES:
        raise ConfigError(f"network_module '{cfg.network_module}': facelora trains {', '.join(NETWORK_MODULES)} "
                          f"only; use Kohya's trainer for other networks.")
    if cfg.network_args:
        raise ConfigError(f"network_args {cfg.network_args}: facelora's LoRA takes none (conv_dim, "
                          f"conv_alpha and the like are LoCon/LyCORIS options). Remove them.")
    if cfg.max_token_length != 75:
        raise ConfigError(f"max_token_length {cfg.max_token_length}: facelora reads 75 caption tokens, as "
                          f"SD1.5 does. Shorten long captions (a face needs few tags) and set 75.")
    changes: dict[str, Any] = {}
    if not cuda:
        if cfg.optimizer_type in EIGHT_BIT:
            plain = cfg.optimizer_type.replace("8bit", "")
            notes.append(
                f"{cfg.optimizer_type} needs bitsandbytes on a CUDA GPU; this machine has none, so {plain} "
                f"(same update, 32-bit states) is used. Choose AdamW, Lion, Adafactor, DAdaptAdam or "
                f"Prodigy to silence this."
            )
            changes["optimizer_type"] = plain
        if cfg.mixed_precision == "fp16":
            notes.append("mixed_precision fp16 needs a CUDA GPU; on this CPU training runs in fp32 "
                         "(--mixed_precision bf16 uses the CPU's bf16 autocast).")
            changes["mixed_precision"] = "no"
        if cfg.xformers:
            notes.append("xformers needs CUDA; PyTorch's SDPA attention is used instead.")
            changes["xformers"] = False
    return (cfg.model_copy(update=changes) if changes else cfg), notes


# --- presets from the tutorial ---------------------------------------------------------------

PRESETS: dict[str, dict[str, Any]] = {
    # Scheme 1, static learning rate: Kohya's recommended rates, AdamW8bit, cosine with restarts.
    "static": dict(
        optimizer_type="AdamW8bit", optimizer_args=[], lr_scheduler="cosine_with_restarts",
        lr_scheduler_num_cycles=3, learning_rate=1e-4, unet_lr=1e-4, text_encoder_lr=5e-5,
    ),
    # Scheme 2, dynamic learning rate: DAdaptAdam finds the rate itself; all rates are 1.
    "dynamic": dict(
        optimizer_type="DAdaptAdam", optimizer_args=["decouple=True", "weight_decay=0.01", "betas=0.9,0.999"],
        lr_scheduler="constant", learning_rate=1.0, unet_lr=1.0, text_encoder_lr=1.0,
    ),
    # Scheme 2 for smaller GPUs: Adafactor with its own relative step size.
    "dynamic-adafactor": dict(
        optimizer_type="Adafactor",
        optimizer_args=["relative_step=True", "scale_parameter=True", "warmup_init=True"],
        lr_scheduler="adafactor", learning_rate=1.0, unet_lr=1.0, text_encoder_lr=1.0,
    ),
}


def preset(name: str) -> dict[str, Any]:
    if name not in PRESETS:
        raise ConfigError(f"Unknown preset '{name}'; choose one of {', '.join(PRESETS)}.")
    return dict(PRESETS[name])


# --- value parsing ---------------------------------------------------------------------------


def parse_resolution(v: str | int) -> tuple[int, int]:
    parts = [p.strip() for p in str(v).replace("x", ",").split(",") if p.strip()]
    try:
        nums = [int(p) for p in parts]
    except ValueError:
        nums = []
    if len(nums) == 1:
        nums = nums * 2
    if len(nums) != 2 or min(nums) < 64 or any(n % 8 for n in nums):
        raise ValueError(f"resolution '{v}' must be one number or 'W,H', each a multiple of 8 and at least 64")
    return nums[0], nums[1]


def _parse_value(s: str) -> Any:
    low = s.lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    if "," in s:
        return tuple(_parse_value(p) for p in s.split(","))
    for cast in (int, float):
        try:
            return cast(s)
        except ValueError:
            pass
    return s


def parse_kv_args(items: list[str]) -> dict[str, Any]:
    """Kohya's `--optimizer_args "decouple=True" "betas=0.9,0.999"` -> {'decouple': True, 'betas': (0.9, 0.999)}."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"Argument '{item}' must be 'key=value' (e.g. weight_decay=0.01).")
        out[key.strip()] = _parse_value(value.strip())
    return out


# --- command-line overrides ------------------------------------------------------------------

ALIASES = {"base_model": "pretrained_model_name_or_path", "base-model": "pretrained_model_name_or_path"}
LIST_FIELDS = {n for n, f in TrainConfig.model_fields.items() if f.annotation == list[str]}


def _field_type_is_bool(name: str) -> bool:
    return TrainConfig.model_fields[name].annotation is bool


def parse_overrides(args: list[str]) -> dict[str, Any]:
    """`--network_dim 32 --optimizer_args "decouple=True" "weight_decay=0.01" --cache_latents`
    -> {'network_dim': '32', ...}. A bare boolean flag means True; list fields take every value
    up to the next option."""
    out: dict[str, Any] = {}
    i = 0
    while i < len(args):
        tok = args[i]
        if not tok.startswith("--"):
            raise ConfigError(f"Unexpected argument '{tok}'; parameters are given as --name value.")
        name, eq, inline = tok[2:].partition("=")
        name = ALIASES.get(name, name)
        if name not in TrainConfig.model_fields:
            dashed = name.replace("-", "_")
            if dashed in TrainConfig.model_fields:
                name = dashed
            else:
                raise ConfigError(f"Unknown parameter '--{name}'. {_suggest(name)}")
        values = [inline] if eq else []
        i += 1
        while not eq and i < len(args) and not args[i].startswith("--"):
            values.append(args[i])
            i += 1
        if name in LIST_FIELDS:
            out[name] = [v for item in values for v in (shlex.split(item) if " " in item else [item])]
        elif not values and _field_type_is_bool(name):
            out[name] = True
        elif len(values) == 1:
            out[name] = None if values[0].lower() in ("none", "null") else values[0]
        else:
            raise ConfigError(f"--{name} takes one value, got {len(values)}: {' '.join(values) or 'none'}.")
    return out


def _suggest(name: str) -> str:
    import difflib

    close = difflib.get_close_matches(name, list(TrainConfig.model_fields), n=3)
    return f"Did you mean {', '.join('--' + c for c in close)}?" if close else "See 'facelora train --help'."


def apply(cfg: TrainConfig, updates: dict[str, Any]) -> TrainConfig:
    """A new config with `updates`, validated, with a clear error for a bad value."""
    try:
        return TrainConfig.model_validate({**cfg.model_dump(), **updates})
    except ValidationError as e:
        raise ConfigError(_explain(e)) from None


def _explain(e: ValidationError) -> str:
    lines = []
    for err in e.errors():
        where = ".".join(str(p) for p in err["loc"])
        lines.append(f"{where}: {err['msg']} (got {err.get('input')!r})")
    return "Invalid parameter(s): " + "; ".join(lines)


# --- facelora.toml ---------------------------------------------------------------------------


class ProjectSettings(BaseModel):
    """What facelora.toml holds: the person, and the training parameters."""

    model_config = ConfigDict(extra="forbid")
    trigger: str
    class_word: str | None = None
    train: TrainConfig = Field(default_factory=TrainConfig)


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: (_drop_none(v) if isinstance(v, dict) else v) for k, v in d.items() if v is not None}


def save_settings(path: Path, settings: ProjectSettings) -> None:
    data = settings.model_dump()
    project = {k: v for k, v in data.items() if k != "train"}
    text = "# facelora project settings; training parameters use Kohya's names.\n"
    text += tomli_w.dumps(_drop_none({"project": project, "train": data["train"]}))
    atomic_write_text(path, text)


def load_settings(path: Path) -> ProjectSettings:
    try:
        raw = tomllib.loads(read_text(path, "the project's settings"))
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path} is not valid TOML: {e}") from None
    try:
        return ProjectSettings.model_validate({**raw.get("project", {}), "train": raw.get("train", {})})
    except ValidationError as e:
        raise ConfigError(f"{path}: {_explain(e)}") from None


# --- Kohya's TOML ----------------------------------------------------------------------------

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
        "mixed_precision", "xformers", "torch_compile", "clip_skip", "noise_offset", "min_snr_gamma",
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
    "sdpa", "persistent_data_loader_workers", "log_with", "log_prefix", "lowram", "highvram",
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


def config_fields(group: str | None = None) -> dict[str, tuple[Any, str, str]]:
    """{name: (default, help, group)} for the GUI and help texts."""
    out = {}
    for name, f in TrainConfig.model_fields.items():
        g = (f.json_schema_extra or {}).get("group", "advanced")  # type: ignore[union-attr]
        if group is None or g == group:
            out[name] = (f.default, f.description or "", g)
    return out
