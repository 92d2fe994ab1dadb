"""The diffusion training objective of SD1.5, as Kohya computes it: DDPM noise at a uniform random
timestep, the UNet predicts the noise (epsilon), mean squared error per image (weighted per pixel
by a mask with masked loss, and per image by prior_loss_weight for class images), optionally
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


def apply_masked_loss(loss: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Kohya's apply_masked_loss: the per-element loss [B, C, h, w] times the mask (0..1, one
    value per image pixel, [B, H, W]) shrunk to the latent's size by area averaging, so each latent
    pixel is weighted by the mean of the image pixels it covers. None leaves the loss as it is."""
    if mask is None:
        return loss
    mask = torch.nn.functional.interpolate(mask.to(loss.device, loss.dtype).unsqueeze(1), size=loss.shape[2:], mode="area")
    return loss * mask


def diffusion_loss(noise_pred: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor,
                   snr: torch.Tensor | None = None, min_snr_gamma: float | None = None,
                   mask: torch.Tensor | None = None, loss_weights: torch.Tensor | None = None) -> torch.Tensor:
    """MSE between predicted and true noise, per element weighted by the mask (masked_loss), per
    image averaged and weighted by loss_weights (prior_loss_weight for class images), then by
    min(SNR, gamma) / SNR when min_snr_gamma is set (Hang et al. 2023, Kohya's apply_snr_weight),
    then averaged: Kohya's order in train_network.py."""
    loss = F.mse_loss(noise_pred.float(), noise.float(), reduction="none")
    loss = apply_masked_loss(loss, mask).mean(dim=(1, 2, 3))
    if loss_weights is not None:
        loss = loss * loss_weights.to(loss.device, loss.dtype)
    if min_snr_gamma:
        s = snr.to(timesteps.device)[timesteps]
        loss = loss * (torch.clamp(s, max=min_snr_gamma) / s)
    return loss.mean()
