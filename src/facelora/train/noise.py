"""The noise options of Kohya's get_noise_noisy_latents_and_timesteps beside noise_offset:
multi-resolution (pyramid) noise and input perturbation (ip_noise_gamma)."""

from __future__ import annotations

import random

import torch
from torch.nn import functional as F


def pyramid_noise(noise: torch.Tensor, generator: torch.Generator, iterations: int, discount: float) -> torch.Tensor:
    """sd-scripts' pyramid_noise_like: noise plus `iterations` coarser noises, the i-th at 1/r^i
    of the size (r random in [2, 4)), upsampled bilinearly and weighted discount^i, then scaled to
    unit standard deviation. Stops at a 1-pixel level."""
    b, c, h, w = noise.shape
    rng = random.Random(int(torch.randint(0, 2**31, (1,), generator=generator)))
    out = noise.clone()
    for i in range(iterations):
        r = rng.random() * 2 + 2
        hn, wn = max(1, int(h / r**i)), max(1, int(w / r**i))
        coarse = torch.randn((b, c, hn, wn), generator=generator).to(noise.device, noise.dtype)
        out += F.interpolate(coarse, size=(h, w), mode="bilinear") * discount**i
        if hn == 1 or wn == 1:
            break
    return out / out.std()


def perturbed(noise: torch.Tensor, generator: torch.Generator, ip_noise_gamma: float | None) -> torch.Tensor:
    """The noise added to the latents: with ip_noise_gamma, the target noise plus gamma x fresh
    noise (Ning et al. 2023's input perturbation; the loss still predicts the unperturbed noise)."""
    if not ip_noise_gamma:
        return noise
    return noise + ip_noise_gamma * torch.randn(noise.shape, generator=generator).to(noise.device, noise.dtype)
