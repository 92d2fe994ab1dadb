"""One optimizer step, and the model made ready for it: what train() runs each step and what
bench/train_step.py measures, so the benchmark times the trainer's own step, not a copy of it.

prepare_network freezes the base model and puts the LoRA network on it; Stepper.run is one
optimizer step (gradient_accumulation_steps micro-batches); batch_loss is one micro-batch's
loss. accelerate's Accelerator owns autocast, the fp16 GradScaler and gradient synchronisation.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState, GradientState
from accelerate.utils import set_seed

from ..config import TrainConfig
from ..messages import Message, said
from ..model.sdmodel import SDModel
from ..networks import create_network
from ..networks.lora import LoRANetwork
from .attention import set_attention
from .data import Batch, encode
from .captions import changes_captions
from .ema import WeightsEMA
from .loss import diffusion_loss, sample_noise, sample_timesteps, snr_table
from .noise import perturbed, pyramid_noise
from .weighting import debiased_weight
from .precision import StepOutcome, finish_step, frozen_dtype, network_dtype, set_scaler
from .state import LoopState


def make_accelerator(mixed_precision: str, cpu: bool, full_fp16: bool = False) -> Accelerator:
    """accelerate keeps one AcceleratorState per process, fixed at the first Accelerator; a second
    run in the same process (`facelora run`, tests) with another precision needs it cleared. The
    process group (PartialState) stays. fp16 on the CPU gets CUDA's autocast and GradScaler
    (train.precision.set_scaler), so tests run the GPU's path; full_fp16 a scaler for fp16 gradients."""
    AcceleratorState._reset_state()
    GradientState._reset_state()
    return set_scaler(Accelerator(mixed_precision=mixed_precision, cpu=cpu), full_fp16)


def prepare_network(model: SDModel, cfg: TrainConfig, device: torch.device) -> tuple[LoRANetwork, list[Message]]:
    """The base model frozen and on the device, the LoRA network (fp32, or the autocast dtype with
    full_fp16 / full_bf16) applied to it, started from network_weights when set; attention
    (xformers or SDPA), gradient checkpointing, train modes and torch.compile as cfg says.
    Returns the network and notes for the user."""
    notes: list[Message] = []
    weight_dtype = frozen_dtype(cfg.mixed_precision, device)
    for part in (model.unet, model.text_encoder, model.vae):
        if part is not None:
            part.requires_grad_(False)
    for part in (model.unet, model.text_encoder):
        if weight_dtype == torch.float32:
            part.to(device)
        else:  # cast as each tensor moves (Kohya's .to(device, dtype)): the card never holds all of it in
            # fp32; torch's own .to, since diffusers' warns of fp32 modules at any cast, even with none
            torch.nn.Module.to(part, device, weight_dtype)
    if model.vae is not None:
        model.vae.to(device)  # fp32: the VAE overflows more easily in half precision
    notes += set_attention(model.unet, cfg.xformers, device)

    set_seed(cfg.seed)  # the LoRA's initial weights
    network = create_network(cfg, model)
    network.apply_to()
    if cfg.network_weights:
        network.load_weights(cfg.network_weights)
        notes.append(said("Starting from the LoRA {file}.", file=cfg.network_weights))
    network.to(device, network_dtype(cfg.mixed_precision, cfg.full_half))
    if cfg.gradient_checkpointing:
        model.unet.enable_gradient_checkpointing()
        if cfg.train_text_encoder:
            enable_text_encoder_checkpointing(model.text_encoder)
    model.unet.train()  # no dropout in SD1.5; train mode turns gradient checkpointing on
    model.text_encoder.train(cfg.train_text_encoder)
    if cfg.torch_compile:
        model.unet.compile()
    return network, notes


def enable_text_encoder_checkpointing(text_encoder) -> None:
    """Non-reentrant checkpointing, so the LoRA inside gets gradients though the frozen inputs
    need none (transformers 5 renamed the method)."""
    kwargs = {"use_reentrant": False}
    if hasattr(text_encoder, "activation_checkpointing_enable"):
        text_encoder.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:
        text_encoder.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)


