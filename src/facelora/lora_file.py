"""The Kohya LoRA file (DESIGN.md section 3), the .safetensors that AUTOMATIC1111, ComfyUI,
diffusers and Kohya's tools read: its keys, writing and reading it, its hashes and its metadata.

Per adapted module a LoRA holds `<name>.lora_down.weight`, `<name>.lora_up.weight` and a 0-dim
`<name>.alpha`; a LyCORIS file (lycoris.kohya) LoHa's or LoKr's tensors, or DoRA's dora_scale
beside a LoRA's (MODULE_KEYS). The header is read through model.files.read_header, the one reader, and
torch is imported only where tensors are handled, so listing and hashing files stays light.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import FaceloraError, Templated
from .fileio import atomic_write_bytes
from .model.family import SD15, ModelFamily
from .model.files import read_header, read_tensors

if TYPE_CHECKING:
    import torch

NETWORK_MODULE = "networks.lora"


class LoRAFileError(FaceloraError, ValueError):
    """A LoRA file that cannot be read, is not a Kohya LoRA, or does not fit the network."""


class MetadataTypeError(Templated, TypeError):
    """Metadata that is not all strings: a bug of the caller, with its message as a template."""


# --- hashes ------------------------------------------------------------------------------------


def model_hash(data: bytes) -> str:
    """sshs_model_hash: SHA-256 of a safetensors serialisation's tensor data (the bytes after the
    8-byte header length and the JSON header), as Kohya's addnet_hash_safetensors."""
    header_len = int.from_bytes(data[:8], "little")
    return hashlib.sha256(memoryview(data)[8 + header_len:]).hexdigest()


def legacy_hash(data: bytes) -> str:
    """sshs_legacy_hash: the first 8 hex digits of SHA-256 over bytes [1 MiB, 1 MiB + 64 KiB)."""
    return hashlib.sha256(memoryview(data)[0x100000:0x110000]).hexdigest()[:8]


def addnet_hash(path: str | Path) -> str:
    """A file's model_hash: kohya's `sshs_model_hash`, and the hash A1111 shows (its first 12
    digits) in `Lora hashes`."""
    try:
        return model_hash(Path(path).read_bytes())
    except OSError as e:
        raise LoRAFileError("Cannot read {path}: {error}", path=str(path), error=str(e)) from None


# --- reading and writing -----------------------------------------------------------------------


def read_metadata(path: str | Path) -> dict[str, str]:
    """The file's metadata (ss_*, modelspec.*, sshs_*), from its header alone."""
    return read_header(Path(path), "LoRA", LoRAFileError)[1]


def read_shapes(path: str | Path) -> dict[str, tuple[int, ...]]:
    """Key -> shape of the file's tensors, from its header alone."""
    return read_header(Path(path), "LoRA", LoRAFileError)[0]


def save_lora(path: str | Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str],
              dtype: torch.dtype | None = None) -> None:
    """Write a Kohya LoRA file atomically, tensors in `dtype` (default fp16; alphas too, as Kohya
    does), with the metadata plus sshs_model_hash and sshs_legacy_hash computed as Kohya does:
    over the same tensors saved in memory with only the ss_* metadata."""
    import torch
    from safetensors.torch import save as safetensors_bytes

    dtype = torch.float16 if dtype is None else dtype
    check_keys(list(tensors), "The tensors to save")
    bad = [k for k, v in metadata.items() if not isinstance(k, str) or not isinstance(v, str)]
    if bad:
        raise MetadataTypeError("LoRA metadata values must be strings; not so for {keys}", keys=str(bad[:5]))
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
        raise LoRAFileError("No LoRA file at {path}.", path=str(path))
    shapes, metadata = read_header(path, "LoRA", LoRAFileError)
    check_keys(list(shapes), path.name)
    return read_tensors(path, "LoRA", LoRAFileError), metadata


# --- keys --------------------------------------------------------------------------------------


def module_name(key: str) -> str:
    """`<name>.lora_down.weight` -> `<name>`."""
    return key.split(".")[0]


# The tensors of one module, per network type, by the names AUTOMATIC1111
# (extensions-builtin/Lora/network_lora.py, network_hada.py, network_lokr.py) and ComfyUI
# (comfy/weight_adapter/lora.py, loha.py, lokr.py) read: each type's groups, any one of which must
# be complete, and its optional tensors. Every type may carry an alpha and DoRA's dora_scale.
MODULE_KEYS: dict[str, tuple[tuple[tuple[str, ...], ...], tuple[str, ...]]] = {
    "LoRA": ((("lora_down.weight", "lora_up.weight"),), ("lora_mid.weight",)),
    "LoHa": ((("hada_w1_a", "hada_w1_b", "hada_w2_a", "hada_w2_b"),), ("hada_t1", "hada_t2")),
    "LoKr": ((("lokr_w1", "lokr_w2"), ("lokr_w1", "lokr_w2_a", "lokr_w2_b"), ("lokr_w1_a", "lokr_w1_b", "lokr_w2"),
              ("lokr_w1_a", "lokr_w1_b", "lokr_w2_a", "lokr_w2_b")), ("lokr_t2",)),
}
COMMON_KEYS = ("alpha", "dora_scale")


