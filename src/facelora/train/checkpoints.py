"""Writing the LoRA files of a run: Kohya's names, Kohya's metadata, the save precision, and
save_last_n_epochs' removal of older epoch files. Writes are atomic (lora_file.save_lora)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import torch

from ..config import TrainConfig
from ..filenames import ema_filename, interrupted_filename, lora_filename
from ..lora_file import kohya_metadata, save_lora
from ..plan import Plan, epoch_to_remove
from .data import TrainData

SAVE_DTYPES = {"float": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


@dataclass
class RunInfo:
    """What every file of a run records about it (the metadata that does not change per file)."""

    cfg: TrainConfig
    plan: Plan
    data: TrainData
    base_model_name: str
    trigger: str
    optimizer: str  # Kohya's ss_optimizer text
    started_at: float


def metadata(info: RunInfo, epoch: int, step: int, validation_loss: float | None = None) -> dict[str, str]:
    cfg, plan, data = info.cfg, info.plan, info.data
    dataset = data.dataset
    dirs, reg_dirs = ({s.folder.name: {"n_repeats": s.repeats, "img_count": len(s.images)} for s in subsets}
                      for subsets in (dataset.train_subsets, dataset.reg_subsets))
    # facelora's own key, only when there is one: the latest validation loss (Kohya records none)
    own = {} if validation_loss is None else {"validation_loss": f"{validation_loss:.6f}"}
    return kohya_metadata(
        network_dim=cfg.network_dim, network_alpha=cfg.network_alpha, network_dropout=cfg.network_dropout,
        output_name=cfg.output_name,
        sd_model_name=info.base_model_name, clip_skip=cfg.clip_skip, resolution=cfg.resolution_wh,
        num_train_images=dataset.num_train_samples, epoch=epoch, steps=step, training_started_at=info.started_at,
        tag_frequency=data.dataset.tag_frequency(), dataset_dirs=dirs, bucket_info=data.bucket_info(),
        learning_rate=cfg.learning_rate, unet_lr=cfg.effective_unet_lr if cfg.train_unet else None,
        text_encoder_lr=cfg.effective_text_encoder_lr if cfg.train_text_encoder else None,
        optimizer=info.optimizer, lr_scheduler=cfg.lr_scheduler, seed=cfg.seed, network_args=cfg.network_args,
        trigger_phrase=info.trigger, title=cfg.output_name, network_module=cfg.network_module,
        # the rest of what Kohya records, as ss_<name>
        max_train_steps=plan.total_steps, num_epochs=plan.epochs, num_batches_per_epoch=plan.steps_per_epoch,
        batch_size_per_device=cfg.train_batch_size, total_batch_size=cfg.train_batch_size * plan.num_processes
        * cfg.gradient_accumulation_steps, gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        gradient_checkpointing=cfg.gradient_checkpointing, lr_warmup_steps=cfg.warmup_steps(plan.total_steps),
        mixed_precision=cfg.mixed_precision, full_fp16=cfg.full_fp16, max_grad_norm=cfg.max_grad_norm,
        noise_offset=cfg.noise_offset,
        min_snr_gamma=cfg.min_snr_gamma, cache_latents=cfg.cache_latents, enable_bucket=cfg.enable_bucket,
        min_bucket_reso=cfg.min_bucket_reso, max_bucket_reso=cfg.max_bucket_reso, keep_tokens=cfg.keep_tokens,
        shuffle_caption=cfg.shuffle_caption, max_token_length=cfg.max_token_length,
        num_reg_images=sum(len(s.images) * s.repeats for s in dataset.reg_subsets),
        prior_loss_weight=cfg.prior_loss_weight, masked_loss=cfg.masked_loss, alpha_mask=cfg.alpha_mask,
        num_validation_images=plan.validation_images, validation_seed=cfg.validation_seed,
        validation_split=cfg.validation_split, max_validation_steps=cfg.max_validation_steps,
        reg_dataset_dirs=reg_dirs, **own,
    )


def save(network, info: RunInfo, path: Path, epoch: int, step: int, validation_loss: float | None = None,
         tensors: dict[str, torch.Tensor] | None = None) -> Path:
    """Write the network's current weights (or `tensors`: the EMA's) to `path` in save_precision,
    with the metadata (and the latest validation loss as ss_validation_loss)."""
    meta = metadata(info, epoch, step, validation_loss)
    meta["ss_training_finished_at"] = str(time.time())
    if tensors is not None:
        meta["ss_ema_decay"] = str(info.cfg.ema_decay)
    save_lora(path, network.kohya_state_dict() if tensors is None else tensors, meta,
              dtype=SAVE_DTYPES[info.cfg.save_precision])
    return path


def ema_path(path: Path) -> Path:
    return path.with_name(ema_filename(path.name))


def epoch_path(cfg: TrainConfig, epoch: int, final: bool) -> Path:
    return Path(cfg.output_dir) / lora_filename(cfg.output_name, epoch=None if final else epoch)


def step_path(cfg: TrainConfig, step: int) -> Path:
    return Path(cfg.output_dir) / lora_filename(cfg.output_name, step=step)


def interrupted_path(cfg: TrainConfig, step: int) -> Path:
    return Path(cfg.output_dir) / interrupted_filename(cfg.output_name, step)


def stale_epoch_file(cfg: TrainConfig, saved_epoch: int) -> Path | None:
    """The epoch file save_last_n_epochs drops once `saved_epoch` is saved, if it exists."""
    old = epoch_to_remove(saved_epoch, cfg.save_every_n_epochs, cfg.save_last_n_epochs)
    if old is None:
        return None
    path = epoch_path(cfg, old, final=False)
    return path if path.is_file() else None
