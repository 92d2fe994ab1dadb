"""The training loop: a LoRA of SD1.5 as Kohya's train_network.py trains it.

It reads top to bottom: checks, data, model, network, latents, optimizer, then the loop (one
optimizer step = gradient_accumulation_steps micro-batches), with saving and samples at the end
of each epoch. The parts it calls are one import away: data.py (images, buckets, batch order,
latent cache), loss.py (noise and the objective), optim.py (optimizers and schedulers by Kohya's
names), checkpoints.py (file names, metadata), samples.py (sample images), progress.py (terminal,
TensorBoard, events.jsonl), state.py (the loop's state), resume.py (the state saved for --resume),
stopping.py (Ctrl-C and SIGTERM), host_memory.py (malloc's thresholds while the CPU trains).

accelerate's Accelerator owns the device, mixed precision (autocast, and the GradScaler for
fp16), gradient synchronisation between micro-batches (no_sync) and processes; only the main
process writes files.
"""

from __future__ import annotations

import math
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState, GradientState
from accelerate.utils import set_seed
from rich.console import Console

from ..config import ConfigError, TrainConfig, check
from ..dataset import missing_caption_warning, scan
from ..errors import FaceloraError
from ..estimate import estimate
from ..model.base import encode_prompt, load_base, tokenize
from ..model.lora import LoRANetwork, read_lora
from ..project import Project
from . import checkpoints
from . import resume as saved
from .data import Batch, TrainData, cache_latents, encode, epoch_loader
from .host_memory import FreedMemoryReuse
from .loss import diffusion_loss, sample_noise, sample_timesteps, snr_table
from .optim import current_lrs, make_optimizer, make_scheduler
from .progress import Reporter
from .samples import make_samples, read_prompts
from .state import LoopState
from .stopping import StopRequest

LATENT_CACHE_DIR = Path("cache") / "latents"  # in the project, for cache_latents_to_disk


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
    prompts = read_prompts(cfg.sample_prompts) if cfg.sample_every_n_epochs else []
    if cfg.network_weights and not Path(cfg.network_weights).is_file():
        raise ConfigError(f"network_weights: no LoRA file at {cfg.network_weights}.")

    accelerator = make_accelerator(cfg.mixed_precision, cpu=not cuda)
    device, main = accelerator.device, accelerator.is_main_process
    data = TrainData(dataset, cfg)
    plan = data.plan(accelerator.num_processes)
    started_at = time.time()
    run_name = f"{cfg.output_name}_{time.strftime('%Y%m%d%H%M%S', time.localtime(started_at))}"
    reporter = Reporter(project.events_path, Path(cfg.logging_dir) / run_name, enabled=main, console=console)

    # --- the base model, frozen; the LoRA network on it, in fp32 --------------------------------
    model = load_base(cfg.pretrained_model_name_or_path, allow_pickle)
    weight_dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(cfg.mixed_precision, torch.float32) \
        if cuda else torch.float32  # on the CPU, bf16 autocast casts per operation
    for part in (model.unet, model.text_encoder, model.vae):
        part.requires_grad_(False)
    for part in (model.unet, model.text_encoder):
        part.to(device)
        if weight_dtype != torch.float32:
            part.to(weight_dtype)
    model.vae.to(device)  # fp32: the VAE overflows more easily in half precision
    if cfg.xformers:
        try:
            model.unet.enable_xformers_memory_efficient_attention()
        except (ImportError, ModuleNotFoundError, ValueError) as e:
            notes.append(f"xformers cannot be used ({e}); PyTorch's SDPA attention is used instead.")

    set_seed(cfg.seed)  # the LoRA's initial weights
    network = LoRANetwork(model.unet, model.text_encoder, cfg.network_dim, cfg.network_alpha,
                          train_unet=cfg.train_unet, train_text_encoder=cfg.train_text_encoder)
    network.apply_to()
    if cfg.network_weights:
        tensors, _ = read_lora(cfg.network_weights)
        network.load_kohya_state_dict(tensors)
        notes.append(f"Starting from the LoRA {cfg.network_weights}.")
    network.to(device)
    if cfg.gradient_checkpointing:
        model.unet.enable_gradient_checkpointing()
        if cfg.train_text_encoder:
            enable_text_encoder_checkpointing(model.text_encoder)
    model.unet.train()  # no dropout in SD1.5; train mode turns gradient checkpointing on
    model.text_encoder.train(cfg.train_text_encoder)
    if cfg.torch_compile:
        model.unet.compile()

    # --- latents: each image through the VAE once ----------------------------------------------
    latents, encoded = None, 0
    if cfg.cache_latents:
        cache_dir = project.root / LATENT_CACHE_DIR if cfg.cache_latents_to_disk else None
        with accelerator.main_process_first():  # the others then read the main process's files
            latents, encoded = cache_latents(data, model.vae, cache_dir, cfg.seed)

    # --- optimizer and learning-rate schedule ---------------------------------------------------
    optim = make_optimizer(cfg, network.unet_parameters(), network.text_encoder_parameters())
    scheduler = make_scheduler(cfg, optim, plan.total_steps, accelerator.num_processes)
    notes += optim.notes
    network, optim.optimizer, scheduler = accelerator.prepare(network, optim.optimizer, scheduler)
    optimizer = optim.optimizer
    trainable = [p for p in network.parameters() if p.requires_grad]
    snr = snr_table(model.noise_scheduler) if cfg.min_snr_gamma else None
    text_cache = text_cache_for(cfg)  # a frozen text encoder's outputs, computed once per caption
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
                # one optimizer step: gradients summed over the micro-batches, synchronised
                # between processes on the last one only
                step_loss = torch.zeros((), device=device)
                for j, batch in enumerate(micro_batches):
                    sync = j == len(micro_batches) - 1
                    with nullcontext() if sync else accelerator.no_sync(network):
                        with accelerator.autocast():
                            loss = batch_loss(model, batch, state, j, accelerator.process_index, cfg, snr, device,
                                              text_cache)
                        accelerator.backward(loss / len(micro_batches))
                    step_loss += loss.detach() / len(micro_batches)
                if accelerator.num_processes > 1:
                    # the LoRA runs inside the UNet's forward, never DDP's own, so DDP's hooks do not
                    # fire: the gradients (and the loss, so every process judges the step alike) are
                    # averaged here, as Kohya's all_reduce_network does
                    average_gradients(trainable, accelerator)
                    step_loss = accelerator.reduce(step_loss, reduction="mean")
                grad_norm = accelerator.clip_grad_norm_(trainable, cfg.max_grad_norm) if cfg.max_grad_norm else None
                # the one host sync of a step: a NaN/inf must be caught before it reaches the weights
                # (fp16's GradScaler skips overflowing steps itself, so its grad norm is not judged)
                judged = [step_loss] + ([grad_norm] if grad_norm is not None and cfg.mixed_precision != "fp16" else [])
                figures = torch.stack([v.float() for v in judged]).tolist()
                loss_value, finite = figures[0], all(math.isfinite(v) for v in figures)
                if finite:
                    optimizer.step()
                    scheduler.step()
                optimizer.zero_grad(set_to_none=True)
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
                    paths = make_samples(model, prompts, Path(cfg.output_dir) / "sample", cfg.output_name, epoch,
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


def make_accelerator(mixed_precision: str, cpu: bool) -> Accelerator:
    """accelerate keeps one AcceleratorState per process, fixed at the first Accelerator; a second
    run in the same process (`facelora run`, tests) with another precision needs it cleared. The
    process group (PartialState) stays."""
    AcceleratorState._reset_state()
    GradientState._reset_state()
    return Accelerator(mixed_precision=mixed_precision, cpu=cpu)


def enable_text_encoder_checkpointing(text_encoder) -> None:
    """Non-reentrant checkpointing, so the LoRA inside gets gradients though the frozen inputs
    need none (transformers 5 renamed the method)."""
    kwargs = {"use_reentrant": False}
    if hasattr(text_encoder, "activation_checkpointing_enable"):
        text_encoder.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:
        text_encoder.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)


