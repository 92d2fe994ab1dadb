"""The single-file checkpoint layout (the original LDM key names that AUTOMATIC1111, ComfyUI and
Kohya read and write): `model.diffusion_model.*` (UNet), `first_stage_model.*` (VAE),
`cond_stage_model.transformer.*` (CLIP text encoder).

From single file to diffusers uses diffusers' own conversion functions (they work offline once
given a config); the way back, which diffusers does not ship as a library function, is written
here as the exact inverse, and the tests prove the round trip through diffusers' functions.
This module also tells what a file is when it is not an SD1.5 checkpoint, from its keys alone.
"""

from __future__ import annotations

import re
from typing import Any

import torch
from diffusers.loaders.single_file_utils import (
    DIFFUSERS_TO_LDM_MAPPING,
    convert_ldm_clip_checkpoint,
    convert_ldm_unet_checkpoint,
    convert_ldm_vae_checkpoint,
)

from .sdmodel import BaseModelError

UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."
CLIP_PREFIX = "cond_stage_model.transformer."
POSITION_IDS = "text_model.embeddings.position_ids"

# --- single file -> diffusers ------------------------------------------------------------------


def to_diffusers(checkpoint: dict[str, torch.Tensor], unet_config: dict[str, Any], vae_config: dict[str, Any]) -> tuple[
    dict[str, torch.Tensor], dict[str, torch.Tensor], dict[str, torch.Tensor]
]:
    """(unet, vae, text encoder) state dicts in diffusers/transformers names. The text encoder's
    keys carry `text_model.`; `text_encoder_keys` adapts them to the installed transformers."""
    unet = convert_ldm_unet_checkpoint(checkpoint, unet_config)
    vae = convert_ldm_vae_checkpoint(checkpoint, vae_config)
    clip = convert_ldm_clip_checkpoint({k: v for k, v in checkpoint.items() if k.startswith(CLIP_PREFIX)})
    # Files from old transformers versions lack the `text_model.` level.
    clip = {(k if k.startswith("text_model.") else "text_model." + k): v for k, v in clip.items()}
    clip.pop(POSITION_IDS, None)  # a constant buffer, not a weight
    return unet, vae, clip


def text_encoder_keys(state_dict: dict[str, torch.Tensor], text_encoder: torch.nn.Module) -> dict[str, torch.Tensor]:
    """transformers 5 flattened CLIPTextModel (no `text_model.` level); older versions have it."""
    if hasattr(text_encoder, "text_model"):
        return state_dict
    return {k.removeprefix("text_model."): v for k, v in state_dict.items()}


# --- diffusers -> single file ------------------------------------------------------------------

_RESNET = {"norm1": "in_layers.0", "conv1": "in_layers.2", "norm2": "out_layers.0", "conv2": "out_layers.3",
           "time_emb_proj": "emb_layers.1", "conv_shortcut": "skip_connection"}
_VAE_ATTN = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out"}


def _resnet(rest: str) -> str:
    head, _, tail = rest.partition(".")
    return f"{_RESNET.get(head, head)}.{tail}"


