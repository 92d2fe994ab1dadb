"""The GUI's own settings, in the workspace's facelora-gui.toml: the folders added from the page
(beside --allow's) and the interface language. Written atomically; a broken file is refused by
name rather than silently replaced."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import tomli_w

from ..errors import FaceloraError
from ..fileio import atomic_write_text

SETTINGS_FILE = "facelora-gui.toml"


@dataclass
class GuiSettings:
    allow: list[str] = field(default_factory=list)  # absolute folders added from the page
    language: str = "en"

    @classmethod
    def read(cls, folder: Path) -> "GuiSettings":
        path = Path(folder) / SETTINGS_FILE
        if not path.is_file():
            return cls()
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError) as e:
            raise FaceloraError("{path} cannot be read ({error}); fix or delete it.", path=path, error=e) from None
        allow = raw.get("allow", [])
        if not isinstance(allow, list) or not all(isinstance(a, str) for a in allow):
            raise FaceloraError("{path}: 'allow' must be a list of folder paths.", path=path)
        return cls([a for a in allow], str(raw.get("language", "en")))

    def write(self, folder: Path) -> Path:
        path = Path(folder) / SETTINGS_FILE
        atomic_write_text(path, "# facelora gui: folders added from the page, and the language\n"
                          + tomli_w.dumps({"allow": self.allow, "language": self.language}))
        return path
