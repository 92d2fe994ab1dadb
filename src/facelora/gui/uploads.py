"""Photos uploaded through the browser: checked as prepare checks its inputs (type, size, that
the bytes decode to an image of a sane size) before they are kept, then copied into
PROJECT/photos/ so the project holds its own originals and prepare reads them like any folder."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from ..paths import PathError, check_name
from ..prepare.images import PHOTO_SUFFIXES, ImageRejected, load
from ..project import Project
from .i18n import T, error_message

PHOTOS_DIR = "photos"


@dataclass
class UploadResult:
    kept: list[Path] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)  # (file name, reason)


def photos_dir(project: Project) -> Path:
    return project.root / PHOTOS_DIR


def check_image(path: Path, name: str) -> str | None:
    """Why this file cannot be a photo, or None when it is fine: the checks prepare makes on its
    inputs (type, size, that it decodes to an image of a sane size)."""
    if Path(name).suffix.lower() not in PHOTO_SUFFIXES:
        return T("not a photo type facelora reads ({types})", types=", ".join(PHOTO_SUFFIXES))
    try:
        load(Path(path))
    except ImageRejected as e:
        return error_message(e)
    return None


def name_problem(name: str) -> str | None:
    """Why the browser's file name cannot be kept as a file name (with room for '-NN'), or None."""
    try:
        check_name(name, "The file name", suffix_bytes=8)
    except PathError as e:
        return error_message(e)
    return None


def _free_name(folder: Path, name: str) -> Path:
    """`name` in `folder`, numbered when a different file already has it (nothing is overwritten)."""
    stem, suffix = Path(name).stem or "photo", Path(name).suffix.lower()
    target, n = folder / f"{stem}{suffix}", 1
    while target.exists():
        n += 1
        target = folder / f"{stem}-{n}{suffix}"
    return target


def accept_uploads(project: Project, uploads: list[tuple[Path, str]]) -> UploadResult:
    """Keep the good files of (temporary path, name the browser gave) in PROJECT/photos/."""
    result = UploadResult()
    dest = photos_dir(project)
    dest.mkdir(parents=True, exist_ok=True)
    for tmp, name in uploads:
        name = Path(name.replace("\\", "/")).name  # a browser's name is never a path
        reason = name_problem(name) or check_image(Path(tmp), name)
        if reason:
            result.refused.append((name, reason))
            continue
        target = _free_name(dest, name)
        shutil.copyfile(tmp, target)
        result.kept.append(target)
    return result