def unet_to_ldm(state_dict: dict[str, torch.Tensor], config: dict[str, Any]) -> dict[str, torch.Tensor]:
    """A diffusers UNet2DConditionModel state dict in LDM names (without the prefix)."""
    per = config["layers_per_block"] + 1  # LDM numbers every resnet (+ attention) and each resampler
    top = DIFFUSERS_TO_LDM_MAPPING["unet"]["layers"]
    has_attn = [t.startswith("CrossAttn") for t in config["up_block_types"]]
    rules: list[tuple[str, Any]] = [
        (r"down_blocks\.(\d+)\.resnets\.(\d+)\.(.+)", lambda b, j, r: f"input_blocks.{1 + b * per + j}.0.{_resnet(r)}"),
        (r"down_blocks\.(\d+)\.attentions\.(\d+)\.(.+)", lambda b, j, r: f"input_blocks.{1 + b * per + j}.1.{r}"),
        (r"down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.+)", lambda b, r: f"input_blocks.{(b + 1) * per}.0.op.{r}"),
        (r"mid_block\.resnets\.(\d+)\.(.+)", lambda j, r: f"middle_block.{2 * j}.{_resnet(r)}"),
        (r"mid_block\.attentions\.0\.(.+)", lambda r: f"middle_block.1.{r}"),
        (r"up_blocks\.(\d+)\.resnets\.(\d+)\.(.+)", lambda b, j, r: f"output_blocks.{b * per + j}.0.{_resnet(r)}"),
        (r"up_blocks\.(\d+)\.attentions\.(\d+)\.(.+)", lambda b, j, r: f"output_blocks.{b * per + j}.1.{r}"),
        (r"up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.+)",
         lambda b, r: f"output_blocks.{b * per + per - 1}.{2 if has_attn[b] else 1}.conv.{r}"),
    ]
    return {_rename(key, top, rules): t for key, t in state_dict.items()}


def vae_to_ldm(state_dict: dict[str, torch.Tensor], config: dict[str, Any]) -> dict[str, torch.Tensor]:
    """A diffusers AutoencoderKL state dict in LDM names (without the prefix). The mid-block
    attention's q, k, v and proj_out are 1x1 convolutions in LDM: 4-D weights."""
    n = len(config["up_block_types"])
    top = DIFFUSERS_TO_LDM_MAPPING["vae"]
    rules: list[tuple[str, Any]] = [
        (r"encoder\.down_blocks\.(\d+)\.resnets\.(\d+)\.(.+)",
         lambda i, j, r: f"encoder.down.{i}.block.{j}.{r.replace('conv_shortcut', 'nin_shortcut')}"),
        (r"encoder\.down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.+)", lambda i, r: f"encoder.down.{i}.downsample.conv.{r}"),
        (r"(encoder|decoder)\.mid_block\.resnets\.(\d+)\.(.+)",
         lambda e, j, r: f"{e}.mid.block_{j + 1}.{r.replace('conv_shortcut', 'nin_shortcut')}"),
        (r"(encoder|decoder)\.mid_block\.attentions\.0\.(group_norm|to_q|to_k|to_v|to_out\.0)\.(.+)",
         lambda e, m, r: f"{e}.mid.attn_1.{_VAE_ATTN[m]}.{r}"),
        (r"decoder\.up_blocks\.(\d+)\.resnets\.(\d+)\.(.+)",
         lambda i, j, r: f"decoder.up.{n - 1 - i}.block.{j}.{r.replace('conv_shortcut', 'nin_shortcut')}"),
        (r"decoder\.up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.+)", lambda i, r: f"decoder.up.{n - 1 - i}.upsample.conv.{r}"),
    ]
    out = {}
    for key, t in state_dict.items():
        new = _rename(key, top, rules)
        if ".mid.attn_1." in new and new.endswith("weight") and t.ndim == 2:
            t = t[:, :, None, None]
        out[new] = t
    return out


def text_encoder_to_ldm(state_dict: dict[str, torch.Tensor], max_positions: int) -> dict[str, torch.Tensor]:
    """A CLIPTextModel state dict under `text_model.` as the original checkpoints hold it, with the
    position_ids buffer the original SD1.5 file carries."""
    out = {(k if k.startswith("text_model.") else "text_model." + k): t for k, t in state_dict.items()}
    out[POSITION_IDS] = torch.arange(max_positions, dtype=torch.int64)[None]
    return out


def to_single_file(unet: dict[str, torch.Tensor], vae: dict[str, torch.Tensor], text_encoder: dict[str, torch.Tensor],
                   unet_config: dict[str, Any], vae_config: dict[str, Any], max_positions: int) -> dict[str, torch.Tensor]:
    out = {UNET_PREFIX + k: t for k, t in unet_to_ldm(unet, unet_config).items()}
    out.update({VAE_PREFIX + k: t for k, t in vae_to_ldm(vae, vae_config).items()})
    out.update({CLIP_PREFIX + k: t for k, t in text_encoder_to_ldm(text_encoder, max_positions).items()})
    return out


