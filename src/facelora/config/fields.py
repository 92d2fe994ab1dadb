"""TrainConfig: every training parameter, under Kohya's names, with the defaults for a face.

One place for each default: the GUI reads its labels, help and Basic/Advanced groups from the
field descriptions here, and the CLI's help from the same words.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from ..errors import ConfigError, said_by
from ..paths import PathError, check_folder_text, check_output_name
from ..train.optim import OPTIMIZERS, SCHEDULERS
from .values import parse_kv_args, parse_resolution


MAX_RANK = 1024  # a LoRA's rank above it: bigger than the layers it adapts, a file larger than SD1.5
# kohya_ss's LoKr presets write network_dim 100000: LyCORIS' "full matrix" convention, as lycoris'
# LoKr keeps a Kronecker factor whole when the dim is at least half its side (lycoris/modules/lokr.py)
LOKR_FULL_DIM = 100000


def _f(default: Any, help: str, group: str = "advanced", **kw: Any) -> Any:
    return Field(default, description=help, json_schema_extra={"group": group}, **kw)


# The folders a project's TrainConfig names relative to the project (facelora.toml keeps them so).
PROJECT_FOLDERS = ("train_data_dir", "output_dir", "logging_dir")
# Project folders that may be unset (None: not used).
OPTIONAL_PROJECT_FOLDERS = ("reg_data_dir", "conditioning_data_dir", "validation_data_dir")
Precision = Literal["no", "fp16", "bf16"]


def _path_rule(rule: Any, *args: Any) -> Any:
    """paths.py's check as a pydantic validation error (so the field is named with it)."""
    try:
        return rule(*args)
    except PathError as e:
        raise ConfigError(said_by(e)) from None

