"""What a prepared photo's output depends on besides its bytes: the settings' key, so an
incremental run knows which of the last run's results still stand."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from . import upscale
from .options import PrepareOptions

PIPELINE_VERSION = 2  # bump when a change makes earlier outputs stale


def photo_key(sha256: str, settings: str) -> str:
    """The key of one photo's result: its bytes' hash under the settings' key."""
    return hashlib.sha256(f"{sha256}:{settings}".encode()).hexdigest()[:32]


def settings_key(options: PrepareOptions, trigger: str, class_word: str | None) -> str:
    """What an output depends on besides the photo's bytes."""
    data = options.model_dump(exclude={"overwrite_captions", "duplicate_bits", "outlier_threshold"})
    data["upscaler"] = upscale.identity_name(options.upscaler)
    data["captioner"] = file_identity(options.captioner) if options.captioner != "template" else "template"
    data.update(trigger=trigger, class_word=class_word, version=PIPELINE_VERSION)
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def file_identity(spec: str) -> str:
    path = Path(spec).expanduser().resolve()
    parts = [str(path)]
    for p in ([path / "model.onnx", path / "selected_tags.csv"] if path.is_dir() else [path]):
        try:
            st = p.stat()
            parts.append(f"{p.name}:{st.st_size}:{int(st.st_mtime)}")
        except OSError:
            pass
    return "|".join(parts)
