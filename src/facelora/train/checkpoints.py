"""Writing the LoRA files of a run: Kohya's names, Kohya's metadata, the save precision, and
save_last_n_epochs' removal of older epoch files. Writes are atomic (model.lora.save_lora)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load as safetensors_load
from safetensors.torch import save as safetensors_save

from ..config import TrainConfig
from ..errors import FaceloraError
from ..fileio import atomic_write_json
from ..model.lora import kohya_metadata, save_lora
from ..plan import Plan, epoch_to_remove
from ..project import interrupted_filename, lora_filename
from .data import TrainData
from .state import LoopState

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


def metadata(info: RunInfo, epoch: int, step: int) -> dict[str, str]:
    cfg, plan, data = info.cfg, info.plan, info.data
    dirs = {s.folder.name: {"n_repeats": s.repeats, "img_count": len(s.images)} for s in data.dataset.subsets}
    return kohya_metadata(
        network_dim=cfg.network_dim, network_alpha=cfg.network_alpha, output_name=cfg.output_name,
        sd_model_name=info.base_model_name, clip_skip=cfg.clip_skip, resolution=cfg.resolution_wh,
        num_train_images=plan.samples_per_epoch, epoch=epoch, steps=step, training_started_at=info.started_at,
        tag_frequency=data.dataset.tag_frequency(), dataset_dirs=dirs, bucket_info=data.bucket_info(),
        learning_rate=cfg.learning_rate, unet_lr=cfg.effective_unet_lr if cfg.train_unet else None,
        text_encoder_lr=cfg.effective_text_encoder_lr if cfg.train_text_encoder else None,
        optimizer=info.optimizer, lr_scheduler=cfg.lr_scheduler, seed=cfg.seed, network_args=cfg.network_args,
        trigger_phrase=info.trigger, title=cfg.output_name,
        # the rest of what Kohya records, as ss_<name>
        max_train_steps=plan.total_steps, num_epochs=plan.epochs, num_batches_per_epoch=plan.steps_per_epoch,
        batch_size_per_device=cfg.train_batch_size, total_batch_size=cfg.train_batch_size * plan.num_processes
        * cfg.gradient_accumulation_steps, gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        gradient_checkpointing=cfg.gradient_checkpointing, lr_warmup_steps=cfg.warmup_steps(plan.total_steps),
        mixed_precision=cfg.mixed_precision, max_grad_norm=cfg.max_grad_norm, noise_offset=cfg.noise_offset,
        min_snr_gamma=cfg.min_snr_gamma, cache_latents=cfg.cache_latents, enable_bucket=cfg.enable_bucket,
        min_bucket_reso=cfg.min_bucket_reso, max_bucket_reso=cfg.max_bucket_reso, keep_tokens=cfg.keep_tokens,
        shuffle_caption=cfg.shuffle_caption, max_token_length=cfg.max_token_length,
        num_reg_images=0,
    )


def save(network, info: RunInfo, path: Path, epoch: int, step: int) -> Path:
    """Write the network's current weights to `path` in save_precision, with the metadata."""
    meta = metadata(info, epoch, step)
    meta["ss_training_finished_at"] = str(time.time())
    save_lora(path, network.kohya_state_dict(), meta, dtype=SAVE_DTYPES[info.cfg.save_precision])
    return path


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


# --- training state, for --resume ----------------------------------------------------------------

STATE_LATEST = "latest"
_STATE_FILES = ("network.safetensors", "optimizer.pt", "scheduler.pt", "loop_state.json", "run.json")


class ResumeError(FaceloraError):
    """No saved state, or one that does not fit this run."""


def _resume_key(cfg: TrainConfig, plan: Plan) -> dict:
    """What must not change between a run and its resumption."""
    return {"output_name": cfg.output_name, "network_dim": cfg.network_dim, "network_alpha": cfg.network_alpha,
            "train_unet": cfg.train_unet, "train_text_encoder": cfg.train_text_encoder,
            "optimizer_type": cfg.optimizer_type, "lr_scheduler": cfg.lr_scheduler, "seed": cfg.seed,
            "steps_per_epoch": plan.steps_per_epoch, "total_steps": plan.total_steps,
            "train_batch_size": cfg.train_batch_size,
            "gradient_accumulation_steps": cfg.gradient_accumulation_steps}


def save_state(state_dir: Path, network, optimizer, scheduler, scaler, loop_state: LoopState,
               cfg: TrainConfig, plan: Plan, lora_file: Path) -> Path:
    """The state a run resumes from, beside the LoRA file just written: the network in fp32, the
    optimizer, scheduler (and fp16 GradScaler) states, the LoopState. Only the newest is kept;
    it is built in a temporary folder and renamed into place, so a crash leaves the previous one."""
    state_dir = Path(state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".state-", dir=state_dir))
    try:
        (tmp / "network.safetensors").write_bytes(safetensors_save(network.kohya_state_dict()))
        torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
        torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
        if scaler is not None:
            torch.save(scaler.state_dict(), tmp / "scaler.pt")
        loop_state.save(tmp / "loop_state.json")
        atomic_write_json(tmp / "run.json", {"key": _resume_key(cfg, plan), "lora_file": str(lora_file)})
        latest = state_dir / STATE_LATEST
        old = state_dir / f".old-{os.getpid()}"
        if latest.exists():
            os.replace(latest, old)
        os.replace(tmp, latest)
        shutil.rmtree(old, ignore_errors=True)
        return latest
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def load_state(state_dir: Path, network, optimizer, scheduler, scaler, cfg: TrainConfig, plan: Plan) -> LoopState:
    """Put a saved state back into the run's network, optimizer, scheduler and scaler; return
    the LoopState to go on from. Tensors only: nothing here is unpickled as code."""
    latest = Path(state_dir) / STATE_LATEST
    if not all((latest / f).is_file() for f in _STATE_FILES):
        raise ResumeError(f"Nothing to resume: no saved training state in {latest}. States are saved with each "
                          f"LoRA file while save_state is on; train without --resume to start afresh.")
    run = json.loads((latest / "run.json").read_text(encoding="utf-8"))
    now = _resume_key(cfg, plan)
    changed = [f"{k} {run['key'].get(k)!r} -> {v!r}" for k, v in now.items() if run["key"].get(k) != v]
    if changed:
        raise ResumeError("The saved state belongs to a run with other settings (" + "; ".join(changed) + "). "
                          "Resume with the settings it was saved with, or train without --resume.")
    network.load_kohya_state_dict(safetensors_load((latest / "network.safetensors").read_bytes()))
    optimizer.load_state_dict(torch.load(latest / "optimizer.pt", weights_only=True))
    scheduler.load_state_dict(torch.load(latest / "scheduler.pt", weights_only=True))
    if scaler is not None and (latest / "scaler.pt").is_file():
        scaler.load_state_dict(torch.load(latest / "scaler.pt", weights_only=True))
    return LoopState.load(latest / "loop_state.json")
