"""Making images with a base model (and whatever LoRA is applied to it): the samplers by
AUTOMATIC1111's names, the pipeline over the model's own modules, text conditioning with A1111's
clip_skip, and one image from a seed. Training samples (train/samples.py) and the grid
(evaluate/grid.py) both draw through here, so a seed and settings give the same image in both."""

from __future__ import annotations

import diffusers
import torch

from .base import load_base
from .family import SD15, Sampler, sampler_key
from .sdmodel import SDModel, build_pipeline

SAMPLERS: dict[str, Sampler] = SD15.samplers


def make_scheduler(model: SDModel, sampler: str = "euler_a"):
    s = model.family.samplers[sampler_key(sampler, model.family)]
    return getattr(diffusers, s.scheduler).from_config(model.noise_scheduler.config, **s.options)


def make_pipeline(model: SDModel, sampler: str = "euler_a"):
    """The family's pipeline over the model's own modules (no copies, no safety checker), so
    a LoRANetwork applied to the model acts on its images. For A1111's clip_skip, pass
    embed(model, prompt, clip_skip) as prompt_embeds= rather than the pipeline's
    clip_skip argument (whose numbering is one lower and which fails on transformers 5)."""
    return build_pipeline(model, make_scheduler(model, sampler))


def embed(model: SDModel, text: str, clip_skip: int, device=None) -> torch.Tensor:
    """One prompt's conditioning [1, 77, hidden], without gradients, on `device`."""
    with torch.no_grad():
        embeds = model.family.text().prompt_embeds(model, [text], clip_skip)
    return embeds if device is None else embeds.to(device)


def render(pipe, prompt_embeds, negative_embeds, seed: int, steps: int, cfg: float, width: int, height: int):
    """One image. The seed drives a CPU generator, so a seed gives the same noise on any device."""
    generator = torch.Generator("cpu").manual_seed(int(seed))
    return pipe(prompt_embeds=prompt_embeds, negative_prompt_embeds=negative_embeds, num_inference_steps=steps,
                guidance_scale=cfg, width=width, height=height, generator=generator, output_type="pil").images[0]


def device_for(choice: str) -> torch.device:
    """'auto' is CUDA, else Apple's MPS, else the CPU."""
    if choice != "auto":
        return torch.device(choice)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def load_pipeline(base_model: str, sampler: str, device_choice: str = "auto", allow_pickle: bool = False):
    """The base model and a pipeline over it, on the chosen device (fp16 on a GPU)."""
    device = device_for(device_choice)
    dtype = torch.float16 if device.type == "cuda" else torch.float32
    model = load_base(base_model, allow_pickle=allow_pickle, dtype=dtype)
    pipe = make_pipeline(model, sampler)
    pipe.to(device)
    return model, pipe
