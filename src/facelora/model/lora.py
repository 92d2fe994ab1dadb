"""Kohya's LoRA ("networks.lora"): which modules it adapts, the trainable network that wraps
them, and the .safetensors file that AUTOMATIC1111, ComfyUI, diffusers and Kohya's tools read.

Each adapted module keeps its weight W and gains two small matrices: its output becomes
W x + up(down(x)) * multiplier * alpha / rank. The file holds, per module, exactly
`<name>.lora_down.weight`, `<name>.lora_up.weight` and a 0-dim `<name>.alpha`.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save as safetensors_bytes
from torch import nn
from torch.nn import functional as F

from ..errors import FaceloraError
from ..fileio import atomic_write_bytes
from . import cpu_linear
from .files import read_header, read_tensors

UNET_PREFIX = "lora_unet_"
# SD1.5's text-encoder names are fixed strings: the module paths of transformers 4's
# CLIPTextModel (`text_model.encoder.layers.<i>...`). transformers 5 dropped the `text_model`
# level, and names walked from it are ignored by ComfyUI, Kohya and A1111.
TE_PREFIX = "lora_te_text_model_encoder_layers_"
TE_TARGETS = {
    "self_attn_q_proj": "self_attn.q_proj",
    "self_attn_k_proj": "self_attn.k_proj",
    "self_attn_v_proj": "self_attn.v_proj",
    "self_attn_out_proj": "self_attn.out_proj",
    "mlp_fc1": "mlp.fc1",
    "mlp_fc2": "mlp.fc2",
}
UNET_TARGET_BLOCK = "Transformer2DModel"
SUFFIXES = (".lora_down.weight", ".lora_up.weight", ".alpha")


class LoRAFileError(FaceloraError, ValueError):
    """A LoRA file that cannot be read, is not a Kohya LoRA, or does not fit the network."""


# --- the target list ---------------------------------------------------------------------------


def target_modules(unet: nn.Module | None, text_encoder: nn.Module | None) -> dict[str, nn.Module]:
    """Kohya name -> module, for every module a LoRA adapts (the one place this list is made):
    each Linear and 1x1 Conv2d inside the UNet's Transformer2DModel blocks (192 on SD1.5), and
    the text encoder's attention q/k/v/out and MLP fc1/fc2 in every layer (72 on SD1.5).
    Pass None for a part that is not adapted."""
    out: dict[str, nn.Module] = {}
    if text_encoder is not None:
        layers = getattr(text_encoder, "text_model", text_encoder).encoder.layers
        for i, layer in enumerate(layers):
            for suffix, path in TE_TARGETS.items():
                out[f"{TE_PREFIX}{i}_{suffix}"] = layer.get_submodule(path)
    if unet is not None:
        for block_path, block in unet.named_modules():
            if type(block).__name__ != UNET_TARGET_BLOCK:
                continue
            for child_path, child in block.named_modules():
                if isinstance(child, nn.Linear) or (isinstance(child, nn.Conv2d) and child.kernel_size == (1, 1)):
                    out[UNET_PREFIX + f"{block_path}.{child_path}".replace(".", "_")] = child
    return out


# --- the network -------------------------------------------------------------------------------


class LoRAModule(nn.Module):
    """One adapted module: down (rank x in) and up (out x rank), Linear or 1x1 Conv2d like the
    original. Applied, it takes the original's forward over: org_forward(x) + up(down(x)) *
    multiplier * alpha / rank, computed in the cheaper of two equal forms (forward). down starts
    Kaiming-uniform (a = sqrt 5), up at zero, so a new network changes nothing until trained."""

    def __init__(self, lora_name: str, org_module: nn.Module, rank: int, alpha: float, multiplier: float = 1.0):
        super().__init__()
        self.lora_name = lora_name
        self.rank = int(rank)
        if isinstance(org_module, nn.Conv2d):
            self.lora_down: nn.Module = nn.Conv2d(org_module.in_channels, self.rank, (1, 1), bias=False)
            self.lora_up: nn.Module = nn.Conv2d(self.rank, org_module.out_channels, (1, 1), bias=False)
        elif isinstance(org_module, nn.Linear):
            self.lora_down = nn.Linear(org_module.in_features, self.rank, bias=False)
            self.lora_up = nn.Linear(self.rank, org_module.out_features, bias=False)
        else:
            raise TypeError(f"{lora_name}: LoRA adapts Linear and 1x1 Conv2d modules, not {type(org_module).__name__}")
        nn.init.kaiming_uniform_(self.lora_down.weight, a=math.sqrt(5))
        nn.init.zeros_(self.lora_up.weight)
        self.register_buffer("alpha", torch.tensor(float(alpha)))
        self.scale = float(alpha) / self.rank
        self.multiplier = float(multiplier)
        self._org = [org_module]  # a list, so the original's weights are not registered as ours
        # Linear, and 1x1 convolutions with no stride, padding or groups, are matrix products;
        # computed as such (see forward), a 1x1 convolution on NCHW avoids oneDNN's reorders.
        self._as_products = isinstance(org_module, nn.Linear) or (
            org_module.stride == (1, 1) and org_module.padding == (0, 0) and org_module.dilation == (1, 1)
            and org_module.groups == 1 and org_module.padding_mode == "zeros")
        self._org_forward = None
        self._had_own_forward = False

    @property
    def org_module(self) -> nn.Module:
        return self._org[0]

    def apply_to(self) -> None:
        if self._org_forward is not None:
            return
        org = self.org_module
        self._had_own_forward = "forward" in org.__dict__
        self._org_forward = org.forward
        org.forward = self.forward

    def remove(self) -> None:
        if self._org_forward is None:
            return
        org = self.org_module
        if self._had_own_forward:
            org.forward = self._org_forward
        else:
            del org.forward
        self._org_forward = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        org, down, up = self.org_module, self.lora_down.weight, self.lora_up.weight
        m = self.multiplier * self.scale
        if not self._as_products or org.weight.dtype != down.dtype or not (
                x.dtype == down.dtype or torch.is_autocast_enabled(x.device.type)):
            # Kohya's definition as written: for a convolution with stride or padding, and for
            # half-precision base weights beside fp32 LoRA weights (CUDA fp16/bf16 training).
            out = self._org_forward(x)
            return out + (self.lora_up(self.lora_down(x.to(down.dtype))) * m).to(out.dtype)
        conv = isinstance(org, nn.Conv2d)
        fan_in, fan_out = down.shape[1], up.shape[0]
        if self._merging_is_cheaper(x.numel() // fan_in, fan_in, fan_out, down.requires_grad or up.requires_grad):
            weight = torch.addmm(org.weight.flatten(1), up.flatten(1), down.flatten(1), alpha=m)
            return _product(x, weight, conv, org.bias)
        # The up projection adds its product to the base output (alpha m, beta 1): no separate
        # passes over the output to scale it and add it.
        base = _product(x, org.weight.flatten(1), conv, org.bias)
        return _product(_product(x, down.flatten(1), conv), up.flatten(1), conv, add_to=base, alpha=m)

    def _merging_is_cheaper(self, tokens: int, fan_in: int, fan_out: int, training: bool) -> bool:
        """Whether (W + m up down) x costs fewer FLOPs than W x + m up(down x), for `tokens`
        input vectors. Training, the merged form trades the rank-r products of the forward and
        backward (6 t r (in + out)) for one weight-sized gradient (2 t in out) plus the products
        that form W' and split its gradient (6 r in out): it wins where t is large and the layer
        narrow (SD1.5's 64x64 level at 512 px). Without gradients: r in out against t r (in + out)."""
        r = self.rank
        if training and torch.is_grad_enabled():
            return 2 * tokens * fan_in * fan_out + 6 * r * fan_in * fan_out < 6 * tokens * r * (fan_in + fan_out)
        return 2 * r * fan_in * fan_out < 2 * tokens * r * (fan_in + fan_out)

    def delta_weight(self) -> torch.Tensor:
        """up @ down x alpha / rank, shaped like the original weight (multiplier not included)."""
        up, down = self.lora_up.weight, self.lora_down.weight
        delta = up.flatten(1) @ down.flatten(1) * self.scale
        return delta.reshape(self.org_module.weight.shape)


def _product(x: torch.Tensor, weight: torch.Tensor, conv: bool, bias: torch.Tensor | None = None,
             add_to: torch.Tensor | None = None, alpha: float = 1.0) -> torch.Tensor:
    """weight (out x in) applied to x as a Linear ([..., in]) or a 1x1 convolution ([B, in, H, W])
    does, plus bias, or added to add_to as add_to + alpha * product."""
    if conv:
        b, _, h, w = x.shape
        x3, w3 = x.flatten(2), weight.expand(b, *weight.shape)
        if add_to is not None:
            out = torch.baddbmm(add_to.flatten(2), w3, x3, alpha=alpha)
        elif bias is not None:
            out = torch.baddbmm(bias.view(1, -1, 1), w3, x3)
        else:
            out = torch.bmm(w3, x3)
        return out.view(b, weight.shape[0], h, w)
    if cpu_linear.usable(x, weight):
        return cpu_linear.linear(x, weight if alpha == 1.0 else weight * alpha, bias, add_to)
    if add_to is None:
        return F.linear(x, weight, bias)
    out = torch.addmm(add_to.reshape(-1, weight.shape[0]), x.reshape(-1, weight.shape[1]), weight.t(), alpha=alpha)
    return out.view(*x.shape[:-1], weight.shape[0])


class LoRANetwork(nn.Module):
    """The LoRA modules of one model. Its state_dict() keys are the Kohya file keys."""

    def __init__(self, unet: nn.Module, text_encoder: nn.Module, rank: int, alpha: float,
                 train_unet: bool = True, train_text_encoder: bool = True, multiplier: float = 1.0):
        super().__init__()
        if not (train_unet or train_text_encoder):
            raise FaceloraError("A LoRA must train the UNet, the text encoder, or both.")
        self.rank, self.alpha = int(rank), float(alpha)
        targets = target_modules(unet if train_unet else None, text_encoder if train_text_encoder else None)
        self.loras: dict[str, LoRAModule] = {}
        for name, module in targets.items():
            lora = LoRAModule(name, module, self.rank, self.alpha, multiplier)
            self.add_module(name, lora)
            self.loras[name] = lora
        self.text_encoder_loras = [m for n, m in self.loras.items() if n.startswith("lora_te_")]
        self.unet_loras = [m for n, m in self.loras.items() if n.startswith(UNET_PREFIX)]
        self.applied = False

    def apply_to(self) -> None:
        """Take over the targets' forwards (the base weights stay untouched)."""
        for lora in self.loras.values():
            lora.apply_to()
        self.applied = True

    def remove(self) -> None:
        """Give the targets their original forwards back."""
        for lora in self.loras.values():
            lora.remove()
        self.applied = False

    def set_multiplier(self, multiplier: float) -> None:
        for lora in self.loras.values():
            lora.multiplier = float(multiplier)

    def unet_parameters(self) -> list[nn.Parameter]:
        return [p for m in self.unet_loras for p in m.parameters()]

    def text_encoder_parameters(self) -> list[nn.Parameter]:
        return [p for m in self.text_encoder_loras for p in m.parameters()]

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def kohya_state_dict(self) -> dict[str, torch.Tensor]:
        """The file's tensors (fp32 copies on the CPU): <name>.lora_down.weight,
        <name>.lora_up.weight, <name>.alpha for every module."""
        return {k: v.detach().to("cpu", copy=True) for k, v in self.state_dict().items()}

    def load_kohya_state_dict(self, state_dict: dict[str, torch.Tensor]) -> None:
        """Load a LoRA file's tensors (network_weights, resume). The names, ranks and alpha must
        be this network's; any difference is an error that says what differs."""
        own = self.state_dict()
        missing = sorted(set(own) - set(state_dict))
        unexpected = sorted(set(state_dict) - set(own))
        if missing or unexpected:
            module = lambda keys: sorted({k.split(".")[0] for k in keys})  # noqa: E731
            parts = []
            if missing:
                parts.append(f"it lacks {len(missing)} tensors of {len(module(missing))} modules this network "
                             f"has (e.g. {missing[0]})")
            if unexpected:
                parts.append(f"it has {len(unexpected)} tensors of {len(module(unexpected))} modules this network "
                             f"does not (e.g. {unexpected[0]})")
            raise LoRAFileError(
                "The LoRA does not match the network: " + "; ".join(parts) + ". It was made for other "
                "modules (was it trained with or without the text encoder, or by another tool?)."
            )
        for key, tensor in state_dict.items():
            if tuple(tensor.shape) != tuple(own[key].shape):
                rank = tensor.shape[0] if key.endswith(".lora_down.weight") else None
                hint = f" It has rank {rank}; set network_dim to {rank}." if rank is not None else ""
                raise LoRAFileError(f"{key} has shape {tuple(tensor.shape)}, the network expects "
                                    f"{tuple(own[key].shape)}.{hint}")
            if key.endswith(".alpha") and not math.isclose(float(tensor), self.alpha, rel_tol=1e-3):
                raise LoRAFileError(f"The LoRA has alpha {float(tensor):g}, the network {self.alpha:g}; "
                                    f"set network_alpha to {float(tensor):g}.")
        self.load_state_dict({k: v.to(own[k].dtype) for k, v in state_dict.items()})

    def merged_delta(self, name: str) -> torch.Tensor:
        """The change this LoRA makes to one module's weight, at multiplier 1."""
        return self.loras[name].delta_weight()


# --- the file ----------------------------------------------------------------------------------


def model_hash(data: bytes) -> str:
    """sshs_model_hash: SHA-256 of a safetensors serialisation's tensor data (the bytes after the
    8-byte header length and the JSON header), as Kohya's addnet_hash_safetensors."""
    header_len = int.from_bytes(data[:8], "little")
    return hashlib.sha256(memoryview(data)[8 + header_len:]).hexdigest()


def legacy_hash(data: bytes) -> str:
    """sshs_legacy_hash: the first 8 hex digits of SHA-256 over bytes [1 MiB, 1 MiB + 64 KiB)."""
    return hashlib.sha256(memoryview(data)[0x100000:0x110000]).hexdigest()[:8]


def save_lora(path: str | Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str],
              dtype: torch.dtype = torch.float16) -> None:
    """Write a Kohya LoRA file atomically, tensors in `dtype` (alphas too, as Kohya does), with the
    metadata plus sshs_model_hash and sshs_legacy_hash computed as Kohya does: over the same
    tensors saved in memory with only the ss_* metadata."""
    _check_structure(list(tensors), "The tensors to save")
    bad = [k for k, v in metadata.items() if not isinstance(k, str) or not isinstance(v, str)]
    if bad:
        raise TypeError(f"LoRA metadata values must be strings; not so for {bad[:5]}")
    tensors = {k: v.detach().to("cpu", dtype).contiguous() for k, v in tensors.items()}
    training = safetensors_bytes(tensors, metadata={k: v for k, v in metadata.items() if k.startswith("ss_")})
    full = dict(metadata, sshs_model_hash=model_hash(training), sshs_legacy_hash=legacy_hash(training))
    del training
    atomic_write_bytes(Path(path), safetensors_bytes(tensors, metadata=full))


