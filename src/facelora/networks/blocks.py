"""Kohya's block-wise learning rates (networks.lora's `down_lr_weight`, `mid_lr_weight`,
`up_lr_weight`, `block_lr_zero_threshold` network_args), as sd-scripts' networks/lora.py reads
them: 12 down weights, 1 mid, 12 up, each list either comma-separated numbers (missing ones 1.0)
or a named curve (cosine, sine, linear, reverse_linear, zeros, optionally "+base"). A UNet module's
learning rate is unet_lr x the weight of its block (get_block_index); blocks at weight 0 (or at
most the threshold) get no LoRA modules at all."""

from __future__ import annotations

import math
import re

from ..errors import FaceloraError

NUM_OF_BLOCKS = 12  # down and up blocks of SD1.5 as Kohya counts them
NUM_OF_MID_BLOCKS = 1
ARGS = ("down_lr_weight", "mid_lr_weight", "up_lr_weight", "block_lr_zero_threshold")
_UPDOWN = re.compile(r"(up|down)_blocks_(\d+)_(resnets|upsamplers|downsamplers|attentions)_(\d+)_")
_CURVES = {
    "cosine": lambda i, n: math.sin(math.pi * ((n - 1 - i) / (n - 1)) / 2),
    "sine": lambda i, n: math.sin(math.pi * (i / (n - 1)) / 2),
    "linear": lambda i, n: i / (n - 1),
    "reverse_linear": lambda i, n: (n - 1 - i) / (n - 1),
    "zeros": lambda i, n: 0.0,
}


def _weights(name: str, value, length: int) -> list[float]:
    text = ",".join(str(v) for v in value) if isinstance(value, (list, tuple)) else str(value)
    curve, _, base = text.partition("+")
    try:
        if curve in _CURVES:
            return [_CURVES[curve](i, length) + (float(base) if base else 0.0) for i in range(length)]
        if length > 1 and "," not in text:
            raise ValueError("one number for several blocks")  # caught below
        weights = [float(s) if s.strip() else 0.0 for s in text.split(",")]
    except ValueError:
        raise FaceloraError("network_args {name}={text}: {length} comma-separated numbers or one of {curves} (e.g. "
                            "sine+0.5).", name=name, text=text, length=length, curves=", ".join(_CURVES)) from None
    if len(weights) > length or any(w < 0 for w in weights):
        raise FaceloraError("network_args {name}={text}: at most {length} weights, none below 0.", name=name, text=text,
                            length=length)
    return weights + [1.0] * (length - len(weights))


def block_lr_weights(network_args: dict) -> list[float] | None:
    """The 25 block weights (down 12, mid 1, up 12) the network_args ask for, or None."""
    if not any(network_args.get(k) is not None for k in ARGS[:3]):
        return None
    threshold = float(network_args.get("block_lr_zero_threshold", 0.0) or 0.0)
    parts = []
    for key, length in (("down_lr_weight", NUM_OF_BLOCKS), ("mid_lr_weight", NUM_OF_MID_BLOCKS),
                        ("up_lr_weight", NUM_OF_BLOCKS)):
        value = network_args.get(key)
        weights = [1.0] * length if value is None else _weights(key, value, length)
        parts += [w if w > threshold else 0.0 for w in weights] if value is not None else weights
    return parts


def block_index(lora_name: str) -> int:
    """sd-scripts' get_block_index for SD1.5: 1-12 down, 12 mid, 13-24 up, -1 elsewhere."""
    m = _UPDOWN.search(lora_name)
    if m:
        part, i, kind, j = m.group(1), int(m.group(2)), m.group(3), int(m.group(4))
        idx = 3 * i + (2 if kind in ("upsamplers", "downsamplers") else j)
        return 1 + idx if part == "down" else NUM_OF_BLOCKS + 1 + idx
    return NUM_OF_BLOCKS if "mid_block_" in lora_name else -1
