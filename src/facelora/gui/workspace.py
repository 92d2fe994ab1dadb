"""The folders one GUI serves: projects are created and opened inside the workspace, and every
path a page sends is checked here before anything reads or writes it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..config import TrainConfig
from ..project import CONFIG_FILE, Project, ProjectError, init_project
from ..paths import PathError, Roots, check_folder_text, inside

MODEL_SUFFIXES = (".safetensors", ".ckpt")


@dataclass(frozen=True)
class Workspace:
    roots: Roots

    @classmethod
    def of(cls, workspace: str | Path, allow: list[str | Path] | tuple = ()) -> "Workspace":
        return cls(Roots.of(workspace, allow))

    @property
    def root(self) -> Path:
        return self.roots.workspace

    def open(self, name: str) -> Project:
        """The project a page names (relative to the workspace, or an absolute path inside a root)."""
        if not str(name or "").strip():
            raise ProjectError("No project is open: create or open one on the Project page.")
        return Project.open(self.roots.resolve(name))

    def create(self, name: str, trigger: str, class_word: str | None, train: TrainConfig | None = None) -> Project:
        """A new project, always inside the workspace (which must not be a project itself: a GUI
        started on one project creates none beside it)."""
        if Project.is_project(self.root):
            raise ProjectError(f"This page serves the project {self.root} only, so it creates no other. Start "
                               f"it with --workspace FOLDER to create projects in FOLDER.")
        folder = inside(self.root, name, "The project folder")
        check_folder_text(str(name).strip(), "The project folder")
        return init_project(folder, (trigger or "").strip(), (class_word or "").strip() or None, train=train)

    def name(self, project: Project) -> str:
        return self.roots.display(project.root)

    def projects(self) -> list[str]:
        """Projects directly inside the workspace (and the workspace itself, if it is one)."""
        found = [self.root] if (self.root / CONFIG_FILE).is_file() else []
        try:
            found += sorted(d for d in self.root.iterdir() if (d / CONFIG_FILE).is_file())
        except OSError:
            pass
        return [self.roots.display(d) for d in found]

    def base_models(self) -> list[str]:
        """Checkpoints and diffusers folders one level inside the roots, for the base-model list."""
        out: list[str] = []
        for root in self.roots.all:
            try:
                entries = sorted(root.iterdir())
            except OSError:
                continue
            for p in entries:
                if p.is_file() and p.suffix.lower() in MODEL_SUFFIXES:
                    out.append(str(p))
                elif p.is_dir() and (p / "model_index.json").is_file():
                    out.append(str(p))
        return out

    def outside_path(self, value: str) -> str:
        """A file a parameter names outside the project (base model, LoRA to start from, prompts):
        checked against the roots and stored absolute, since training runs in the project."""
        return str(self.roots.resolve(value))

    def inside_project(self, project: Project, value: str) -> Path:
        return inside(project.root, value)


__all__ = ["Workspace", "PathError"]
