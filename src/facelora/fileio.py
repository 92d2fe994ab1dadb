"""Writing files that matter: a temporary file beside the target, fsync, then rename, so a crash
or a full disk never leaves a half-written file in place of a good one."""

from __future__ import annotations

import errno
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .errors import FaceloraError

_DISK_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}
_UMASK = os.umask(0o022)  # read the process umask (set it back at once)
os.umask(_UMASK)


class DiskFullError(FaceloraError, OSError):
    """The disk (or quota) filled up while writing; the earlier file, if any, is untouched."""


@contextmanager
def disk_full_is_clear(path: Path) -> Iterator[None]:
    """Turn 'No space left on device' into a message that says what happened and what to do."""
    try:
        yield
    except OSError as e:
        if e.errno in _DISK_FULL:
            raise DiskFullError(
                f"The disk is full: could not write {path}. Nothing was overwritten (any earlier file "
                f"of that name is intact). Free some space on {Path(path).parent} and run again."
            ) from e
        raise


def usual_permissions(path: Path) -> None:
    """Temporary files are created private (0600); the finished file gets the permissions an
    ordinary write would give it."""
    os.chmod(path, (0o777 if Path(path).is_dir() else 0o666) & ~_UMASK)


@contextmanager
def atomic_file(path: Path) -> Iterator[Path]:
    """A temporary file beside `path` for the caller to fill; afterwards it is fsynced, given the
    usual permissions and renamed over `path`. On any error (a full disk, Ctrl-C) it is removed
    and `path` is untouched: never a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        with disk_full_is_clear(path):
            yield tmp
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
            usual_permissions(tmp)
            os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    with atomic_file(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def read_json(path: Path, default: Any = None) -> Any:
    """A JSON file's content, or `default` when it is missing or unreadable (a cache, a lock, a
    report another run may be rewriting: its absence is never an error)."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return default
