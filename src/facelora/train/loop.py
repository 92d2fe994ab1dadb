"""The training loop: a LoRA of SD1.5 as Kohya's train_network.py trains it.

It reads top to bottom: checks, data, model, network, latents, optimizer, then the loop (one
optimizer step = gradient_accumulation_steps micro-batches), with saving and samples at the end
of each epoch. The parts it calls are one import away: data.py (images, buckets, batch order,
latent cache), loss.py (noise and the objective), optim.py (optimizers and schedulers by Kohya's
names), checkpoints.py (file names, metadata), samples.py (sample images), progress.py (terminal,
TensorBoard, events.jsonl), state.py (the loop's state), resume.py (the state saved for --resume),
stopping.py (Ctrl-C and SIGTERM), host_memory.py (malloc's thresholds while the CPU trains), and
step.py: the model made ready for training and one optimizer step, which bench/ measures too.

accelerate's Accelerator owns the device, mixed precision (autocast, and the GradScaler for
fp16), gradient synchronisation between micro-batches (no_sync) and processes; only the main
process writes files.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from rich.console import Console

from ..config import ConfigError, TrainConfig, check
from ..dataset import missing_caption_warning, scan
from ..errors import FaceloraError
from ..estimate import estimate
from ..model.base import load_base
from ..project import Project, samples_dir, tensorboard_run_name
from . import checkpoints
from . import resume as saved
from .data import TrainData, cache_latents, epoch_loader, resolution_note
from .host_memory import FreedMemoryReuse
from .optim import current_lrs, make_optimizer, make_scheduler
from .progress import Reporter
from .samples import make_samples, read_prompts
from .state import LoopState
from .step import Stepper, make_accelerator, prepare_network
from .stopping import StopRequest

class TrainingDiverged(FaceloraError):
    """Too many steps in a row with a NaN/inf loss."""


@dataclass
class TrainResult:
    files: list[Path]  # LoRA files of this run still on disk, in the order written
    final: Path | None  # <output_name>.safetensors (None when interrupted)
    samples: list[Path]
    state: LoopState
    losses: list[float]  # every step's loss (NaN for a skipped step)
    latents_encoded: int  # images put through the VAE for the cache this run (0: all came from disk)
    notes: list[str] = field(default_factory=list)
    interrupted: bool = False

    @property
    def average_loss(self) -> float:
        return self.state.average_loss


def train(project: Project, cfg: TrainConfig, *, allow_pickle: bool = False, resume: bool = False,
          console: Console | None = None) -> TrainResult:
    """Train the LoRA `cfg` describes on the project's images; write the files, samples and logs.
    `cfg` is usually project.train_config() with the run's overrides applied (folders absolute).
    resume: go on from the state saved with the run's last file (PROJECT/log/state/latest)."""

    # --- checks: everything that can be wrong is found before the model loads ------------------
    cuda = torch.cuda.is_available()
    cfg, notes = check(cfg, cuda)
    if not cfg.pretrained_model_name_or_path:
        raise ConfigError("No base model: set pretrained_model_name_or_path (--base-model PATH), an SD1.5 "
                          ".safetensors file or diffusers folder.")
    dataset = scan(cfg.train_data_dir, cfg.caption_extension)
    if warning := missing_caption_warning(dataset, cfg.caption_extension):
        notes.append(warning)
    if warning := resolution_note(dataset, cfg):
        notes.append(warning)
    prompts = read_prompts(cfg.sample_prompts) if cfg.sample_every_n_epochs else []
    if cfg.network_weights and not Path(cfg.network_weights).is_file():
        raise ConfigError(f"network_weights: no LoRA file at {cfg.network_weights}.")

    accelerator = make_accelerator(cfg.mixed_precision, cpu=not cuda)
    device, main = accelerator.device, accelerator.is_main_process
    data = TrainData(dataset, cfg)
    plan = data.plan(accelerator.num_processes)
    started_at = time.time()
    run_dir = Path(cfg.logging_dir) / tensorboard_run_name(cfg.output_name, started_at)
    reporter = Reporter(project.events_path, run_dir, enabled=main, console=console)

    # --- the base model, frozen; the LoRA network on it, in fp32 --------------------------------
    model = load_base(cfg.pretrained_model_name_or_path, allow_pickle)
    network, network_notes = prepare_network(model, cfg, device)
    notes += network_notes

    # --- latents: each image through the VAE once ----------------------------------------------
    latents, encoded = None, 0
    if cfg.cache_latents:
        cache_dir = project.latent_cache_dir if cfg.cache_latents_to_disk else None
        with accelerator.main_process_first():  # the others then read the main process's files
            latents, encoded = cache_latents(data, model.vae, cache_dir, cfg.seed)

    # --- optimizer and learning-rate schedule ---------------------------------------------------
    optim = make_optimizer(cfg, network.unet_parameters(), network.text_encoder_parameters())
    scheduler = make_scheduler(cfg, optim, plan.total_steps, accelerator.num_processes)
    notes += optim.notes
    network, optim.optimizer, scheduler = accelerator.prepare(network, optim.optimizer, scheduler)
    optimizer = optim.optimizer
    stepper = Stepper(model, network, optimizer, scheduler, accelerator, cfg)
    info = checkpoints.RunInfo(cfg, plan, data, model.name, dataset.subsets[0].concept.trigger,
                               optim.description, started_at)

    # --- the loop ------------------------------------------------------------------------------
    state, finished = LoopState(cfg.seed), False
    if resume:
        folder, found = saved.latest_state(project.state_dir)
        notes += found
        if folder is None:
            raise saved.no_state_error(project.state_dir, found)
        back = saved.load_state(folder, accelerator.unwrap_model(network), optimizer, scheduler, cfg,
                                accelerator.num_processes, accelerator.scaler)
        state, finished = back.loop, back.finished
        notes += back.notes
        if main:
            for partial in saved.remove_partial_files(Path(cfg.output_dir), cfg.output_name):
                notes.append(f"Removed {partial.name}: half of a LoRA file whose save was cut off.")
        notes.append(f"Resuming at step {state.global_step} of {plan.total_steps} (epoch {state.epoch}) "
                     f"from {project.state_dir / folder.name}.")
    losses: list[float] = []
    files: list[Path] = []
    samples: list[Path] = []
    reporter.start(cfg, plan, f"{device} x {accelerator.num_processes}" if accelerator.num_processes > 1 else str(device),
                   state.global_step, notes)
    if model.is_tiny:
        reporter.note("The tiny test model has random weights: its LoRA files and samples are noise, not results.")
    else:  # SD1.5's measured step figures (facelora.estimate), for the steps still to go
        reporter.note(estimate(cfg, plan.total_steps - state.global_step, str(device)).summary())

    def write(path: Path, kind: str, epoch: int) -> None:
        """A LoRA file (and, with save_state, the state to resume from) on the main process."""
        if main:
            lora = accelerator.unwrap_model(network)
            checkpoints.save(lora, info, path, epoch, state.global_step)
            files.append(path)
            reporter.saved(path, state.global_step, epoch, kind)
            saved.test_hook("lora-saved", state.global_step)
            if cfg.save_state:
                saved.save_state(project.state_dir, lora, optimizer, scheduler, state, cfg, scaler=accelerator.scaler,
                                 finished=kind == "final", num_processes=accelerator.num_processes)
        accelerator.wait_for_everyone()

    def stop_requested() -> bool:
        """Ctrl-C or SIGTERM since the last step, on any process (they stop together)."""
        if accelerator.num_processes == 1:
            return stop.requested
        if stop.requested:
            accelerator.set_trigger()
        return accelerator.check_trigger()

    if finished:
        final = checkpoints.epoch_path(cfg, plan.epochs, final=True)
        reporter.end(state.global_step, state.epoch, _finite_or_none(state.average_loss), [],
                     f"Nothing to resume: this run already finished at step {state.global_step}. Final LoRA: {final}")
        reporter.close()
        return TrainResult([], final, [], state, [], encoded, notes)

    stop = StopRequest().install()  # Ctrl-C / SIGTERM: stop after the step, save, return
    memory = FreedMemoryReuse().install(device)  # the CPU's steps reuse the memory they free
    try:
        while not finished:
            # (none left when a run resumes from a step save at its last step: only the epoch's end)
            for micro_batches in [] if state.global_step >= plan.total_steps else epoch_loader(data, state.epoch, state.step_in_epoch, latents,
                                              accelerator.num_processes, accelerator.process_index,
                                              cfg.max_data_loader_n_workers):
                loss_value, finite = stepper.run(micro_batches, state)
                state.global_step += 1
                state.step_in_epoch += 1
                losses.append(loss_value)
                if finite:
                    state.nonfinite_in_row = 0
                    avg = state.record(loss_value, plan.steps_per_epoch)
                    reporter.step(state.global_step, state.epoch, loss_value, avg, current_lrs(optim, scheduler))
                else:
                    skipped(state, reporter, cfg)
                saved.test_hook("step", state.global_step)
                if cfg.save_every_n_steps and state.global_step % cfg.save_every_n_steps == 0:
                    write(checkpoints.step_path(cfg, state.global_step), "step", state.epoch)
                if stop_requested():
                    raise KeyboardInterrupt
                if state.global_step >= plan.total_steps:
                    break

            # --- end of an epoch: save, prune, sample -------------------------------------------
            epoch, last = state.epoch, state.global_step >= plan.total_steps
            reporter.epoch_end(epoch, state.global_step, state.epoch_mean_loss)
            if not last:
                state.next_epoch()  # first, so the state saved with the file resumes in the next epoch
            if last or (cfg.save_every_n_epochs and epoch % cfg.save_every_n_epochs == 0):
                write(checkpoints.epoch_path(cfg, epoch, final=last), "final" if last else "epoch", epoch)
                stale = None if last else checkpoints.stale_epoch_file(cfg, epoch)
                if stale is not None and main:
                    stale.unlink()
                    files = [f for f in files if f != stale]
                    reporter.removed(stale)
            if prompts and epoch % cfg.sample_every_n_epochs == 0:
                if main:
                    paths = make_samples(model, prompts, samples_dir(cfg.output_dir), cfg.output_name, epoch,
                                         sampler=cfg.sample_sampler, clip_skip=cfg.clip_skip, base_seed=cfg.seed,
                                         autocast=accelerator.autocast)
                    samples += paths
                    reporter.samples(paths, state.global_step, epoch)
                accelerator.wait_for_everyone()
            finished = last
            if not finished and stop_requested():
                raise KeyboardInterrupt
    except KeyboardInterrupt:
        if stop.twice:  # a second Ctrl-C: out at once; every file already saved is complete
            reporter.end(state.global_step, state.epoch, _finite_or_none(state.average_loss), files,
                         f"Stopped at once at step {state.global_step}; nothing more was saved.", interrupted=True)
            reporter.close()
            raise
        # Ctrl-C or SIGTERM (the GUI's Stop): keep what was learnt, under a name no epoch file has
        path = checkpoints.interrupted_path(cfg, state.global_step)
        if state.global_step > 0:
            write(path, "interrupted", state.epoch)
        reporter.end(state.global_step, state.epoch, _finite_or_none(state.average_loss), files,
                     f"Interrupted at step {state.global_step}." + (f" Saved {path.name}." if state.global_step else ""),
                     interrupted=True)
        reporter.close()
        return TrainResult(files, None, samples, state, losses, encoded, notes, interrupted=True)
    except BaseException as e:
        reporter.error(state.global_step, str(e) or type(e).__name__)
        reporter.close()
        raise
    finally:
        stop.uninstall()
        memory.uninstall()

    final = checkpoints.epoch_path(cfg, plan.epochs, final=True)
    reporter.end(state.global_step, state.epoch, _finite_or_none(state.average_loss), files,
                 f"Training finished: {state.global_step} steps, {state.epoch} epochs, average loss "
                 f"{state.average_loss:.4f}. Final LoRA: {final}")
    reporter.close()
    return TrainResult(files, final, samples, state, losses, encoded, notes)


