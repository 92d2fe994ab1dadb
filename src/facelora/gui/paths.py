"""Which paths a browser may name. A request carries paths as text (a project folder, a photos
folder, a base model); each is resolved here against the folders the person who started the GUI
opened, and refused when it lies outside them. Symbolic links are followed before the check, so a
link inside a project cannot lead out of it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import FaceloraError


class PathError(FaceloraError, PermissionError):
    """A path that lies outside the folders this GUI was allowed to use."""


def safe_path(base: str | Path, user_path: str | Path) -> Path:
    """`user_path` resolved (relative to `base`, or absolute) when it lies inside `base` (or is
    `base` itself); otherwise a PathError. `../`, absolute paths elsewhere and links out are
    refused."""
    text = str(user_path).strip() if user_path is not None else ""
    if not text:
        raise PathError("No path given.")
    if "\x00" in text:
        raise PathError("A path cannot contain a NUL character.")
    root = Path(base).resolve()
    candidate = (root / text).resolve()  # an absolute `text` replaces root here, then is checked
    if candidate != root and root not in candidate.parents:
        raise PathError(
            f"'{text}' lies outside {root}. The GUI only reads and writes inside the folders it was "
            f"started with; start it with --workspace or --allow to open another folder."
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
                    return safe_path(root, text)
                except PathError:
                    continue
            listed = ", ".join(str(r) for r in self.all)
            raise PathError(
                f"'{text}' lies outside the folders this GUI may use ({listed}). Start it with "
                f"--allow FOLDER to open another folder."
            )
        return safe_path(self.workspace, text)

    def display(self, path: Path) -> str:
        """How a path is shown (and typed back): relative to the workspace where it can be."""
        try:
            return path.resolve().relative_to(self.workspace).as_posix() or "."
        except ValueError:
            return str(path)
