"""`facelora reg generate`: class (regularisation) images made with the base model itself, for a
user who has no class-image set. DreamBooth's prior preservation wants images of the class as the
untouched model draws it ("photo of a woman"), so that training on one woman does not turn every
woman into her; Kohya reads them from reg_data_dir's `<repeats>_<class>` folders.

The images go to PROJECT/reg/1_<class>/NNNN.png with their prompt as the caption; image i uses
prompt i (cycled through varied framings and light) and seed `seed + i`, so the set is
reproducible and a second call adds to it rather than redrawing it. The project's reg_data_dir
is set to the folder's parent."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from . import config as cfgmod
from .errors import FaceloraError
from .fileio import atomic_write_bytes, atomic_write_text
from .project import Project

# Varied framings and light, as a person's photos vary, so the prior is the class in general.
PROMPTS = (
    "photo of a {cls}",
    "portrait photo of a {cls}, natural light",
    "close-up photo of a {cls}'s face",
    "photo of a {cls}, head and shoulders, outdoors",
    "photo of a {cls} smiling",
    "photo of a {cls}, studio lighting, plain background",
    "photo of a {cls} looking to the side",
    "candid photo of a {cls} indoors",
)
NEGATIVE = "lowres, blurry, deformed, watermark, text"


class ClassImagesError(FaceloraError):
    """Class images cannot be made (no class word, no base model)."""


@dataclass(frozen=True)
class ClassImageOptions:
    n: int = 100  # images in the set (those already there count)
    steps: int = 20
    cfg: float = 7.0
    sampler: str = "euler_a"
    seed: int = 1000
    base_model: str | None = None  # default: the project's pretrained_model_name_or_path
    device: str = "auto"
    allow_pickle: bool = False


def class_folder(project: Project, class_word: str) -> Path:
    return project.reg_dir / f"1_{class_word}"


def generate_class_images(project: Project, options: ClassImageOptions = ClassImageOptions(),
                          progress: Callable[[int, int], None] | None = None) -> list[Path]:
    """Render the images the set still lacks; returns every image of the set, in order."""
    from .model.sampling import embed, load_pipeline, render

    settings = project.settings()
    if not settings.class_word:
        raise ClassImagesError("{file} has no class_word (woman, man, person): class images are photos of that "
                               "class. Set it in [project] and run again.", file=str(project.config_path))
    cfg = project.train_config()
    base = options.base_model or cfg.pretrained_model_name_or_path
    if not base:
        raise ClassImagesError("No base model: pass --base-model PATH or set pretrained_model_name_or_path.")
    folder = class_folder(project, settings.class_word)
    paths = [folder / f"{i:04d}.png" for i in range(options.n)]
    todo = [i for i, p in enumerate(paths) if not p.is_file()]
    if todo:
        model, pipe = load_pipeline(base, options.sampler, options.device, options.allow_pickle)
        device, (width, height) = pipe.device, cfg.resolution_wh
        negative = embed(model, NEGATIVE, cfg.clip_skip, device)
        for k, i in enumerate(todo):
            prompt = PROMPTS[i % len(PROMPTS)].format(cls=settings.class_word)
            image = render(pipe, embed(model, prompt, cfg.clip_skip, device), negative, options.seed + i,
                           options.steps, options.cfg, width, height)
            buf = io.BytesIO()
            image.save(buf, "PNG")
            atomic_write_bytes(paths[i], buf.getvalue())
            atomic_write_text(paths[i].with_suffix(cfg.caption_extension), prompt + "\n")
            if progress:
                progress(k + 1, len(todo))
    if settings.train.reg_data_dir is None:
        settings.train = cfgmod.apply(settings.train, {"reg_data_dir": project.reg_dir.name})
        project.save_settings(settings)
    return paths