SavePrecision = Literal["float", "fp16", "bf16"]


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
    network_module: str = _f("networks.lora", "Kohya's network type: networks.lora (LoRA; LoCon with "
                             "conv_dim) or lycoris.kohya (algo=locon, loha, lokr; dora_wd=True).")
    network_dim: int = _f(128, "LoRA rank: more holds finer face detail and makes a bigger file.", "basic", ge=1,
                         le=LOKR_FULL_DIM)
    network_alpha: float = _f(64.0, "Scales the update by alpha/rank; half the rank or less.", "basic", gt=0)
    network_args: list[str] = _f([], "Network arguments as 'key=value' strings, e.g. conv_dim=8, "
                                 "conv_alpha=4, algo=loha, down_lr_weight=sine.")
    network_weights: str | None = _f(None, "Start from an existing LoRA file instead of zeros.")
    network_train_unet_only: bool = _f(False, "Train the UNet only, not the text encoder.")
    network_train_text_encoder_only: bool = _f(False, "Train the text encoder only, not the UNet.")

    # --- network_dropout (Kohya's): dropout on each LoRA module's rank outputs, while training ----
    network_dropout: float | None = _f(None, "Drop this share of each LoRA module's rank outputs at every training "
                                       "step (0-1; 0.1 is common); unset: off. Files are unchanged.", ge=0, lt=1)

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
    lr_scheduler: str = _f("cosine_with_restarts",
                           "How the learning rate changes over the run: " + ", ".join(SCHEDULERS) + ".", "basic")
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
    # --- bucket_no_upscale (Kohya's): with enable_bucket, small images are cropped, not enlarged
    bucket_no_upscale: bool = _f(False, "With buckets: never enlarge a small image; its bucket is its own size, "
                                 "rounded down to the bucket steps.")
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
    xformers: bool = _f(False, "xformers attention on a CUDA GPU where it is installed (else PyTorch's SDPA).", "basic")
    torch_compile: bool = _f(False, "Compile the UNet with torch.compile (slow start, faster steps).")
    clip_skip: int = _f(1, "Use the text encoder's n-th last layer; 1 for photo models.", ge=1, le=12)

    # --- attention (issue 18: Kohya's --sdpa beside --xformers) ------------------------------
    sdpa: bool = _f(False, "PyTorch's scaled-dot-product attention (Kohya's --sdpa); facelora uses it whenever "
                           "xformers is not used, so this only states the choice.")

    # --- full half precision (issue 18: Kohya's full_fp16 / full_bf16) -------------------------
    full_fp16: bool = _f(False, "The LoRA's own weights, gradients and optimizer state in fp16 too (needs "
                                "mixed_precision fp16): less memory, less stable; the GradScaler still skips "
                                "overflowing steps.")
    full_bf16: bool = _f(False, "The LoRA's own weights, gradients and optimizer state in bf16 too (needs "
                                "mixed_precision bf16, an RTX 30xx or newer): less memory, coarser updates.")

    # --- noise and loss ----------------------------------------------------------------------
    noise_offset: float = _f(0.0, "Adds offset noise so images can be darker or brighter; 0.05-0.1.", ge=0)
    min_snr_gamma: float | None = _f(None, "Min-SNR loss weighting; 5 is the paper's value.", gt=0)

    # --- face training: masked loss, validation loss, class (regularisation) images ---------------
    masked_loss: bool = _f(False, "Weight the loss per pixel by a mask (Kohya's masked_loss); prepare writes a head mask.")
    alpha_mask: bool = _f(False, "Read the mask from each image's alpha channel (prepare's RGBA PNGs).")
    reg_data_dir: str | None = _f(None, "Folder of <repeats>_<class> folders of class images (relative to the project).")
    prior_loss_weight: float = _f(1.0, "Loss weight of the class images against the person's.", ge=0)
    validation_split: float = _f(0.0, "Fraction of the photos held out for the validation loss (0 = none).", ge=0, lt=1)
    validation_seed: int | None = _f(None, "Seed of the held-out choice and the validation noise; empty = seed.")
    validate_every_n_steps: int | None = _f(None, "Also compute the validation loss every n steps.", ge=1)
    validate_every_n_epochs: int | None = _f(None, "Validation loss every n epochs; empty = every epoch.", ge=1)
    max_validation_steps: int | None = _f(None, "At most this many validation batches; empty = all held-out photos.", ge=1)

    # --- facedata (issue 16): masks from a conditioning folder, a named folder of held-out photos ----
    conditioning_data_dir: str | None = _f(
        None, "Folder of loss masks for masked_loss (Kohya's conditioning_data_dir): in it a folder named as each "
              "<repeats>_<trigger> folder, with a mask of each photo's name; its red channel (or grey) is the weight.")
    validation_data_dir: str | None = _f(
        None, "Folder of <repeats>_<trigger> folders of held-out photos, only for the validation loss (Kohya: a "
              "dataset with validation_split 1.0).")

    # --- objective options (lyco): Kohya's names and meanings; ema_decay as OneTrainer's --------
    caption_dropout_rate: float = _f(0.0, "Train this share of captions empty (0-1), so the LoRA also works "
                                     "without its words; 0.05-0.1.", ge=0, le=1)
    caption_dropout_every_n_epochs: int = _f(0, "Train every caption empty in each n-th epoch; 0 never.", ge=0)
    caption_tag_dropout_rate: float = _f(0.0, "Drop each tag after the keep_tokens first with this probability "
                                         "(0-1).", ge=0, le=1)
    multires_noise_iterations: int | None = _f(None, "Multi-resolution (pyramid) noise levels, 6-10; unset: off.",
                                               ge=1)
    multires_noise_discount: float = _f(0.3, "Weight of each coarser multires noise level (0.1-0.3).", gt=0, le=1)
    ip_noise_gamma: float | None = _f(None, "Input perturbation noise strength; 0.1 is the paper's value.", ge=0)
    debiased_estimation_loss: bool = _f(False, "Weight the loss by 1/sqrt(SNR) (debiased estimation).")
    scale_weight_norms: float | None = _f(None, "Max-norm: after each step scale down every module whose weight "
                                          "change has a norm above this; 1.0 is common.", gt=0)
    ema_decay: float | None = _f(None, "Keep an average of the LoRA's weights (e.g. 0.999), updated each step, "
                                 "and save it beside each file as <name>-ema.", gt=0, lt=1)

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
            raise ConfigError("unknown optimizer '{name}'; choose one of {known}", name=v, known=", ".join(OPTIMIZERS))
        return by_lower[v.lower()]

    @field_validator("lr_scheduler")
    @classmethod
    def _known_scheduler(cls, v: str) -> str:
        if v not in SCHEDULERS:
            raise ConfigError("unknown scheduler '{name}'; choose one of {known}", name=v, known=", ".join(SCHEDULERS))
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

    @model_validator(mode="after")
    def _rank(self) -> "TrainConfig":
        if self.network_dim > MAX_RANK and not self.lokr:
            raise ConfigError(
                "network_dim {dim} is above {max_rank}: a LoRA of that rank is larger than the layers it adapts. Only "
                "LyCORIS LoKr (network_module lycoris.kohya, algo=lokr) reads a dim this large, as its full-matrix "
                "setting (kohya_ss's LoKr presets use {full_dim}).", dim=self.network_dim, max_rank=MAX_RANK,
                full_dim=LOKR_FULL_DIM)
        return self

    # --- derived values ----------------------------------------------------------------------
    @property
    def lokr(self) -> bool:
        """LyCORIS LoKr, whose network_dim may be LOKR_FULL_DIM (a large dim keeps its factors whole)."""
        algo = parse_kv_args(self.network_args).get("algo", "lora") if self.network_module == "lycoris.kohya" else ""
        return str(algo).lower() == "lokr"

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

    @property
    def full_half(self) -> bool:
        """full_fp16 or full_bf16: the LoRA itself in the autocast dtype."""
        return self.full_fp16 or self.full_bf16

    def optimizer_kwargs(self) -> dict[str, Any]:
        return parse_kv_args(self.optimizer_args)

    def warmup_steps(self, total_steps: int) -> int:
        w = self.lr_warmup_steps
        return int(round(w * total_steps)) if 0 < w < 1 else int(w)


def config_fields(group: str | None = None) -> dict[str, tuple[Any, str, str]]:
    """{name: (default, help, group)} for the GUI and help texts."""
    out = {}
    for name, f in TrainConfig.model_fields.items():
        g = (f.json_schema_extra or {}).get("group", "advanced")  # type: ignore[union-attr]
        if group is None or g == group:
            out[name] = (f.default, f.description or "", g)
    return out
