"""Reading and writing .safetensors files safely: writes go to a temporary file beside the target,
are fsynced, then renamed over it, so a crash or a full disk never leaves half a model behind;
reads turn the library's terse errors into messages that say what is wrong with the file.

The one reader of a file's header (keys, shapes, metadata) is read_header; it needs no torch, so
listing and inspecting files (the CLI, the GUI) stays light."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from safetensors import SafetensorError, safe_open

from ..errors import FaceloraError
from ..fileio import atomic_file

if TYPE_CHECKING:
    import torch


def write_safetensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> None:
    """Stream tensors to a temporary file beside `path`, fsync, rename. For large models, whose
    serialisation should not be held in memory a second time."""
    from safetensors.torch import save_file

    with atomic_file(path) as tmp:
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp), metadata=metadata)


def read_header(path: Path, what: str, error: type[FaceloraError]) -> tuple[dict[str, tuple[int, ...]], dict[str, str]]:
    """Key -> shape and the metadata of a .safetensors file, reading only its header.
    `what` names the file in messages ("base model", "LoRA")."""
    path = Path(path)
    try:
        with safe_open(str(path), framework="numpy") as f:  # the header only: no torch needed
            shapes = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
            return shapes, dict(f.metadata() or {})
    except (SafetensorError, OSError, ValueError) as e:
        raise error(_unreadable(path, what, e)) from None


def read_tensors(path: Path, what: str, error: type[FaceloraError], keys: list[str] | None = None) -> dict[str, torch.Tensor]:
    """The tensors of a .safetensors file (all, or `keys`), on the CPU."""
    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            return {k: f.get_tensor(k) for k in (keys if keys is not None else f.keys())}
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise error(_unreadable(path, what, e)) from None


def _unreadable(path: Path, what: str, e: Exception) -> str:
    size = path.stat().st_size if path.exists() else 0
    return (
        f"{path} cannot be read as a .safetensors {what} ({size:,} bytes; the reader says: {e}). "
        f"The file is truncated or corrupt, perhaps from an interrupted download or copy: "
        f"download or copy it again."
    )