def _suffixes() -> list[str]:
    out = set(COMMON_KEYS)
    for groups, optional in MODULE_KEYS.values():
        out.update(k for g in groups for k in g)
        out.update(optional)
    return sorted(out, key=len, reverse=True)


def _key_pattern(family: ModelFamily) -> re.Pattern[str]:
    prefixes = "|".join(re.escape(p) for p in (family.unet_prefix, family.text_encoder_prefix))
    suffixes = "|".join(re.escape(s) for s in _suffixes())
    return re.compile(rf"^({prefixes})\w+\.({suffixes})$")


def module_type(suffixes: set[str]) -> str | None:
    """The network type ("LoRA", "LoHa", "LoKr") whose tensors a module's key suffixes are, or None
    when no type's tensors are complete."""
    for kind, (groups, optional) in MODULE_KEYS.items():
        own = {k for g in groups for k in g} | set(optional)
        if suffixes & own and any(set(g) <= suffixes for g in groups) and suffixes - set(COMMON_KEYS) <= own:
            return kind
    return None


def check_keys(keys: list[str], what: str, family: ModelFamily = SD15) -> None:
    """Every key a LoRA or LyCORIS key of the family, and every module's tensors complete."""
    if not keys:
        raise LoRAFileError("{what} holds no tensors: not a LoRA.", what=what)
    pattern = _key_pattern(family)
    foreign = [k for k in keys if not pattern.match(k)]
    if foreign:
        sample = foreign[0]
        if sample.startswith(("model.diffusion_model.", "first_stage_model.", "cond_stage_model.")):
            raise LoRAFileError("{what} is a base model checkpoint, not a LoRA.", what=what)
        if sample.startswith(("lora_te1_", "lora_te2_")):
            raise LoRAFileError("{what} is an SDXL LoRA (lora_te1_/lora_te2_ names); facelora's LoRAs are SD1.5.",
                                what=what)
        raise LoRAFileError("{what} is not a Kohya SD1.5 LoRA or LyCORIS file (a key like '{key}').", what=what,
                            key=sample)
    modules: dict[str, set[str]] = {}
    for k in keys:
        name, _, suffix = k.partition(".")
        modules.setdefault(name, set()).add(suffix)
    broken = [n for n in sorted(modules) if module_type(modules[n]) is None]
    if broken:
        raise LoRAFileError("{what} is incomplete: {module} has {suffixes}, not the whole lora_down and lora_up "
                            "weight (or LoHa's hada_*, LoKr's lokr_* tensors).", what=what, module=broken[0],
                            suffixes=str(sorted(modules[broken[0]])))


def network_type(keys: list[str]) -> str:
    """The type of the file's modules ("LoRA", "LoHa", "LoKr"; mixed as "LoRA+LoHa"), "+DoRA" when
    they carry dora_scale: what a loader needs to know before it reads them."""
    modules: dict[str, set[str]] = {}
    for k in keys:
        name, _, suffix = k.partition(".")
        modules.setdefault(name, set()).add(suffix)
    kinds = sorted({module_type(s) or "?" for s in modules.values()})
    dora = any("dora_scale" in s for s in modules.values())
    return "+".join(kinds) + ("+DoRA" if dora else "")


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
    network_module: str = NETWORK_MODULE,
    family: ModelFamily = SD15,
    **extra: Any,
) -> dict[str, str]:
    """The ss_* and modelspec.* metadata of a Kohya LoRA file, every value a string (JSON for
    tag_frequency, dataset_dirs, bucket_info, network_args; "None" for unset values, as Kohya
    writes them). Extra keyword arguments become ss_<name> (or keep an ss_ name they already
    have): ss_max_train_steps, ss_noise_offset, ss_min_snr_gamma, ..."""
    started = time.time() if training_started_at is None else float(training_started_at)
    width, height = _resolution(resolution)
    meta = {
        "ss_network_module": network_module,
        "ss_network_dim": str(int(network_dim)),
        "ss_network_alpha": str(float(network_alpha)),
        "ss_network_args": json.dumps(_network_args(network_args)),
        "ss_base_model_version": family.base_model_version,
        "ss_v2": str(family.v2),
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
        "modelspec.architecture": family.modelspec_architecture,
        "modelspec.implementation": "diffusers",
        "modelspec.title": str(title if title is not None else output_name),
        "modelspec.resolution": f"{width}x{height}",
        "modelspec.date": datetime.fromtimestamp(time.time() if date is None else date).isoformat(timespec="seconds"),
        "modelspec.prediction_type": family.prediction_type,
        "modelspec.trigger_phrase": str(trigger_phrase),
    }
    for key, value in extra.items():
        meta[key if key.startswith("ss_") else f"ss_{key}"] = _text(value)
    return meta
