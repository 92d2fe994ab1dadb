"""The training loop: a LoRA of SD1.5 as Kohya's train_network.py trains it.

It reads top to bottom: checks, the plan (facelora.plan.plan_for, what `facelora plan` shows),
data, model, network, latents, optimizer, where the run starts (step 0 or a resumed state), then
the loop (one optimizer step = gradient_accumulation_steps micro-batches), with saving and samples
at the end of each epoch, and one exit. The parts it calls are one import away: data.py (images,
batch order, latent cache), loss.py (noise and the objective), optim.py (optimizers and schedulers
by Kohya's names), checkpoints.py (file names, metadata), writer.py (the files a run writes: LoRA
files, states, samples), samples.py (sample images), progress.py (terminal, TensorBoard,
events.jsonl), state.py (the loop's state), resume.py (the state saved for --resume, and putting
it back), stopping.py (Ctrl-C and SIGTERM), host_memory.py (malloc's thresholds while the CPU
trains), and step.py: the model made ready for training and one optimizer step, which bench/
measures too.

accelerate's Accelerator owns the device, mixed precision (autocast, and the GradScaler for
fp16), gradient synchronisation between micro-batches (no_sync) and processes; only the main
process writes files.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import torch
from rich.console import Console
from rich.markup import escape

from ..config import ConfigError, TrainConfig, check
from ..dataset import Dataset, caption_notes, scan_for
from ..errors import FaceloraError, said_by
from ..estimate import estimate
from ..filenames import tensorboard_run_name
from ..messages import Message, said
from ..model.base import load_base
from ..plan import Plan, plan_for
from ..project import Project
from ..vram import detected_vram_gib, vram_plan
from . import attention, checkpoints, precision
from . import resume as saved
from .data import TrainData, cache_latents, epoch_loader, missing_mask_warning
from .host_memory import FreedMemoryReuse
from .optim import current_lrs, make_optimizer, make_scheduler
from .progress import Reporter
from .samples import SamplePrompt, read_prompts
from .state import LoopState
from .step import Stepper, make_accelerator, prepare_network
from .stopping import StopRequest
from .validation import Validator, due, make_validator
from .writer import RunFiles

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
    notes: list[Message] = field(default_factory=list)  # the start notes (their .text is what the terminal printed)
    interrupted: bool = False

    @property
    def average_loss(self) -> float:
        return self.state.average_loss


@dataclass
class Loop:
    """What the loop runs with, made ready by train()."""

    cfg: TrainConfig
    plan: Plan
    data: TrainData
    latents: list[torch.Tensor] | None
    accelerator: Any
    stepper: Stepper
    optim: Any
    reporter: Reporter
    out: RunFiles
    validator: Validator | None = None  # the validation loss, when validation_split holds photos out


def train(project: Project, cfg: TrainConfig, *, allow_pickle: bool = False, resume: bool = False,
          console: Console | None = None) -> TrainResult:
    """Train the LoRA `cfg` describes on the project's images; write the files, samples and logs.
    `cfg` is usually project.train_config() with the run's overrides applied (folders absolute).
    resume: go on from the state saved with the run's last file (PROJECT/log/state/latest)."""
    cuda = torch.cuda.is_available()
    cfg, dataset, prompts, notes = checked(cfg, cuda)  # all of it before the model loads
    accelerator = make_accelerator(cfg.mixed_precision, cpu=not cuda, full_fp16=cfg.full_fp16)
    device, processes = accelerator.device, accelerator.num_processes
    data = TrainData(dataset, cfg)
    plan = plan_for(cfg, dataset, processes)  # what `facelora plan` shows
    notes += data.size_notes()
    started_at = time.time()

    # --- the base model, frozen; the LoRA network on it, in fp32 --------------------------------
    model = load_base(cfg.pretrained_model_name_or_path, allow_pickle)
    network, network_notes = prepare_network(model, cfg, device)
    notes += network_notes
    if model.is_tiny:
        notes.append(said("The tiny test model has random weights: its LoRA files and samples are noise, not results."))

    # --- latents: each image through the VAE once ----------------------------------------------
    latents, encoded = None, 0
    cache_dir = project.latent_cache_dir if cfg.cache_latents_to_disk else None
    with accelerator.main_process_first():  # the others then read the main process's files
        if cfg.cache_latents:
            latents, encoded = cache_latents(data, model.vae, cache_dir, cfg.seed)
        validator = make_validator(dataset, cfg, model.vae, cache_dir)  # validation_split's held-out photos

    # --- optimizer and learning-rate schedule ---------------------------------------------------
    optim = make_optimizer(cfg, network.unet_parameters(), network.text_encoder_parameters(),
                           network.unet_parameter_blocks())
    scheduler = make_scheduler(cfg, optim, plan.total_steps, processes)
    notes += optim.notes
    network, optim.optimizer, scheduler = accelerator.prepare(network, optim.optimizer, scheduler)
    stepper = Stepper(model, network, optim.optimizer, scheduler, accelerator, cfg)
    info = checkpoints.RunInfo(cfg, plan, data, model.name, dataset.subsets[0].concept.trigger,
                               optim.description, started_at)

    # --- where the run starts: step 0, or the state saved for --resume -------------------------
    state, finished = LoopState(cfg.seed), False
    if resume:
        back = saved.resume_run(project.state_dir, network, optim.optimizer, scheduler, cfg, accelerator,
                                plan.total_steps, stepper.ema)
        state, finished = back.loop, back.finished
        notes += back.notes

    run_dir = Path(cfg.logging_dir) / tensorboard_run_name(cfg.output_name, started_at)
    reporter = Reporter(project.events_path, run_dir, enabled=accelerator.is_main_process, console=console)
    out = RunFiles(project, cfg, accelerator, network, optim.optimizer, scheduler, info, reporter, model, prompts,
                   stepper.ema)
    loop = Loop(cfg, plan, data, latents, accelerator, stepper, optim, reporter, out, validator)
    final, losses = checkpoints.epoch_path(cfg, plan.epochs, final=True), []
    # Ctrl-C / SIGTERM: stop after the step, save, return; the CPU's steps reuse the memory they free
    with reported(reporter, state), StopRequest() as stop, FreedMemoryReuse().install(device):
        announce(reporter, loop, model, state, notes)
        try:
            if not finished:
                run_epochs(loop, state, stop, losses)
            message = finished_message(state, final, finished)
            result = TrainResult(out.files, final, out.samples, state, losses, encoded, notes)
        except KeyboardInterrupt:
            if stop.twice:  # a second Ctrl-C: out at once; every file already saved is complete
                reporter.end(state.global_step, state.epoch, state.average_loss, out.files,
                             said("Stopped at once at step {step}; nothing more was saved.", step=state.global_step),
                             interrupted=True)
                raise
            # Ctrl-C or SIGTERM (the GUI's Stop): keep what was learnt, under a name no epoch file has
            path = checkpoints.interrupted_path(cfg, state.global_step)
            if state.global_step > 0:
                out.lora(path, "interrupted", state.epoch, state)
            message = interrupted_message(state.global_step, path)
            result = TrainResult(out.files, None, out.samples, state, losses, encoded, notes, interrupted=True)
        reporter.end(state.global_step, state.epoch, state.average_loss, result.files, message,
                     interrupted=result.interrupted)
    return result