@dataclass
class Stepper:
    """train()'s optimizer step, with everything it needs. network, optimizer and scheduler are
    the ones accelerator.prepare returned."""

    model: SDModel
    network: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    accelerator: Accelerator
    cfg: TrainConfig
    trainable: list[torch.nn.Parameter] = field(init=False)
    snr: torch.Tensor | None = field(init=False)  # SNR per timestep, for min-SNR and debiased weights
    text_cache: dict[str, torch.Tensor] | None = field(init=False)  # a frozen text encoder's outputs
    ema: WeightsEMA | None = field(init=False)  # the weights' average, with ema_decay
    norm_scalars: dict[str, float] = field(init=False)  # scale_weight_norms' figures of the last step
    outcome: StepOutcome | None = field(init=False, default=None)  # the last step's

    def __post_init__(self) -> None:
        self.trainable = [p for p in self.network.parameters() if p.requires_grad]
        weighted = self.cfg.min_snr_gamma or self.cfg.debiased_estimation_loss
        self.snr = snr_table(self.model.noise_scheduler) if weighted else None
        self.text_cache = text_cache_for(self.cfg)  # each caption encoded once, when it can be
        unwrapped = self.accelerator.unwrap_model(self.network)
        self.ema = WeightsEMA(unwrapped, self.cfg.ema_decay) if self.cfg.ema_decay else None
        self.norm_scalars = {}

    def after_update(self) -> None:
        """What follows an optimizer step: sd-scripts' max-norm regularisation (scale_weight_norms,
        logged as Kohya logs it) and the EMA's update."""
        network = self.accelerator.unwrap_model(self.network)
        if self.cfg.scale_weight_norms:
            keys, mean, largest = network.apply_max_norm_regularization(self.cfg.scale_weight_norms,
                                                                        self.accelerator.device)
            self.norm_scalars = {"max_norm/keys_scaled": keys, "max_norm/average_key_norm": mean,
                                 "max_norm/max_key_norm": largest}
        if self.ema is not None:
            self.ema.update()

    def run(self, micro_batches: list[Batch], state: LoopState) -> tuple[float, bool]:
        """One optimizer step: the micro-batches' gradients summed, synchronised between processes
        on the last one only, clipped, then the optimizer and scheduler step unless the loss or
        gradient is NaN/inf (train.precision.finish_step: fp16's GradScaler skips overflowing
        steps itself). Returns the step's loss and whether it was sound: False for a step that
        counts towards max_nonfinite_steps (the details are in self.outcome)."""
        acc, cfg = self.accelerator, self.cfg
        step_loss = torch.zeros((), device=acc.device)
        for j, batch in enumerate(micro_batches):
            sync = j == len(micro_batches) - 1
            with nullcontext() if sync else acc.no_sync(self.network):
                with acc.autocast():
                    loss = batch_loss(self.model, batch, state, j, acc.process_index, cfg, self.snr, acc.device,
                                      self.text_cache)
                acc.backward(loss / len(micro_batches))
            step_loss += loss.detach() / len(micro_batches)
        if acc.num_processes > 1:
            # the LoRA runs inside the UNet's forward, never DDP's own, so DDP's hooks do not
            # fire: the gradients (and the loss, so every process judges the step alike) are
            # averaged here, as Kohya's all_reduce_network does
            average_gradients(self.trainable, acc)
            step_loss = acc.reduce(step_loss, reduction="mean")
        grad_norm = acc.clip_grad_norm_(self.trainable, cfg.max_grad_norm) if cfg.max_grad_norm else None
        self.outcome = finish_step(self.optimizer, self.scheduler, acc.scaler, step_loss, grad_norm)
        if self.outcome.applied:
            self.after_update()
        return self.outcome.loss, not self.outcome.diverging


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
    if cfg.multires_noise_iterations:
        noise = torch.cat([pyramid_noise(noise[k:k + 1], state.generator("multires", micro, place),
                                         cfg.multires_noise_iterations, cfg.multires_noise_discount)
                           for k, place in enumerate(places)])
    timesteps = torch.cat([sample_timesteps(1, model.noise_scheduler.config.num_train_timesteps,
                                            state.generator("timesteps", micro, place), device) for place in places])
    added = noise if not cfg.ip_noise_gamma else torch.cat([
        perturbed(noise[k:k + 1], state.generator("ip_noise", micro, place), cfg.ip_noise_gamma)
        for k, place in enumerate(places)])
    noisy = model.noise_scheduler.add_noise(latents, added, timesteps)
    pred = model.unet(noisy, timesteps, text).sample
    weight = None
    if cfg.debiased_estimation_loss:
        weight = debiased_weight(snr if snr is not None else snr_table(model.noise_scheduler), timesteps)
    return diffusion_loss(pred, noise, timesteps, snr, cfg.min_snr_gamma, batch.masks, batch.loss_weights, weight)


def text_cache_for(cfg: TrainConfig) -> dict[str, torch.Tensor] | None:
    """An empty cache of caption embeddings when every step would compute the same ones again:
    the text encoder is frozen (network_train_unet_only) and captions are not shuffled or dropped."""
    return {} if not cfg.train_text_encoder and not changes_captions(cfg) else None


def caption_embeddings(model, captions: list[str], cfg: TrainConfig, device: torch.device,
                       cache: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
    """The text encoder's output for the captions; with a cache (text_cache_for), each caption is
    encoded once, the first time it is seen, and read back after that."""
    text = model.family.text()
    if cache is None:
        with torch.set_grad_enabled(cfg.train_text_encoder):
            return text.encode_prompt(model, text.tokenize(model, captions).to(device), cfg.clip_skip)
    new = [c for c in dict.fromkeys(captions) if c not in cache]
    if new:
        with torch.no_grad():
            cache.update(zip(new, text.encode_prompt(model, text.tokenize(model, new).to(device), cfg.clip_skip)))
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


