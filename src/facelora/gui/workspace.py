"""The folders one GUI serves: projects are created and opened inside the workspace, and every
path a page sends is checked here before anything reads or writes it. Folders added from the
Project page join the roots (and gradio's allowed_paths) at once and are kept in the workspace's
facelora-gui.toml for the next start."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..config import TrainConfig
from ..project import CONFIG_FILE, Project, ProjectError, init_project
from ..paths import PathError, Roots, check_folder_text, inside
from .settings import GuiSettings

MODEL_SUFFIXES = (".safetensors", ".ckpt")
RULE = ("Nothing outside these folders is read or written, symbolic links included (a link is followed "
        "before the check).")


@dataclass
class Workspace:
    roots: Roots
    served: list[str] = field(default_factory=list)  # gradio's allowed_paths: the same list, kept in step
    can_add: bool = True  # folders may be added from the page (not while serving a network)

    def __post_init__(self) -> None:
        self.served[:] = [str(r) for r in self.roots.all]

    @classmethod
    def of(cls, workspace: str | Path, allow: list[str | Path] | tuple = (), can_add: bool = True) -> "Workspace":
        return cls(Roots.of(workspace, allow), can_add=can_add)

    @property
    def root(self) -> Path:
        return self.roots.workspace

    def resolve(self, user_path: str | Path) -> Path:
        """A path a page sent, checked against the roots; a refusal names the folder to add."""
        try:
            return self.roots.resolve(user_path)
        except PathError:
            text = str(user_path).strip()
            if not Path(text).is_absolute():
                raise
            folder = Path(text)
            folder = folder if folder.is_dir() else folder.parent
            listed = ", ".join(str(r) for r in self.roots.all)
            raise PathError("'{text}' lies outside the folders this GUI may use ({listed}). To use it, add "
                            "{folder} under \"Folders this GUI may use\" on the Project page (or start the "
                            "GUI with --allow {folder}).", text=text, listed=listed, folder=folder) from None

    def add_root(self, text: str) -> Path:
        """Let the GUI read and write inside another folder, now and at the next start."""
        if not self.can_add:
            raise PathError("This GUI serves the network (--listen): folders can only be added when it "
                            "starts, with --allow FOLDER.")
        raw = Path(str(text or "").strip()).expanduser()
        if not str(text or "").strip() or not raw.is_absolute():
            raise PathError("Give the folder's full path, e.g. /home/me/photos or C:\\Users\\me\\photos.")
        folder = raw.resolve()
        if not folder.is_dir():
            raise PathError("{folder} is not a folder.", folder=folder)
        if folder == Path(folder.anchor):
            raise PathError("{folder} is a whole drive; add the folder you need inside it.", folder=folder)
        if any(r == folder or r in folder.parents for r in self.roots.all):
            raise PathError("{folder} is already inside a folder this GUI may use.", folder=folder)
        settings = GuiSettings.read(self.root)
        settings.allow = [*settings.allow, str(folder)]
        settings.write(self.root)
        self.roots = Roots(self.roots.workspace, (*self.roots.extra, folder))
        self.served.append(str(folder))
        return folder

    def open(self, name: str) -> Project:
        """The project a page names (relative to the workspace, or an absolute path inside a root)."""
        if not str(name or "").strip():
            raise ProjectError("No project is open: create or open one on the Project page.")
        return Project.open(self.resolve(name))

    def create(self, name: str, trigger: str, class_word: str | None, train: TrainConfig | None = None) -> Project:
        """A new project, always inside the workspace (which must not be a project itself: a GUI
        started on one project creates none beside it)."""
        if Project.is_project(self.root):
            raise ProjectError("This page serves the project {root} only, so it creates no other. Start "
                               "it with --workspace FOLDER to create projects in FOLDER.", root=self.root)
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
        return str(self.resolve(value))

    def inside_project(self, project: Project, value: str) -> Path:
        return inside(project.root, value)


__all__ = ["Workspace", "PathError", "RULE", "MODEL_SUFFIXES"]
