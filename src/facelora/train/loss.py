"""The diffusion training objective of SD1.5, as Kohya computes it: DDPM noise at a uniform random
timestep, the UNet predicts the noise (epsilon), mean squared error per image, optionally
weighted by min-SNR, with optional offset noise."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def sample_noise(latents: torch.Tensor, generator: torch.Generator, noise_offset: float = 0.0) -> torch.Tensor:
    """Gaussian noise like the latents; with noise_offset, plus a per-channel constant
    (noise_offset x N(0, 1)), which lets the model learn darker and brighter images."""
    b, c = latents.shape[:2]
    noise = torch.randn(latents.shape, generator=generator)
    if noise_offset:
        noise = noise + noise_offset * torch.randn((b, c, 1, 1), generator=generator)
    return noise.to(latents.device, latents.dtype)


def sample_timesteps(batch: int, num_train_timesteps: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    return torch.randint(0, num_train_timesteps, (batch,), generator=generator).to(device)


def snr_table(noise_scheduler) -> torch.Tensor:
    """Signal-to-noise ratio alpha_bar / (1 - alpha_bar) of every timestep."""
    ac = noise_scheduler.alphas_cumprod.float()
    return ac / (1.0 - ac)


def diffusion_loss(noise_pred: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor,
                   snr: torch.Tensor | None = None, min_snr_gamma: float | None = None,
                   weight: torch.Tensor | None = None) -> torch.Tensor:
    """MSE between predicted and true noise, per image, weighted by min(SNR, gamma) / SNR when
    min_snr_gamma is set (Hang et al. 2023, Kohya's apply_snr_weight) and by `weight` per image
    (weighting.py's debiased estimation), then averaged."""
    loss = F.mse_loss(noise_pred.float(), noise.float(), reduction="none").mean(dim=(1, 2, 3))
    if min_snr_gamma:
        s = snr.to(timesteps.device)[timesteps]
        loss = loss * (torch.clamp(s, max=min_snr_gamma) / s)
    if weight is not None:
        loss = loss * weight
    return loss.mean()