def skipped(state: LoopState, reporter: Reporter, cfg: TrainConfig) -> None:
    """A step whose loss (or gradient) was NaN/inf: the weights were left as they were."""
    state.nonfinite_in_row += 1
    state.nonfinite_total += 1
    reporter.skipped(state.global_step, state.epoch, state.nonfinite_in_row,
                     f"Step {state.global_step}: the loss or gradient is NaN/inf; the step was skipped "
                     f"({state.nonfinite_in_row} in a row, {state.nonfinite_total} in all).")
    if state.nonfinite_in_row >= cfg.max_nonfinite_steps:
        raise TrainingDiverged(
            f"Training stopped: {state.nonfinite_in_row} steps in a row had a NaN/inf loss (max_nonfinite_steps "
            f"{cfg.max_nonfinite_steps}); the weights were not changed by them. Likely causes: a learning rate "
            f"too high for {cfg.optimizer_type} (now unet_lr {cfg.effective_unet_lr:g}, text_encoder_lr "
            f"{cfg.effective_text_encoder_lr:g}); fp16 on a card without proper fp16 support, or an fp16 overflow "
            f"(try --mixed_precision bf16 or no); a broken training image (re-save or remove it); a broken base "
            f"model or LoRA (network_weights); or a large noise_offset. The files and training states saved "
            f"before are kept: lower the rate or change precision and train again, or --resume from the last state."
        )


def _finite_or_none(v: float) -> float | None:
    return v if math.isfinite(v) else None
