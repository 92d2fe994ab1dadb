"""The plain reference: one SD1.5 LoRA training step written the plainest correct way with
diffusers + peft, as a tutorial would. bench/train_step.py measures facelora against it on the
same work (same model shapes, rank, alpha, batch, cached latents, AdamW).

Not part of facelora: it exists so the speed claim has something honest to be compared with.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F
from diffusers import DDPMScheduler, UNet2DConditionModel
from peft import LoraConfig, inject_adapter_in_model
from transformers import CLIPTextConfig, CLIPTextModel

SD15 = Path(__file__).resolve().parents[1] / "src" / "facelora" / "model" / "sd15"
UNET_TARGETS = ["to_q", "to_k", "to_v", "to_out.0", "proj_in", "proj_out", "ff.net.0.proj", "ff.net.2"]
TE_TARGETS = ["q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2"]


def _config(part: str, config_dir: Path = SD15) -> dict:
    return json.loads((config_dir / part / "config.json").read_text())


class ReferenceStep:
    """Random-weight SD1.5 UNet and CLIP text encoder with peft LoRA on both; `step()` is one
    optimizer step on cached latents. `config_dir`: another shipped config set with SD1.5's
    layout (the tiny model's, for test runs)."""

    def __init__(self, size: int, rank: int = 128, alpha: float = 64, batch: int = 1,
                 gradient_checkpointing: bool = False, device: str = "cpu", seed: int = 0,
                 train_text_encoder: bool = True, config_dir: Path = SD15):
        torch.manual_seed(seed)
        self.device = torch.device(device)
        self.unet = UNet2DConditionModel.from_config(_config("unet", config_dir)).to(self.device)
        te_cfg = {k: v for k, v in _config("text_encoder", config_dir).items() if not k.startswith("_")}
        self.te = CLIPTextModel(CLIPTextConfig(**te_cfg)).to(self.device)
        self.unet.requires_grad_(False)
        self.te.requires_grad_(False)
        self.unet.add_adapter(LoraConfig(r=rank, lora_alpha=alpha, init_lora_weights="gaussian",
                                         target_modules=UNET_TARGETS))
        self.train_text_encoder = train_text_encoder
        if train_text_encoder:
            # transformers 5's own add_adapter wants a newer peft than PyPI has; peft's injector is the same.
            inject_adapter_in_model(LoraConfig(r=rank, lora_alpha=alpha, init_lora_weights="gaussian",
                                               target_modules=TE_TARGETS), self.te)
        if gradient_checkpointing:
            self.unet.enable_gradient_checkpointing()
            if train_text_encoder:
                self.te.gradient_checkpointing_enable()
        self.unet.train()
        self.te.train(train_text_encoder)
        self.params = [p for m in (self.unet, self.te) for p in m.parameters() if p.requires_grad]
        self.opt = torch.optim.AdamW(self.params, lr=1e-4)
        self.sched = DDPMScheduler.from_config(_config("scheduler"))
        lat = size // 8
        self.latents = torch.randn(batch, 4, lat, lat, device=self.device)
        self.ids = torch.randint(0, 49407, (batch, 77), device=self.device)

    def lora_parameter_count(self) -> int:
        return sum(p.numel() for p in self.params)

    def step(self, autocast_dtype: torch.dtype | None = None) -> float:
        noise = torch.randn_like(self.latents)
        t = torch.randint(0, self.sched.config.num_train_timesteps, (self.latents.shape[0],), device=self.device)
        noisy = self.sched.add_noise(self.latents, noise, t)
        with torch.autocast(self.device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
            with torch.set_grad_enabled(self.train_text_encoder):
                enc = self.te(self.ids)[0]
            pred = self.unet(noisy, t, enc).sample
        loss = F.mse_loss(pred.float(), noise.float())
        loss.backward()
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        return loss.item()
