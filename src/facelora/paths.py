"""The path policy, in one place: facelora reads and writes only inside the folders it was given.

- A *name* that becomes a file or folder name (output_name, the trigger and class word, a project
  a page creates) is one path component: no separators, not `.` or `..`, no NUL or control
  characters, none of the characters or names Windows refuses (so a project copies over), and
  short enough for the file system (255 bytes) with the longest suffix facelora adds to it.
- A *project folder* (train_data_dir, output_dir, logging_dir) is relative to the project and
  made of such names; resolved (symbolic links followed) it must stay inside the project.
- A path a browser sends must resolve inside one of the GUI's roots (`Roots`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path, PurePath

from .errors import FaceloraError

NAME_MAX_BYTES = 255  # ext4, XFS, btrfs, APFS, NTFS (in UTF-16 units; 255 UTF-8 bytes is within it)
# What facelora adds to output_name at most: "-interrupted-step00000123.safetensors" inside the
# temporary ".<name>.<random>.tmp" of an atomic write.
OUTPUT_NAME_SUFFIX_BYTES = len(".-interrupted-step00000000.safetensors.abcdefgh.tmp")
_WINDOWS_CHARS = set('<>:"|?*')
_WINDOWS_NAMES = re.compile(r"^(CON|PRN|AUX|NUL|COM[0-9¹²³]|LPT[0-9¹²³])(\..*)?$", re.IGNORECASE)
ALLOWED = ("letters, digits, spaces and punctuation other than / \\ < > : \" | ? *, not '.' or '..', "
           "not a name Windows reserves (CON, NUL, COM1, ...), no trailing dot or space")


class PathError(FaceloraError, PermissionError):
    """A name that cannot be a file name, or a path outside the folders facelora may use."""


def check_name(name: str, what: str, suffix_bytes: int = 0) -> str:
    """`name` when it can be one file or folder name on every usual file system (with
    `suffix_bytes` more added to it); otherwise a PathError that says what is allowed."""
    problem = _name_problem(name, NAME_MAX_BYTES - suffix_bytes)
    if problem:
        raise PathError("{what} {name!r} cannot be a file name: {problem}. A name may hold {allowed}.", what=what,
                        name=name, problem=problem, allowed=ALLOWED)
    return name


def _name_problem(name: str, max_bytes: int) -> str | None:
    if not name:
        return "it is empty"
    if "\x00" in name:
        return "it contains a NUL character"
    if "/" in name or "\\" in name:
        return "it contains a folder separator"
    if name in (".", ".."):
        return "it names a folder, not a file"
    if any(ord(c) < 32 for c in name):
        return "it contains a control character"
    bad = sorted({c for c in name if c in _WINDOWS_CHARS})
    if bad:
        return f"it contains {' '.join(bad)}, which Windows refuses"
    if _WINDOWS_NAMES.match(name):
        return "Windows reserves that name"
    if name != name.rstrip(". "):
        return "it ends in a dot or a space, which Windows drops"
    size = len(name.encode("utf-8", errors="surrogatepass"))
    if size > max_bytes:
        return f"it is {size} bytes long, more than the {max_bytes} the file system allows here"
    return None


def check_output_name(name: str) -> str:
    """output_name may be empty (the trigger word is used); otherwise one file name with room
    for the longest file name facelora derives from it."""
    return check_name(name, "output_name", OUTPUT_NAME_SUFFIX_BYTES) if name else name


def check_folder_text(text: str, what: str) -> str:
    """A folder parameter as written in facelora.toml or on the command line: a path relative to
    the project made of valid names (no `..`), or an absolute path (which must then lie inside
    the project: see `inside`)."""
    if "\x00" in text:
        raise PathError("{what} {text!r} contains a NUL character.", what=what, text=text)
    path = PurePath(text)
    if path.is_absolute():
        return text
    if not path.parts:
        raise PathError("{what} is empty: name a folder inside the project, such as 'models'.", what=what)
    for part in path.parts:
        problem = _name_problem(part, NAME_MAX_BYTES)
        if problem:
            raise PathError("{what} {text!r} must be a folder inside the project; its part {part!r} cannot be "
                            "used: {problem}. Each part may hold {allowed}.", what=what, text=text, part=part,
                            problem=problem, allowed=ALLOWED)
    return text


def inside(root: str | Path, user_path: str | Path, what: str = "The path") -> Path:
    """`user_path` resolved (relative to `root`, or absolute; symbolic links followed) when it
    is `root` or lies inside it; otherwise a PathError."""
    text = str(user_path).strip() if user_path is not None else ""
    if not text:
        raise PathError("{what}: no path given.", what=what)
    if "\x00" in text:
        raise PathError("{what} {text!r} contains a NUL character.", what=what, text=text)
    base = Path(root).resolve()
    candidate = (base / text).resolve()  # an absolute `text` replaces base here, then is checked
    if candidate != base and base not in candidate.parents:
        raise PathError(
            "{what} '{text}' lies outside {base}. facelora reads and writes only inside the project "
            "(and the folders the GUI was started with: --workspace, --allow).", what=what, text=text, base=base
        )
    return candidate


@dataclass(frozen=True)
class Roots:
    """The folders a request may name: the workspace (where projects are created and opened,
    relative paths start here) and further folders opened on the command line (photos, base
    models, a LoRA folder to install into)."""

    workspace: Path
    extra: tuple[Path, ...] = field(default_factory=tuple)

    @classmethod
    def of(cls, workspace: str | Path, extra: list[str | Path] | tuple = ()) -> "Roots":
        return cls(Path(workspace).resolve(), tuple(Path(e).resolve() for e in extra))

    @property
    def all(self) -> tuple[Path, ...]:
        return (self.workspace, *self.extra)

    def resolve(self, user_path: str | Path) -> Path:
        """A relative path is taken inside the workspace; an absolute one must lie inside one of
        the roots."""
        text = str(user_path).strip() if user_path is not None else ""
        if text and Path(text).is_absolute():
            for root in self.all:
                try:
                    return inside(root, text)
                except PathError:
                    continue
            listed = ", ".join(str(r) for r in self.all)
            raise PathError(
                "'{text}' lies outside the folders this GUI may use ({listed}). Start it with "
                "--allow FOLDER to open another folder.", text=text, listed=listed
            )
        return inside(self.workspace, text)

    def display(self, path: Path) -> str:
        """How a path is shown (and typed back): relative to the workspace where it can be."""
        try:
            return path.resolve().relative_to(self.workspace).as_posix() or "."
        except ValueError:
            return str(path)
