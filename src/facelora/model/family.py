"""What is specific to one model family (today SD1.5, the only one facelora trains): its shipped
configs and tokenizer, its single-file key map, the names its LoRA modules get, the metadata a
LoRA of it carries, its pipeline class and the samplers it offers by AUTOMATIC1111's names.

Plain data, with classes named rather than imported, so reading a fact (a sampler name, a LoRA
prefix) costs no torch or diffusers import. A new family is one more ModelFamily value here,
with its configs beside sd15/ and, if its checkpoints or its text encoder differ, its own
key-map or text module: the family names the modules every loader, saver and encoder uses.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from ..errors import FaceloraError


TINY = "tiny"  # the base-model name that means the tiny test model (model/tiny.py)


@dataclass(frozen=True)
class Sampler:
    display: str  # the name A1111 shows
    scheduler: str  # a diffusers scheduler class name
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelFamily:
    name: str
    config_dir: Path  # unet/, text_encoder/, vae/, scheduler/ config.json files
    tiny_config_dir: Path  # the tiny test model's configs, same layout
    tokenizer_dir: Path
    key_map_module: str  # the module that maps single-file keys <-> diffusers keys
    text_module: str  # the module that makes the UNet's text conditioning (tokenize, encode_prompt, prompt_embeds)
    pipeline: str  # a diffusers pipeline class name
    samplers: dict[str, Sampler]  # by key; the first is the default
    # LoRA module names: unet_prefix + the module's diffusers path, dots as underscores, for each
    # Linear and 1x1 Conv2d inside a unet_target_block; text_encoder_prefix + text_encoder_layers
    # + the layer's index + _ + one of text_encoder_targets.
    unet_prefix: str
    unet_target_block: str
    # Kohya's LoCon (networks.lora with conv_dim): the blocks whose 3x3 convolutions it adapts
    # too, at conv_dim (their Linears and 1x1 convolutions at network_dim)
    unet_conv_blocks: tuple[str, ...]
    text_encoder_prefix: str
    text_encoder_layers: str
    text_encoder_targets: dict[str, str]  # name suffix -> module path inside one encoder layer
    # what a LoRA file of this family says about its base (ss_* and modelspec.* metadata)
    base_model_version: str
    v2: bool
    modelspec_architecture: str
    prediction_type: str

    def key_map(self) -> ModuleType:
        return importlib.import_module(self.key_map_module)

    def text(self) -> ModuleType:
        return importlib.import_module(self.text_module)


_SD15_DIR = Path(__file__).parent / "sd15"

# what every base model message ends with: the models facelora can train on
EXPECTED = (
    "facelora needs a Stable Diffusion 1.5 base model: a single .safetensors checkpoint "
    "(such as v1-5-pruned-emaonly.safetensors or an SD1.5 fine-tune), or a diffusers folder holding "
    "model_index.json, unet/, text_encoder/ and vae/."
)


SD15 = ModelFamily(
    name="SD1.5",
    config_dir=_SD15_DIR,
    tiny_config_dir=_SD15_DIR / "tiny",
    tokenizer_dir=_SD15_DIR / "tokenizer",
    key_map_module="facelora.model.ldm",
    text_module="facelora.model.text",
    pipeline="StableDiffusionPipeline",
    # k-diffusion samplers (A1111's Euler, DPM++) space their steps over the whole noise range
    # ("linspace"); A1111's DDIM uses "leading" with offset 1.
    samplers={
        "euler_a": Sampler("Euler a", "EulerAncestralDiscreteScheduler", {"timestep_spacing": "linspace"}),
        "euler": Sampler("Euler", "EulerDiscreteScheduler", {"timestep_spacing": "linspace"}),
        "dpmpp_2m": Sampler("DPM++ 2M", "DPMSolverMultistepScheduler",
                            {"algorithm_type": "dpmsolver++", "solver_order": 2, "timestep_spacing": "linspace"}),
        "dpmpp_2m_karras": Sampler("DPM++ 2M Karras", "DPMSolverMultistepScheduler",
                                   {"algorithm_type": "dpmsolver++", "solver_order": 2, "use_karras_sigmas": True}),
        "ddim": Sampler("DDIM", "DDIMScheduler",
                        {"timestep_spacing": "leading", "steps_offset": 1, "set_alpha_to_one": False}),
    },
    unet_prefix="lora_unet_",
    unet_target_block="Transformer2DModel",
    unet_conv_blocks=("ResnetBlock2D", "Downsample2D", "Upsample2D"),
    # Fixed strings: the module paths of transformers 4's CLIPTextModel
    # (`text_model.encoder.layers.<i>...`). transformers 5 dropped the `text_model` level, and
    # names walked from it are ignored by ComfyUI, Kohya and A1111. Never `lora_te1_` (SDXL's).
    text_encoder_prefix="lora_te_",
    text_encoder_layers="text_model_encoder_layers_",
    text_encoder_targets={
        "self_attn_q_proj": "self_attn.q_proj",
        "self_attn_k_proj": "self_attn.k_proj",
        "self_attn_v_proj": "self_attn.v_proj",
        "self_attn_out_proj": "self_attn.out_proj",
        "mlp_fc1": "mlp.fc1",
        "mlp_fc2": "mlp.fc2",
    },
    base_model_version="sd_v1",
    v2=False,
    modelspec_architecture="stable-diffusion-v1/lora",
    prediction_type="epsilon",
)

FAMILIES: tuple[ModelFamily, ...] = (SD15,)


# Sampler names without torch: the grid checks its sampler before any model loads.
class UnknownSamplerError(FaceloraError, ValueError):
    """A sampler name that is not in the model family's sampler table."""


def sampler_key(name: str, family: ModelFamily = SD15) -> str:
    """'Euler a', 'euler_a', 'DPM++ 2M Karras', 'dpmpp_2m_karras' ... -> the samplers' key."""
    key = name.strip().lower().replace("++", "pp").replace("+", "p").replace("-", "_").replace(" ", "_")
    if key not in family.samplers:
        names = ", ".join(f"{k} ('{s.display}')" for k, s in family.samplers.items())
        raise UnknownSamplerError("Unknown sampler '{name}'. Choose one of: {names}.", name=name, names=names)
    return key


def sampler_display(name: str, family: ModelFamily = SD15) -> str:
    """The name A1111 shows for a sampler ('Euler a'), as written into an image's parameters."""
    return family.samplers[sampler_key(name, family)].display
