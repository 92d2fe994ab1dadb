"""Per-sample loss weights by timestep, beside min-SNR (loss.py)."""

from __future__ import annotations

import torch


def debiased_weight(snr: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
    """sd-scripts' apply_debiased_estimation for epsilon prediction: 1 / sqrt(SNR(t)), SNR capped
    at 1000 (timestep 0's SNR is near infinite)."""
    s = torch.clamp(snr.to(timesteps.device)[timesteps], max=1000)
    return 1 / torch.sqrt(s)