def batch_loss(model, batch: Batch, state: LoopState, micro: int, process: int, cfg: TrainConfig,
               snr: torch.Tensor | None, device: torch.device,
               text_cache: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
    """One micro-batch's loss: latents, caption embeddings, noise at random timesteps, the UNet's
    noise prediction, and the (min-SNR weighted) MSE. Each sample's noise and timestep come from
    its place in the step's global batch (process x batch size + k), so N processes x batch b
    draw what 1 process x batch N*b draws."""
    if batch.latents is not None:
        latents = batch.latents.to(device)
    else:
        latents = encode(model.vae, batch.pixels, state.generator("vae", micro, process)).float()
    text = caption_embeddings(model, batch.captions, cfg, device, text_cache)
    places = [process * cfg.train_batch_size + k for k in range(latents.shape[0])]
    noise = torch.cat([sample_noise(latents[k:k + 1], state.generator("noise", micro, place), cfg.noise_offset)
                       for k, place in enumerate(places)])
    timesteps = torch.cat([sample_timesteps(1, model.noise_scheduler.config.num_train_timesteps,
                                            state.generator("timesteps", micro, place), device) for place in places])
    noisy = model.noise_scheduler.add_noise(latents, noise, timesteps)
    pred = model.unet(noisy, timesteps, text).sample
    return diffusion_loss(pred, noise, timesteps, snr, cfg.min_snr_gamma)


def text_cache_for(cfg: TrainConfig) -> dict[str, torch.Tensor] | None:
    """An empty cache of caption embeddings when every step would compute the same ones again:
    the text encoder is frozen (network_train_unet_only) and captions are not shuffled."""
    return {} if not cfg.train_text_encoder and not cfg.shuffle_caption else None


def caption_embeddings(model, captions: list[str], cfg: TrainConfig, device: torch.device,
                       cache: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
    """The text encoder's output for the captions; with a cache (text_cache_for), each caption is
    encoded once, the first time it is seen, and read back after that."""
    if cache is None:
        with torch.set_grad_enabled(cfg.train_text_encoder):
            return encode_prompt(model, tokenize(model, captions).to(device), cfg.clip_skip)
    new = [c for c in dict.fromkeys(captions) if c not in cache]
    if new:
        with torch.no_grad():
            cache.update(zip(new, encode_prompt(model, tokenize(model, new).to(device), cfg.clip_skip)))
    return torch.stack([cache[c] for c in captions])


def average_gradients(params: list[torch.nn.Parameter], accelerator: Accelerator) -> None:
    """Replace each gradient by its mean over the processes: one all-reduce of one flat buffer."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = accelerator.reduce(torch.cat([g.reshape(-1) for g in grads]), reduction="mean")
    offset = 0
    for g in grads:
        g.copy_(flat[offset:offset + g.numel()].view_as(g))
        offset += g.numel()


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
