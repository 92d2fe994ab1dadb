"""Captions and prompts to the UNet's text conditioning, with A1111's and Kohya's clip_skip."""

from __future__ import annotations

import torch
from transformers import CLIPTextModel

from ..errors import FaceloraError
from .sdmodel import SDModel


def tokenize(model: SDModel, captions: list[str]) -> torch.Tensor:
    """Token ids [len(captions), 77]: BOS, the caption (truncated), EOS, padded with EOS."""
    length = model.text_encoder.config.max_position_embeddings
    return model.tokenizer(list(captions), padding="max_length", max_length=length, truncation=True,
                           return_tensors="pt").input_ids


def encode_prompt(model: SDModel, input_ids: torch.Tensor, clip_skip: int = 1) -> torch.Tensor:
    """The UNet's text conditioning [batch, 77, hidden]. clip_skip 1 is the last layer (after the
    final layer norm); clip_skip n takes the n-th last layer's hidden state and applies the final
    layer norm to it, as Kohya and A1111 do."""
    te = model.text_encoder
    layers = te.config.num_hidden_layers
    if not 1 <= clip_skip <= layers:
        raise FaceloraError("clip_skip {clip_skip} is out of range: the text encoder has {layers} layers (use 1 or 2).",
                            clip_skip=clip_skip, layers=layers)
    input_ids = input_ids.to(te.device)
    if clip_skip == 1:
        return te(input_ids)[0]
    hidden = te(input_ids, output_hidden_states=True).hidden_states[-clip_skip]
    return final_layer_norm(te)(hidden)


def final_layer_norm(text_encoder: CLIPTextModel) -> torch.nn.LayerNorm:
    """transformers 5 flattened CLIPTextModel; older versions keep it under `text_model`."""
    return getattr(text_encoder, "text_model", text_encoder).final_layer_norm


def prompt_embeds(model: SDModel, prompts: list[str], clip_skip: int = 1) -> torch.Tensor:
    """tokenize + encode_prompt: pass the result to a pipeline as prompt_embeds= (and
    negative_prompt_embeds=) to sample with A1111's clip_skip."""
    return encode_prompt(model, tokenize(model, prompts), clip_skip)
