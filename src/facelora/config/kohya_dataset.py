"""sd-scripts' dataset config (`--dataset_config`), written when a project's data needs more than
train_data_dir and reg_data_dir say: masks from conditioning_data_dir (Kohya reads them only from a
subset's `conditioning_data_dir` key) or a folder of held-out photos (validation_data_dir: Kohya's
form is a dataset of its own with `validation_split = 1.0`, docs/validation.md). The subsets are
the `<repeats>_<name>` folders, read as sd-scripts' generate_dreambooth_subsets_config_by_subdirs
reads them; every other value (resolution, batch size, captions, validation_split, ...) comes
from the training TOML, which sd-scripts falls back to for keys the dataset config leaves out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import tomli_w

from .fields import TrainConfig

DATASET_CONFIG_FILE = "kohya-dataset.toml"  # beside the training TOML


def needs_dataset_config(cfg: TrainConfig) -> bool:
    return bool(cfg.conditioning_data_dir or cfg.validation_data_dir)


def _folders(base: Path) -> list[tuple[Path, int, str]]:
    """(folder, repeats, class tokens) of each `<repeats>_<name>` folder, as sd-scripts splits
    the name: the number before the first '_', the rest (underscores kept) the words."""
    out = []
    for sub in sorted(p for p in base.iterdir() if p.is_dir()) if base.is_dir() else []:
        head, _, words = sub.name.partition("_")
        if head.isdigit() and int(head) >= 1:
            out.append((sub, int(head), words))
    return out


def dataset_config_toml(cfg: TrainConfig, project_root: Path) -> str:
    """The dataset config of `cfg` (folders made absolute as the training TOML's are)."""
    root = Path(project_root)
    train = [_subset(folder, repeats, words, cfg, root) for folder, repeats, words in _folders(root / cfg.train_data_dir)]
    if cfg.reg_data_dir:  # (config checks refuse class images with conditioning masks, as Kohya's dataset has none)
        train += [{"image_dir": str(f.resolve()), "num_repeats": n, "is_reg": True, "class_tokens": w}
                  for f, n, w in _folders(root / cfg.reg_data_dir)]
    datasets: list[dict[str, Any]] = [{"subsets": train}]
    if cfg.validation_data_dir:  # a DreamBooth dataset of its own, all of it held out (validation_split 1.0)
        datasets.append({"validation_split": 1.0, "subsets": [
            {"image_dir": str(f.resolve()), "num_repeats": 1, "class_tokens": w}
            for f, _, w in _folders(root / cfg.validation_data_dir)]})
    return tomli_w.dumps({"datasets": datasets})


def _subset(folder: Path, repeats: int, words: str, cfg: TrainConfig, root: Path) -> dict[str, Any]:
    if not cfg.conditioning_data_dir:
        return {"image_dir": str(folder.resolve()), "num_repeats": repeats, "class_tokens": words}
    # Kohya's conditioning subsets take no class_tokens: their photos need caption files (prepare writes them)
    return {"image_dir": str(folder.resolve()), "num_repeats": repeats,
            "conditioning_data_dir": str((root / cfg.conditioning_data_dir / folder.name).resolve())}
