"""The tiny model: SD1.5's architecture at toy sizes, with RANDOM WEIGHTS.

    ============================================================================
    ITS IMAGES ARE NOISE. It is a test device, never a result: nothing made with
    it says anything about likeness, quality or a LoRA's worth.
    ============================================================================

It keeps every structural feature of SD1.5 (a cross-attention down block and a plain one, a
cross-attention mid block, 1x1-conv proj_in/proj_out, CLIP's real 49,408-token vocabulary and 77
positions, a four-level VAE whose latents are 1/8 of the image), so every code path and every
LoRA key name is exercised, while a training step takes milliseconds on a CPU. Its configs are
in sd15/tiny/; the tokenizer and noise schedule are SD1.5's own.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch
from filelock import FileLock

from ..fileio import atomic_write_json, read_json
from .save import save_diffusers, save_single_file
from .sdmodel import TINY_CONFIG_DIR, SDModel, build_models, noise_scheduler, read_config, shipped_tokenizer

SINGLE_FILE = "tiny.safetensors"
DIFFUSERS_FOLDER = "tiny-diffusers"
STAMP = "tiny.json"
SEED = 0


def build_tiny(seed: int = SEED) -> SDModel:
    """The tiny model with random weights drawn from a fixed seed: the same weights every time
    (on the same torch version), without disturbing the caller's random state."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        unet, text_encoder, vae = build_models(TINY_CONFIG_DIR)
    return SDModel(unet.eval(), text_encoder.eval(), vae.eval(), shipped_tokenizer(), noise_scheduler(),
                   name="tiny", path="", config_dir=TINY_CONFIG_DIR)


def cache_root() -> Path:
    """facelora's cache folder: $FACELORA_CACHE, else ~/.cache/facelora."""
    return Path(os.environ.get("FACELORA_CACHE") or Path.home() / ".cache" / "facelora").expanduser()


def tiny_path(cache_dir: Path | None = None) -> Path:
    """The tiny model as a single-file checkpoint, built on first use and kept in `cache_dir`
    (default: <cache_root()>/tiny) beside the same model as a diffusers folder (tiny-diffusers/).
    Rebuilt when the tiny configs change. Files are written atomically, so processes that race
    here each end with a complete model."""
    folder = Path(cache_dir) if cache_dir is not None else cache_root() / "tiny"
    single, diffusers_folder, stamp = folder / SINGLE_FILE, folder / DIFFUSERS_FOLDER, folder / STAMP

    def ready() -> bool:
        return single.is_file() and (diffusers_folder / "model_index.json").is_file() and _stamp_matches(stamp)

    if ready():
        return single
    folder.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder / ".build.lock")):  # one process builds; the others then find it ready
        if not ready():
            model = build_tiny(SEED)
            save_single_file(model, single)
            save_diffusers(model, diffusers_folder)
            atomic_write_json(stamp, {"fingerprint": _fingerprint(), "seed": SEED,
                                      "note": "tiny test model: random weights, its images are noise"})
    return single


def tiny_diffusers_path(cache_dir: Path | None = None) -> Path:
    """The same tiny model as a diffusers folder."""
    return tiny_path(cache_dir).parent / DIFFUSERS_FOLDER


def _fingerprint() -> str:
    h = hashlib.sha256(f"seed={SEED}".encode())
    for part in ("unet", "text_encoder", "vae"):
        h.update(json.dumps(read_config(TINY_CONFIG_DIR, part), sort_keys=True).encode())
    return h.hexdigest()[:16]


def _stamp_matches(stamp: Path) -> bool:
    return (read_json(stamp) or {}).get("fingerprint") == _fingerprint()