def read_lora(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The tensors and metadata of a Kohya SD1.5 LoRA file, with a clear error for a missing,
    truncated or foreign file."""
    path = Path(path)
    if not path.is_file():
        raise LoRAFileError(f"No LoRA file at {path}.")
    shapes, metadata = read_header(path, "LoRA", LoRAFileError)
    _check_structure(list(shapes), path.name)
    return read_tensors(path, "LoRA", LoRAFileError), metadata


_KOHYA_KEY = re.compile(r"^(lora_unet_|lora_te_)\w+(\.lora_down\.weight|\.lora_up\.weight|\.alpha)$")


def _check_structure(keys: list[str], what: str) -> None:
    """Every key a Kohya SD1.5 LoRA key, and every module with its down and up."""
    if not keys:
        raise LoRAFileError(f"{what} holds no tensors: not a LoRA.")
    foreign = [k for k in keys if not _KOHYA_KEY.match(k)]
    if foreign:
        sample = foreign[0]
        if sample.startswith(("model.diffusion_model.", "first_stage_model.", "cond_stage_model.")):
            kind = "a base model checkpoint, not a LoRA"
        elif sample.startswith(("lora_te1_", "lora_te2_")):
            kind = "an SDXL LoRA (lora_te1_/lora_te2_ names); facelora's LoRAs are SD1.5"
        elif any(s in sample for s in ("hada_", "lokr_", ".diff", "dora_scale")):
            kind = "a LyCORIS network (LoHa/LoKr/DoRA), not a plain LoRA"
        else:
            kind = f"not a Kohya SD1.5 LoRA (a key like '{sample}')"
        raise LoRAFileError(f"{what} is {kind}.")
    names = {k.rsplit(".lora_", 1)[0] if ".lora_" in k else k.removesuffix(".alpha") for k in keys}
    broken = [n for n in sorted(names) if f"{n}.lora_down.weight" not in keys or f"{n}.lora_up.weight" not in keys]
    if broken:
        raise LoRAFileError(f"{what} is incomplete: {broken[0]} lacks its lora_down or lora_up weight.")


# --- metadata ----------------------------------------------------------------------------------


def _text(value: Any) -> str:
    if isinstance(value, (dict, list, tuple)) and not isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _resolution(resolution: Any) -> tuple[int, int]:
    if isinstance(resolution, int):
        return resolution, resolution
    if isinstance(resolution, str):
        parts = [int(p) for p in re.split(r"[,x ]+", resolution.strip("() ")) if p]
        return (parts[0], parts[-1])
    w, h = resolution
    return int(w), int(h)


def _network_args(args: Any) -> dict[str, str]:
    if args is None:
        return {}
    if isinstance(args, dict):
        return {str(k): str(v) for k, v in args.items()}
    return dict(a.split("=", 1) if "=" in a else (a, "True") for a in args)


def kohya_metadata(
    *,
    network_dim: int,
    network_alpha: float,
    output_name: str = "",
    sd_model_name: str = "",
    clip_skip: int | None = None,
    resolution: Any = (512, 512),
    num_train_images: int = 0,
    epoch: int = 0,
    steps: int = 0,
    training_started_at: float | None = None,
    tag_frequency: dict[str, dict[str, int]] | None = None,
    dataset_dirs: dict[str, dict[str, int]] | None = None,
    bucket_info: dict[str, Any] | None = None,
    learning_rate: float | None = None,
    unet_lr: float | None = None,
    text_encoder_lr: float | None = None,
    optimizer: str = "",
    lr_scheduler: str = "",
    seed: int | None = None,
    network_args: list[str] | dict[str, str] | None = None,
    trigger_phrase: str = "",
    title: str | None = None,
    date: float | None = None,
    **extra: Any,
) -> dict[str, str]:
    """The ss_* and modelspec.* metadata of a Kohya LoRA file, every value a string (JSON for
    tag_frequency, dataset_dirs, bucket_info, network_args; "None" for unset values, as Kohya
    writes them). Extra keyword arguments become ss_<name> (or keep an ss_ name they already
    have): ss_max_train_steps, ss_noise_offset, ss_min_snr_gamma, ..."""
    started = time.time() if training_started_at is None else float(training_started_at)
    width, height = _resolution(resolution)
    meta = {
        "ss_network_module": "networks.lora",
        "ss_network_dim": str(int(network_dim)),
        "ss_network_alpha": str(float(network_alpha)),
        "ss_network_args": json.dumps(_network_args(network_args)),
        "ss_base_model_version": "sd_v1",
        "ss_v2": "False",
        "ss_output_name": str(output_name),
        "ss_sd_model_name": str(sd_model_name),
        "ss_clip_skip": str(clip_skip),
        "ss_resolution": str((width, height)),
        "ss_num_train_images": str(int(num_train_images)),
        "ss_epoch": str(int(epoch)),
        "ss_steps": str(int(steps)),
        "ss_training_started_at": str(started),
        "ss_tag_frequency": json.dumps(tag_frequency or {}, ensure_ascii=False),
        "ss_dataset_dirs": json.dumps(dataset_dirs or {}, ensure_ascii=False),
        "ss_bucket_info": json.dumps(bucket_info, ensure_ascii=False),
        "ss_learning_rate": str(learning_rate),
        "ss_unet_lr": str(unet_lr),
        "ss_text_encoder_lr": str(text_encoder_lr),
        "ss_optimizer": str(optimizer),
        "ss_lr_scheduler": str(lr_scheduler),
        "ss_seed": str(seed),
        "modelspec.sai_model_spec": "1.0.1",
        "modelspec.architecture": "stable-diffusion-v1/lora",
        "modelspec.implementation": "diffusers",
        "modelspec.title": str(title if title is not None else output_name),
        "modelspec.resolution": f"{width}x{height}",
        "modelspec.date": datetime.fromtimestamp(time.time() if date is None else date).isoformat(timespec="seconds"),
        "modelspec.prediction_type": "epsilon",
        "modelspec.trigger_phrase": str(trigger_phrase),
    }
    for key, value in extra.items():
        meta[key if key.startswith("ss_") else f"ss_{key}"] = _text(value)
    return meta
