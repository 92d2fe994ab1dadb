"""Which modules a network adapts, named as Kohya names them: the one place the target list is
made. The facts (prefixes, target block, the text encoder's six module paths) are the model
family's (model/family.py); on SD1.5 this gives Kohya's standard 264 modules: 16 Transformer2D
blocks x 12 in the UNet, 12 layers x 6 in the text encoder."""

from __future__ import annotations

from torch import nn

from ..model.family import SD15, ModelFamily


def target_modules(unet: nn.Module | None, text_encoder: nn.Module | None,
                   family: ModelFamily = SD15) -> dict[str, nn.Module]:
    """Kohya name -> module, for every module a LoRA adapts: each Linear and 1x1 Conv2d inside
    the UNet's target blocks, and the listed modules of every text encoder layer. Pass None for
    a part that is not adapted."""
    out: dict[str, nn.Module] = {}
    if text_encoder is not None:
        layers = getattr(text_encoder, "text_model", text_encoder).encoder.layers
        prefix = family.text_encoder_prefix + family.text_encoder_layers
        for i, layer in enumerate(layers):
            for suffix, path in family.text_encoder_targets.items():
                out[f"{prefix}{i}_{suffix}"] = layer.get_submodule(path)
    if unet is not None:
        for block_path, block in unet.named_modules():
            if type(block).__name__ != family.unet_target_block:
                continue
            for child_path, child in block.named_modules():
                if isinstance(child, nn.Linear) or (isinstance(child, nn.Conv2d) and child.kernel_size == (1, 1)):
                    out[family.unet_prefix + f"{block_path}.{child_path}".replace(".", "_")] = child
    return out


def conv_target_modules(unet: nn.Module, family: ModelFamily = SD15) -> dict[str, nn.Module]:
    """Kohya's LoCon targets beside target_modules': every Linear and Conv2d inside the family's
    conv blocks (ResnetBlock2D, Downsample2D, Upsample2D on SD1.5). Kohya gives the 3x3
    convolutions conv_dim and the rest network_dim (is_conv_3x3 tells them apart)."""
    out: dict[str, nn.Module] = {}
    for block_path, block in unet.named_modules():
        if type(block).__name__ not in family.unet_conv_blocks:
            continue
        for child_path, child in block.named_modules():
            if isinstance(child, (nn.Linear, nn.Conv2d)):
                out[family.unet_prefix + f"{block_path}.{child_path}".replace(".", "_")] = child
    return out


def is_conv_3x3(module: nn.Module) -> bool:
    return isinstance(module, nn.Conv2d) and module.kernel_size != (1, 1)
