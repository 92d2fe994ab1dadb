"""Checks before anything runs, and the tutorial's presets."""

from __future__ import annotations

import os
from typing import Any

from ..errors import ConfigError, FaceloraError
from ..messages import Message, said
from ..networks import NETWORK_MODULES, check_network_args
from ..train.optim import OPTIMIZERS, bitsandbytes_imports
from .fields import TrainConfig

# Test-only: run fp16's CUDA path (autocast float16, GradScaler) on the CPU, read here alone.
CPU_FP16_ENV = "FACELORA_CPU_FP16"


def _torch_optimizers() -> str:
    names = [name for name, kind in OPTIMIZERS.items() if not kind.plain]
    return ", ".join(names[:-1]) + " or " + names[-1]


def check(cfg: TrainConfig, cuda: bool) -> tuple[TrainConfig, list[Message]]:
    """Reject combinations that cannot work; return the config that will actually run on this
    machine and the warnings to print. bitsandbytes' optimizers (8-bit, paged) run on CUDA and
    the CPU; where bitsandbytes does not import they fall back to torch's same update with
    32-bit states, with a note. fp16 falls back to fp32 on the CPU, where it is far slower; the
    tests run its path there (autocast float16 and a GradScaler) with FACELORA_CPU_FP16=1."""
    notes: list[Message] = []
    if cfg.network_train_unet_only and cfg.network_train_text_encoder_only:
        raise ConfigError("network_train_unet_only and network_train_text_encoder_only exclude each other; set one.")
    if cfg.lr_scheduler == "constant" and cfg.lr_warmup_steps > 0:
        raise ConfigError(
            "lr_scheduler 'constant' ignores warm-up, but lr_warmup_steps is set. Use "
            "'constant_with_warmup', or set lr_warmup_steps to 0."
        )
    kind = OPTIMIZERS[cfg.optimizer_type]
    if kind.adaptive:
        lrs = {lr for lr in (cfg.effective_unet_lr, cfg.effective_text_encoder_lr) if lr}
        if len(lrs) > 1:
            raise ConfigError(
                "{optimizer} adapts one learning rate for all parameters, so unet_lr ({unet_lr}) and "
                "text_encoder_lr ({te_lr}) must be equal (the tutorial sets all learning rates to 1), or set one "
                "of them to 0.", optimizer=cfg.optimizer_type, unet_lr=cfg.effective_unet_lr,
                te_lr=cfg.effective_text_encoder_lr
            )
    if cfg.lr_scheduler == "adafactor" and cfg.optimizer_type != "Adafactor":
        raise ConfigError("lr_scheduler 'adafactor' works only with optimizer_type Adafactor.")
    if cfg.network_alpha > cfg.network_dim:
        notes.append(said("network_alpha {alpha:g} is above network_dim {dim}: the update is scaled up by {scale:g}; "
                          "the tutorial uses half the rank or less.", alpha=cfg.network_alpha, dim=cfg.network_dim,
                          scale=cfg.network_alpha / cfg.network_dim))
    if cfg.sample_every_n_epochs and not cfg.sample_prompts:
        raise ConfigError("sample_every_n_epochs needs sample_prompts (a prompts file).")
    if cfg.network_module not in NETWORK_MODULES:
        raise ConfigError("network_module '{module}': facelora trains {modules} only.", module=cfg.network_module,
                          modules=", ".join(NETWORK_MODULES))
    try:
        check_network_args(cfg)
    except FaceloraError as e:
        raise ConfigError("{module}: {error}", module=cfg.network_module, error=e) from None
    if cfg.max_token_length != 75:
        raise ConfigError("max_token_length {n}: facelora reads 75 caption tokens, as SD1.5 does. Shorten long "
                          "captions (a face needs few tags) and set 75.", n=cfg.max_token_length)
    face_training_checks(cfg)
    full_precision_checks(cfg)
    changes: dict[str, Any] = {}
    if kind.plain and not bitsandbytes_imports():
        notes.append(said("{optimizer} needs the bitsandbytes package, which does not import here (pip install "
                          "bitsandbytes), so {plain} (same update, 32-bit states) is used. Choose {choices} to silence "
                          "this.", optimizer=cfg.optimizer_type, plain=kind.plain, choices=_torch_optimizers()))
        changes["optimizer_type"] = kind.plain
    elif kind.plain and not cuda:  # measured: see README, "Speed and memory"
        notes.append(said("{optimizer} runs on the CPU through bitsandbytes, but its step is slow there (rank 128: "
                          "about 9x fused AdamW's optimizer step); {plain} is faster on the CPU and needs about 0.4 GiB "
                          "more memory.", optimizer=cfg.optimizer_type, plain=kind.plain))
    if not cuda:
        if cfg.mixed_precision == "fp16" and os.environ.get(CPU_FP16_ENV) != "1":
            notes.append(said("mixed_precision fp16 is for NVIDIA GPUs: on the CPU, fp16 autocast runs a 3x3 "
                              "convolution about 700x slower than fp32 (measured, see README), so this run trains in "
                              "fp32. Ask for bf16 to use the CPU's bf16 autocast.{full_fp16}",
                              full_fp16=" full_fp16 is off with it." if cfg.full_fp16 else ""))
            changes.update(mixed_precision="no", full_fp16=False)
        if cfg.xformers:
            notes.append(said("xformers needs CUDA; PyTorch's SDPA attention is used instead."))
            changes["xformers"] = False
    return (cfg.model_copy(update=changes) if changes else cfg), notes


