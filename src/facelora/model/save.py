"""Writing the base model back: as one single-file checkpoint (the LDM key names A1111, ComfyUI
and Kohya read) or as a diffusers folder; base.load_base reads either."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import torch

from ..fileio import clear_write_errors, usual_permissions
from .files import write_safetensors
from .sdmodel import BaseModelError, SDModel, build_pipeline, no_progress_bars


def single_file_state_dict(model: SDModel, dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
    """The model's weights under the single-file (LDM) names that A1111, ComfyUI and Kohya read."""
    sd = model.family.key_map().to_single_file(
        model.unet.state_dict(), model.vae.state_dict(), model.text_encoder.state_dict(),
        dict(model.unet.config), dict(model.vae.config), model.text_encoder.config.max_position_embeddings,
    )
    return {k: (v.to(dtype) if dtype is not None and v.is_floating_point() else v).detach().cpu() for k, v in sd.items()}


def save_single_file(model: SDModel, path: str | Path, dtype: torch.dtype | None = None) -> None:
    """Write the model as one .safetensors checkpoint (atomically); load_base reads it back."""
    write_safetensors(Path(path), single_file_state_dict(model, dtype), metadata={"format": "pt"})


def save_diffusers(model: SDModel, folder: str | Path) -> None:
    """Write the model as a diffusers folder (model_index.json, unet/, text_encoder/, vae/,
    tokenizer/, scheduler/) that load_base and StableDiffusionPipeline.from_pretrained read.
    Built beside the target and renamed into place, so a failure leaves any earlier folder."""
    folder = Path(folder)
    if folder.exists() and any(folder.iterdir()) and not (folder / "model_index.json").is_file():
        raise BaseModelError("{folder} exists and is not a diffusers model; facelora will not replace it. "
                             "Choose another folder.", folder=str(folder))
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=folder.parent))
    try:
        with clear_write_errors(folder), no_progress_bars():
            build_pipeline(model, model.noise_scheduler).save_pretrained(tmp, safe_serialization=True)
            usual_permissions(tmp)
            if folder.exists():
                old = folder.with_name(f".{folder.name}.old-{os.getpid()}")
                os.replace(folder, old)
                os.replace(tmp, folder)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp, folder)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