def finished_message(state: LoopState, final: Path, finished: bool) -> Message:
    """The run's last line: trained to its end, or already finished before this --resume."""
    if finished:
        return said("Nothing to resume: this run already finished at step {step}. Final LoRA: {final}",
                       step=state.global_step, final=final)
    return said("Training finished: {step} steps, {epochs} epochs, average loss {loss:.4f}. Final LoRA: {final}",
                   step=state.global_step, epochs=state.epoch, loss=state.average_loss, final=final)


def interrupted_message(step: int, saved_as: Path) -> Message:
    """The last line of a stopped run: where it stopped, and the file it saved there (none at step 0)."""
    if step:
        return said("Interrupted at step {step}. Saved {file}.", step=step, file=saved_as.name)
    return said("Interrupted at step {step}.", step=step)


def announce(reporter: Reporter, loop: Loop, model, state: LoopState, notes: list[Message]) -> None:
    """The run's start: its parameters, the precision and attention it actually uses, the plan,
    the notes, and what a step will cost (time; on CUDA the card's memory, part by part)."""
    cfg, plan, accelerator = loop.cfg, loop.plan, loop.accelerator
    device, processes = accelerator.device, accelerator.num_processes
    used = (("precision", precision.describe(cfg.mixed_precision, device, accelerator.scaler,
                                                cfg.full_half)),
            ("attention", attention.in_use(model.unet)))
    reporter.start(cfg, plan, f"{device} x {processes}" if processes > 1 else str(device), state.global_step, notes,
                   used)
    if not model.is_tiny:  # SD1.5's measured step figures (facelora.estimate), for the steps still to go
        reporter.note(estimate(cfg, plan.total_steps - state.global_step, str(device)).summary())
        if device.type == "cuda":  # what the card has to hold, part by part (facelora.vram)
            reporter.print(escape("\n".join(vram_plan(cfg, detected_vram_gib()).lines)))


def checked(cfg: TrainConfig, cuda: bool) -> tuple[TrainConfig, Dataset, list[SamplePrompt], list[Message]]:
    """Everything that can be wrong, found before the model loads: the config (made to fit the
    machine), the base model's setting, the training folder, the prompts file, network_weights."""
    cfg, notes = check(cfg, cuda)
    if not cfg.pretrained_model_name_or_path:
        raise ConfigError("No base model: set pretrained_model_name_or_path (--base-model PATH), an SD1.5 "
                          ".safetensors file or diffusers folder.")
    dataset = scan_for(cfg)
    notes += caption_notes(dataset, cfg.caption_extension)
    if warning := missing_mask_warning(dataset, cfg):
        notes.append(warning)
    prompts = read_prompts(cfg.sample_prompts) if cfg.sample_every_n_epochs else []
    if cfg.network_weights and not Path(cfg.network_weights).is_file():
        raise ConfigError("network_weights: no LoRA file at {path}.", path=str(cfg.network_weights))
    return cfg, dataset, prompts, notes


