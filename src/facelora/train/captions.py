"""Kohya's caption dropout (train_util's process_caption): a caption dropped whole with
probability caption_dropout_rate, or in every caption_dropout_every_n_epochs-th epoch (epochs
count from 1, so n=2 drops epochs 2, 4, ...); otherwise its tags after the keep_tokens first
shuffled (shuffle_caption) and each dropped with probability caption_tag_dropout_rate. A dropped
caption trains the unconditional prediction, which keeps the LoRA usable without its tags."""

from __future__ import annotations

import random

from ..config import TrainConfig


def shuffle_caption(caption: str, keep_tokens: int, rng: random.Random) -> str:
    """Kohya's shuffle_caption: split on commas, keep the first `keep_tokens` tags in place (the
    trigger word), shuffle the rest, join with ', '."""
    tags = [t.strip() for t in caption.split(",") if t.strip()]
    kept, rest = tags[:keep_tokens], tags[keep_tokens:]
    rng.shuffle(rest)
    return ", ".join(kept + rest)


def process_caption(caption: str, cfg: TrainConfig, epoch: int, rng: random.Random) -> str:
    if cfg.caption_dropout_rate > 0 and rng.random() < cfg.caption_dropout_rate:
        return ""
    if cfg.caption_dropout_every_n_epochs > 0 and epoch % cfg.caption_dropout_every_n_epochs == 0:
        return ""
    if cfg.shuffle_caption:
        caption = shuffle_caption(caption, cfg.keep_tokens, rng)
    if cfg.caption_tag_dropout_rate <= 0:
        return caption
    tags = [t.strip() for t in caption.split(",") if t.strip()]
    kept, rest = tags[:cfg.keep_tokens], tags[cfg.keep_tokens:]
    return ", ".join(kept + [t for t in rest if rng.random() >= cfg.caption_tag_dropout_rate])


def changes_captions(cfg: TrainConfig) -> bool:
    """Whether a caption can differ from one step to the next (no caching of its embedding)."""
    return bool(cfg.shuffle_caption or cfg.caption_dropout_rate or cfg.caption_dropout_every_n_epochs
                or cfg.caption_tag_dropout_rate)
