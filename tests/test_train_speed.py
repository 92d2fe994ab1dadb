"""The fast step's parts: a frozen text encoder's outputs are computed once per caption."""

from __future__ import annotations

import torch

from facelora.config import TrainConfig
from facelora.model.base import load_base
from facelora.train.data import Batch
from facelora.train.loop import batch_loss, text_cache_for
from facelora.train.state import LoopState


def test_text_cache_only_when_the_text_encoder_is_frozen_and_captions_fixed():
    assert text_cache_for(TrainConfig(network_train_unet_only=True)) == {}
    assert text_cache_for(TrainConfig(network_train_unet_only=True, shuffle_caption=True)) is None
    assert text_cache_for(TrainConfig()) is None


def test_cached_caption_embeddings_give_the_same_loss_and_skip_the_text_encoder():
    model = load_base("tiny")
    model.unet.requires_grad_(False)
    model.text_encoder.requires_grad_(False)
    cfg = TrainConfig(network_train_unet_only=True, clip_skip=2)
    calls = []
    model.text_encoder.register_forward_hook(lambda *a: calls.append(1))
    batch = Batch([0, 1], ["ohwx man, smiling", "ohwx man"], latents=torch.randn(2, 4, 8, 8))
    cpu = torch.device("cpu")
    cache = text_cache_for(cfg)
    for step in range(3):
        state = LoopState(0, global_step=step)
        plain = batch_loss(model, batch, state, 0, 0, cfg, None, cpu)
        cached = batch_loss(model, batch, state, 0, 0, cfg, None, cpu, cache)
        assert torch.equal(plain, cached)
    assert set(cache) == {"ohwx man, smiling", "ohwx man"}
    assert len(calls) == 3 + 1  # every plain step, and the cached path once