def run_epochs(loop: Loop, state: LoopState, stop: StopRequest, losses: list[float]) -> None:
    """The optimizer steps from `state` to the plan's last one, epoch by epoch, with the saves
    and samples at each epoch's end; every step's loss goes into `losses`. Raises
    KeyboardInterrupt when a stop is asked for (after the step)."""
    cfg, plan, reporter, accelerator = loop.cfg, loop.plan, loop.reporter, loop.accelerator
    while True:
        # (no steps left when a run resumes from a step save at its last step: only the epoch's end)
        for micro_batches in [] if state.global_step >= plan.total_steps else epoch_loader(
                loop.data, state.epoch, state.step_in_epoch, loop.latents, accelerator.num_processes,
                accelerator.process_index, cfg.max_data_loader_n_workers):
            loss_value, finite = loop.stepper.run(micro_batches, state)
            state.global_step += 1
            state.step_in_epoch += 1
            losses.append(loss_value)
            if finite:
                state.nonfinite_in_row = 0
                avg = state.record(loss_value, plan.steps_per_epoch)
                reporter.step(state.global_step, state.epoch, loss_value, avg,
                              {**current_lrs(loop.optim, loop.stepper.scheduler), **loop.stepper.norm_scalars})
            else:
                skipped(state, reporter, cfg)
            if loop.validator and due(cfg, step=state.global_step):
                validate(loop, state, "step")
            if cfg.save_every_n_steps and state.global_step % cfg.save_every_n_steps == 0:
                loop.out.lora(checkpoints.step_path(cfg, state.global_step), "step", state.epoch, state)
            if stop.anywhere(accelerator):
                raise KeyboardInterrupt
            if state.global_step >= plan.total_steps:
                break

        # --- end of an epoch: save, prune, sample ---------------------------------------------------
        epoch, last = state.epoch, state.global_step >= plan.total_steps
        reporter.epoch_end(epoch, state.global_step, state.epoch_mean_loss)
        if loop.validator and due(cfg, epoch=epoch):  # before the save, which keeps it (ss_validation_loss)
            validate(loop, state, "epoch")
        if not last:
            state.next_epoch()  # first, so the state saved with the file resumes in the next epoch
        loop.out.epoch_end(epoch, last, state)
        if last:
            return
        if stop.anywhere(accelerator):
            raise KeyboardInterrupt


def validate(loop: Loop, state: LoopState, at: str) -> None:
    """The validation loss now, reported and kept in the state for the next saved file."""
    s = loop.stepper
    state.validation_loss = loop.validator.loss(s.model, s.network, loop.accelerator, s.snr)
    loop.reporter.validation(state.global_step, state.epoch, state.validation_loss, at, len(loop.validator.data))


@contextmanager
def reported(reporter: Reporter, state: LoopState) -> Iterator[Reporter]:
    """The run's reporter, closed however the run ends; an error is written to events.jsonl first
    (Ctrl-C is not an error: the loop reports it as the run's end)."""
    try:
        yield reporter
    except KeyboardInterrupt:
        raise
    except BaseException as e:
        reporter.error(state.global_step, said_by(e))
        raise
    finally:
        reporter.close()


def skipped(state: LoopState, reporter: Reporter, cfg: TrainConfig) -> None:
    """A step whose loss (or gradient) was NaN/inf: the weights were left as they were."""
    state.nonfinite_in_row += 1
    state.nonfinite_total += 1
    reporter.skipped(state.global_step, state.epoch, state.nonfinite_in_row,
                     said("Step {step}: the loss or gradient is NaN/inf; the step was skipped ({row} in a row, "
                             "{total} in all).", step=state.global_step, row=state.nonfinite_in_row,
                             total=state.nonfinite_total))
    if state.nonfinite_in_row >= cfg.max_nonfinite_steps:
        raise TrainingDiverged(
            "Training stopped: {row} steps in a row had a NaN/inf loss (max_nonfinite_steps {most}); the weights "
            "were not changed by them. Likely causes: a learning rate too high for {optimizer} (now unet_lr "
            "{unet_lr:g}, text_encoder_lr {te_lr:g}); fp16 on a card without proper fp16 support, or an fp16 "
            "overflow (try --mixed_precision bf16 or no); a broken training image (re-save or remove it); a broken "
            "base model or LoRA (network_weights); or a large noise_offset. The files and training states saved "
            "before are kept: lower the rate or change precision and train again, or --resume from the last state.",
            row=state.nonfinite_in_row, most=cfg.max_nonfinite_steps, optimizer=cfg.optimizer_type,
            unet_lr=cfg.effective_unet_lr, te_lr=cfg.effective_text_encoder_lr)