def _rename(key: str, top: dict[str, str], rules: list[tuple[str, Any]]) -> str:
    if key in top:
        return top[key]
    for pattern, build in rules:
        m = re.fullmatch(pattern, key)
        if m:
            return build(*(int(g) if g.isdigit() else g for g in m.groups()))
    raise BaseModelError("No single-file name for diffusers weight '{key}': not an SD1.5-architecture model.",
                         key=key)


# --- what is this file? ------------------------------------------------------------------------

def identify_problem(shapes: dict[str, tuple[int, ...]]) -> str | None:
    """Why a file with these keys (name -> shape) is not an SD1.5 single-file checkpoint, saying
    what the file is; None when it looks like one."""
    keys = list(shapes)
    if not keys:
        return "The file holds no tensors at all."

    def any_start(*prefixes: str) -> bool:
        return any(k.startswith(prefixes) for k in keys)

    if any_start("lora_unet_", "lora_te_", "lora_te1_", "lora_te2_", "lycoris_") or any(
        ".lora_down." in k or ".lora_A." in k or ".lora.down." in k for k in keys
    ):
        return ("This is a LoRA file, not a base model. Pass the SD1.5 checkpoint the LoRA is trained on "
                "as the base model; a LoRA is loaded on top of it (network_weights) or used in your UI.")
    if any_start("conditioner.embedders.", "add_embedding.") or any_start(UNET_PREFIX + "label_emb."):
        return "This is an SDXL checkpoint (it has SDXL's second text encoder / size embedding)."
    if any_start("cond_stage_model.model.", "text_encoders.", "model.diffusion_model.joint_blocks."):
        return ("This is an SD2.x or SD3 checkpoint (its text encoder is OpenCLIP, not the CLIP ViT-L "
                "text model of SD1.5).")
    cross = [s for k, s in shapes.items() if k.startswith(UNET_PREFIX) and k.endswith("attn2.to_k.weight")]
    if cross and cross[0][-1] == 1024:
        return "This is an SD2.x checkpoint (its cross attention is 1024 wide, SD1.5's is 768)."
    if not any_start(UNET_PREFIX):
        if keys and all(k.startswith(("encoder.", "decoder.", "quant_conv.", "post_quant_conv.")) for k in keys):
            return ("This is a VAE on its own (only encoder./decoder. weights), not a full model. Pass the "
                    "full SD1.5 checkpoint as the base model.")
        if any_start(VAE_PREFIX) and not any_start(CLIP_PREFIX):
            return "This file holds only a VAE (first_stage_model.*), not a full model."
        if any_start("down_blocks.", "mid_block.", "conv_in."):
            return ("This is a single diffusers UNet weights file. Pass the diffusers folder that holds "
                    "model_index.json (with unet/, text_encoder/, vae/) instead.")
        if any_start("text_model.", "embeddings.token_embedding."):
            return "This is a text encoder on its own, not a full model."
        return f"This is not a Stable Diffusion checkpoint (its keys look like '{keys[0]}')."
    if not any_start(CLIP_PREFIX):
        return "This checkpoint has no text encoder (no cond_stage_model.transformer.* weights)."
    if not any_start(VAE_PREFIX):
        return ("This checkpoint has no VAE (no first_stage_model.* weights). Use a full SD1.5 checkpoint.")
    conv_in = shapes.get(UNET_PREFIX + "input_blocks.0.0.weight")
    if conv_in is not None and conv_in[1] != 4:
        return (f"This is an inpainting or instruct model (its UNet takes {conv_in[1]} input channels, "
                "not 4). LoRA training needs the ordinary SD1.5 model.")
    return None