def full_precision_checks(cfg: TrainConfig) -> None:
    """full_fp16 / full_bf16 put the LoRA itself in the autocast dtype, so each needs its own
    mixed_precision (sd-scripts asserts the same)."""
    if cfg.full_fp16 and cfg.full_bf16:
        raise ConfigError("full_fp16 and full_bf16 exclude each other: set one, with mixed_precision fp16 or bf16 "
                          "to match.")
    for flag, precision in (("full_fp16", "fp16"), ("full_bf16", "bf16")):
        if getattr(cfg, flag) and cfg.mixed_precision != precision:
            raise ConfigError("{flag} requires mixed_precision {precision} (it is '{current}'): set "
                              "--mixed_precision {precision}, or turn {flag} off.",
                              flag=flag, precision=precision, current=cfg.mixed_precision)


def face_training_checks(cfg: TrainConfig) -> None:
    """Masked loss, validation and class images: what cannot work, said before the model loads."""
    mask_checks(cfg)
    if cfg.prior_loss_weight != 1.0 and not cfg.reg_data_dir:
        raise ConfigError("prior_loss_weight {weight:g} weights class images, but reg_data_dir is not set: run "
                          "'facelora reg generate PROJECT' and set reg_data_dir = \"reg\".",
                          weight=cfg.prior_loss_weight)
    if (cfg.validate_every_n_steps or cfg.validate_every_n_epochs or cfg.max_validation_steps) \
            and not (cfg.validation_split or cfg.validation_data_dir):
        raise ConfigError("validate_every_n_steps/epochs and max_validation_steps need validation_split "
                          "(the fraction of the photos held out, e.g. 0.1) or validation_data_dir (a folder of them).")


def mask_checks(cfg: TrainConfig) -> None:
    """masked_loss reads masks from the alpha channel or from conditioning_data_dir, as Kohya's:
    one of them, and what Kohya's conditioning (ControlNet) dataset cannot train, refused."""
    if cfg.masked_loss and not (cfg.alpha_mask or cfg.conditioning_data_dir):
        raise ConfigError("masked_loss needs masks: set alpha_mask (prepare --head-mask writes them as the PNGs' alpha "
                          "channel) or conditioning_data_dir (prepare --head-mask --mask-dir mask writes them there).")
    if not cfg.conditioning_data_dir:
        return
    if not cfg.masked_loss:
        raise ConfigError("conditioning_data_dir holds loss masks, which only masked_loss reads (as in Kohya): set "
                          "masked_loss too, or unset conditioning_data_dir.")
    if cfg.alpha_mask:
        raise ConfigError("alpha_mask and conditioning_data_dir both give the masks; Kohya's conditioning dataset "
                          "ignores the alpha channel: keep one of them.")
    if cfg.reg_data_dir:
        raise ConfigError("Kohya's masks from conditioning_data_dir come with a dataset that holds no class images "
                          "(reg_data_dir): use alpha masks for masked loss with class images (prepare --head-mask).")
    if cfg.validation_split:
        raise ConfigError("Kohya's conditioning dataset refuses validation_split (its held-out photos' masks count as "
                          "extra conditioning images): hold photos out in validation_data_dir instead, or use alpha masks.")


# --- presets from the tutorial ---------------------------------------------------------------

_STATIC = dict(
    optimizer_type="AdamW8bit", optimizer_args=[], lr_scheduler="cosine_with_restarts",
    lr_scheduler_num_cycles=3, learning_rate=1e-4, unet_lr=1e-4, text_encoder_lr=5e-5,
)
PRESETS: dict[str, dict[str, Any]] = {
    # Scheme 1, static learning rate: Kohya's recommended rates, AdamW8bit, cosine with restarts.
    "static": _STATIC,
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
    # Scheme 1 trained for the face (README, "The face preset"): the loss weighted to the head
    # mask prepare --head-mask writes; a tenth of the photos held out for a validation loss that
    # says which epoch to keep; min-SNR 5, which evens out the timesteps' pull (Hang et al. 2023).
    "face": dict(
        _STATIC, masked_loss=True, alpha_mask=True, validation_split=0.1, min_snr_gamma=5.0,
    ),
}


def preset(name: str) -> dict[str, Any]:
    if name not in PRESETS:
        raise ConfigError("Unknown preset '{name}'; choose one of {presets}.", name=name, presets=", ".join(PRESETS))
    return dict(PRESETS[name])

