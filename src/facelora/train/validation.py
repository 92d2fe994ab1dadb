"""The validation loss, as sd-scripts' docs/validation.md computes it: the photos validation_split
holds out and those of validation_data_dir, each through the training objective at a fixed set of timesteps (Kohya's four: 200,
400, 600, 800 of 1000) with noise fixed by validation_seed, without gradients and with the LoRA in
eval mode. The same noise and timesteps every time, so the loss of two epochs differs only by
the weights; the mean of all of them is the figure (Kohya's loss/validation/epoch_average).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..config import TrainConfig
from ..networks import evaluating
from .data import Batch, TrainData, cache_latents, encode
from .loss import diffusion_loss, sample_noise
from .state import derived_seed

NUM_VALIDATION_TIMESTEPS = 4  # sd-scripts' train_network.py: 200, 400, 600, 800


def validation_timesteps(num_train_timesteps: int) -> list[int]:
    """Kohya's fixed timesteps: evenly spaced inside (0, num_train_timesteps), the ends left out."""
    return [int(t) for t in np.linspace(0, num_train_timesteps, NUM_VALIDATION_TIMESTEPS + 2, dtype=int)[1:-1]]


def due(cfg: TrainConfig, epoch: int | None = None, step: int | None = None) -> bool:
    """Whether a validation runs (with photos held out by validation_split or validation_data_dir) at the end of `epoch` (every validate_every_n_epochs, every
    epoch when unset) or after global `step` (every validate_every_n_steps, never when unset)."""
    if not (cfg.validation_split or cfg.validation_data_dir):
        return False
    if step is not None:
        return bool(cfg.validate_every_n_steps) and step % cfg.validate_every_n_steps == 0
    return epoch % cfg.validate_every_n_epochs == 0 if cfg.validate_every_n_epochs else True


def make_validator(dataset, cfg: TrainConfig, vae, cache_dir) -> Validator | None:
    """The Validator of the photos `dataset` holds out (None when it holds none), their latents
    cached as the training images' are."""
    held = dataset.held_out()
    if not held.subsets:
        return None
    data = TrainData(held, cfg)
    latents = cache_latents(data, vae, cache_dir, cfg.seed)[0] if cfg.cache_latents else None
    return Validator(data, latents, cfg)


@dataclass
class Validator:
    """The held-out photos and what one validation needs. `latents` are their cached latents
    (None: encoded each time with a fixed generator)."""

    data: TrainData
    latents: list[torch.Tensor] | None
    cfg: TrainConfig

    @property
    def seed(self) -> int:
        return self.cfg.seed if self.cfg.validation_seed is None else self.cfg.validation_seed

    def batches(self) -> list[Batch]:
        """The held-out photos in a fixed order, in batches of train_batch_size per bucket, at
        most max_validation_steps of them; captions as written (never shuffled)."""
        size = self.cfg.train_batch_size
        groups = [ix[i:i + size] for ix in self.data.dataset.bucket_images().values() for i in range(0, len(ix), size)]
        groups = groups[: self.cfg.max_validation_steps] if self.cfg.max_validation_steps else groups
        return [self.data.batch(ix, [self.data.images[i].caption for i in ix], self.latents) for ix in groups]

    @torch.no_grad()
    def loss(self, model, network: torch.nn.Module, accelerator, snr: torch.Tensor | None) -> float:
        """The mean loss over every held-out batch x every fixed timestep."""
        device, cfg = accelerator.device, self.cfg
        encoder = model.family.text()
        losses = []
        with evaluating(network):
            for b, batch in enumerate(self.batches()):
                latents = batch.latents.to(device) if batch.latents is not None else encode(
                    model.vae, batch.pixels, torch.Generator().manual_seed(derived_seed(self.seed, "val-vae", b))).float()
                text = encoder.encode_prompt(model, encoder.tokenize(model, batch.captions).to(device), cfg.clip_skip)
                for t in validation_timesteps(model.noise_scheduler.config.num_train_timesteps):
                    noise = torch.cat([sample_noise(latents[k:k + 1], torch.Generator().manual_seed(
                        derived_seed(self.seed, "val-noise", b, t, k)), cfg.noise_offset) for k in range(len(latents))])
                    timesteps = torch.full((len(latents),), t, dtype=torch.long, device=device)
                    with accelerator.autocast():
                        pred = model.unet(model.noise_scheduler.add_noise(latents, noise, timesteps), timesteps, text).sample
                    losses.append(diffusion_loss(pred, noise, timesteps, snr, cfg.min_snr_gamma, batch.masks,
                                                 batch.loss_weights).item())
        return sum(losses) / len(losses) if losses else float("nan")
