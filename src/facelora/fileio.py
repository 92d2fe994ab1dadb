"""Writing and reading files that matter, each failure one message in one place.

Writes go to a temporary file beside the target, fsync, then rename, so a crash or a full disk
never leaves a half-written file in place of a good one; a failed write (full disk, read-only
folder, permissions, a name too long; from plain I/O, safetensors, torch or PIL) becomes a
WriteError saying what happened and what to do. Reads of files facelora needs (configs, reports,
JSON indexes) fail with a ReadError naming the file: missing, a folder, not UTF-8, not JSON."""

from __future__ import annotations

import errno
import json
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from safetensors import SafetensorError

from .errors import FaceloraError

_UMASK = os.umask(0o022)  # read the process umask (set it back at once)
os.umask(_UMASK)

# errno -> (what happened, what to do); {folder} is the folder written into.
_WRITE_REASONS = {
    errno.ENOSPC: ("the disk is full", "Free some space on {folder} and run again."),
    errno.EDQUOT: ("the disk quota is used up", "Free some space on {folder} (or raise the quota) and run again."),
    errno.EROFS: ("the file system is read-only", "Make {folder} writable, or copy the project to a writable disk."),
    errno.EACCES: ("permission denied", "Make {folder} writable for this user (chmod, chown), or copy the project."),
    errno.EPERM: ("the operation is not permitted", "Make {folder} writable for this user, or copy the project."),
    errno.ENAMETOOLONG: ("the name is too long for the file system",
                         "Choose a shorter output_name (or project folder name)."),
    errno.ENOTDIR: ("a part of the path is a file, not a folder", "Move that file out of the way."),
    errno.EISDIR: ("a folder has that name", "Move that folder out of the way."),
    errno.EIO: ("the disk reported an input/output error", "Check the disk, then run again."),
}
_DISK_FULL = {errno.ENOSPC, errno.EDQUOT}


class WriteError(FaceloraError, OSError):
    """A file could not be written (full disk, read-only folder, permissions, a name too long);
    the earlier file of that name, if any, is untouched."""


class DiskFullError(WriteError):
    """The disk (or quota) filled up while writing; the earlier file, if any, is untouched."""


class ReadError(FaceloraError, OSError):
    """A file facelora needs is missing, is a folder, cannot be read, or is not what it should be."""


def _errno_of(e: BaseException) -> int | None:
    """The errno of an OSError, or of the I/O error inside a SafetensorError's message
    ('... IoError(Os { code: 28, kind: StorageFull, ... })')."""
    if isinstance(e, OSError):
        return e.errno
    if isinstance(e, SafetensorError):
        found = re.search(r"code: (\d+)", str(e))
        return int(found.group(1)) if found else None
    return None


def write_error(path: Path, e: BaseException) -> WriteError | None:
    """The one message for a failed write of `path`, or None when `e` is not an I/O failure."""
    code = _errno_of(e)
    if code is None or code == errno.EEXIST:  # EEXIST: the caller's own test (a lock taken)
        return None
    path = Path(path)
    reason, todo = _WRITE_REASONS.get(code, (os.strerror(code).lower(), "Check {folder}, then run again."))
    kind = DiskFullError if code in _DISK_FULL else WriteError
    return kind(f"Could not write {path}: {reason}; nothing was overwritten (any earlier {path.name} is intact). "
                + todo.format(folder=path.parent))


def io_error(e: BaseException) -> FaceloraError | None:
    """The last word on an I/O error nothing else explained (the CLI and GUI print it instead of a
    traceback): which file, and what the system said; None when `e` is no I/O error."""
    if isinstance(e, OSError) and e.filename:
        return FaceloraError(f"Could not use {e.filename}: {(e.strerror or str(e)).lower()}. Check that file "
                             f"or folder (its name, permissions and the free space), then run again.")
    if isinstance(e, (OSError, SafetensorError)):
        return FaceloraError(f"A file could not be read or written: {e}. Check the project's folders (their "
                             f"permissions and the free space), then run again.")
    return None


@contextmanager
def clear_write_errors(path: Path) -> Iterator[None]:
    """Turn a failed write (from plain I/O, safetensors, torch or PIL) into one message that
    says what happened to `path` and what to do."""
    try:
        yield
    except FaceloraError:
        raise
    except (OSError, SafetensorError) as e:
        clear = write_error(path, e)
        if clear is None:
            raise
        raise clear from e


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
    with clear_write_errors(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        with clear_write_errors(path):
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


def read_bytes(path: Path, what: str = "the file") -> bytes:
    """A file's bytes, or a ReadError that names it: missing, a folder, unreadable."""
    path = Path(path)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ReadError("Could not read {what} {path}: there is no such file.", what=what, path=str(path)) from None
    except IsADirectoryError:
        raise ReadError("Could not read {what} {path}: it is a folder; give a file.", what=what, path=str(path)) from None
    except OSError as e:
        raise ReadError("Could not read {what} {path}: {error}.", what=what, path=str(path),
                        error=str(e.strerror or e)) from None


def read_text(path: Path, what: str = "the file") -> str:
    """A UTF-8 text file's content (a byte-order mark dropped), or a ReadError that names it."""
    data = read_bytes(path, what)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ReadError("Could not read {what} {path}: it is not UTF-8 text (byte {at} is {byte}). Save it as "
                        "UTF-8.", what=what, path=str(path), at=e.start, byte=repr(data[e.start:e.start + 1])) from None


def load_json(path: Path, what: str = "the file") -> Any:
    """A JSON file facelora needs, or a ReadError that names it and says what is wrong."""
    try:
        return json.loads(read_text(path, what))
    except json.JSONDecodeError as e:
        raise ReadError("Could not read {what} {path}: it is not valid JSON ({error}). It may be damaged or half "
                        "written; make it again.", what=what, path=str(path), error=str(e)) from None
