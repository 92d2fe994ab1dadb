"""`facelora run`: the tutorial end to end, photos in, the best LoRA file and weight out:
init -> prepare -> plan -> train -> grid -> score -> report.html. Each step is the same function
its own command calls; this module only chains them and records how to repeat each one."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from pydantic import BaseModel, ConfigDict, Field

from . import config as cfgmod
from . import parallel
from .errors import FaceloraError
from .dataset import scan_for
from .evaluate.gridplan import DEFAULT_WEIGHTS
from .locks import held
from .plan import adopt, plan_for
from .prepare.options import PrepareOptions
from .project import Project, init_project

MIN_PHOTOS = 10

Say = Callable[[str], None]


class TooFewPhotos(FaceloraError):
    pass


class RunOptions(BaseModel):
    """Every choice `run` makes; the CLI's options are these fields."""

    model_config = ConfigDict(extra="forbid")

    photos: Path = Field(description="folder of photos of one person")
    project: Path = Field(description="project folder (created when it does not exist)")
    trigger: str = Field(description="the word that will call up the person, e.g. 'ohwx'")
    base_model: str = Field(description="SD1.5 .safetensors file or diffusers folder ('tiny' = test model)")
    class_word: str | None = Field(None, description="what the person is: woman, man, person...")
    preset: str | None = Field(None, description="static or dynamic: the tutorial's two learning-rate schemes; face: static + head mask, validation, min-SNR")
    overrides: dict[str, Any] = Field(default_factory=dict, description="training parameters by Kohya's names")
    resolution: int = Field(PrepareOptions.model_fields["resolution"].default,
                            description="size of the prepared crops: 512 or 768")
    max_train_steps: int = Field(4800, ge=1, description="step budget (the tutorial's); repeats are solved from it")
    epochs: int = Field(10, ge=1, description="epochs (5-10 for a face)")
    weights: str = Field(DEFAULT_WEIGHTS, description="LoRA weights of the grid's rows")
    grid_size: str | None = Field(None, description="grid image size, e.g. 512x512; default: the training resolution")
    grid_steps: int = Field(20, ge=1, description="sampling steps of the grid")
    min_photos: int = Field(MIN_PHOTOS, ge=1, description="stop when fewer photos pass preparation")
    allow_pickle: bool = Field(False, description="allow a .ckpt base model")


@dataclass
class RunResult:
    project: Project
    report: Path
    best: dict[str, Any] | None
    verdict: str
    commands: list[str]


def _q(p: Any) -> str:
    return shlex.quote(str(p))


def run(opts: RunOptions, say: Say = print) -> RunResult:
    updates = cfgmod.preset(opts.preset) if opts.preset else {}
    updates.update(opts.overrides)
    updates["pretrained_model_name_or_path"] = opts.base_model
    commands: list[str] = []

    # 1. project
    if Project.is_project(opts.project):
        project = Project.open(opts.project)
        settings = project.settings()
        settings.train = cfgmod.apply(settings.train, updates)
        project.save_settings(settings)
        say(f"Using the existing project {project.root}")
    else:
        train_cfg = cfgmod.apply(cfgmod.TrainConfig(), updates)
        project = init_project(opts.project, opts.trigger, opts.class_word, 1, train_cfg)
        say(f"Created project {project.root}")
    commands.append(f"facelora init {_q(project.root)} --trigger {_q(opts.trigger)}"
                    + (f" --class-word {_q(opts.class_word)}" if opts.class_word else ""))

    # the GUI shows the run as a training job, and refuses prepare or train beside it; prepare and
    # score find their faces on one pool of worker processes, started once
    with held(project, "train", "facelora run"), parallel.shared():
        return _prepare_to_report(opts, project, commands, say)


def _prepare_to_report(opts: RunOptions, project: Project, commands: list[str], say: Say) -> RunResult:
    from .evaluate import GridOptions, ScoreOptions, make_grid, score_project
    from .prepare.pipeline import prepare
    from .report import write_report
    from .train.loop import train

    # 2. prepare
    say(f"Preparing the photos in {opts.photos} ...")
    train_cfg = project.settings().train  # training reads masks (--preset face): prepare writes them
    mask_dir = train_cfg.conditioning_data_dir  # in Kohya's conditioning folder, else as the alpha channel
    head_mask = train_cfg.alpha_mask or bool(mask_dir)
    report = prepare(opts.photos, project, PrepareOptions(resolution=opts.resolution, head_mask=head_mask,
                                                          mask_dir=mask_dir))
    say(f"Prepared: {len(report.accepted)} accepted, {len(report.rejected)} rejected "
        f"(reasons in {project.prepare_report.name}, crops in {project.contact_sheet})")
    commands.append(f"facelora prepare {_q(opts.photos)} {_q(project.root)} --resolution {opts.resolution}"
                    + (" --head-mask" if head_mask else "") + (f" --mask-dir {_q(mask_dir)}" if mask_dir else ""))
    if "resolution" in opts.overrides:  # a training resolution asked for apart from the crops' size
        settings = project.settings()
        settings.train = cfgmod.apply(settings.train, {"resolution": opts.overrides["resolution"]})
        project.save_settings(settings)
    accepted = report.accepted
    if len(accepted) < opts.min_photos:
        raise TooFewPhotos(
            "Only {n} photo(s) passed preparation (see {report}); at least {needed} are needed. With fewer, the "
            "LoRA learns those few pictures (their light, clothes and expression) instead of the face, and it "
            "will not look like the person in new scenes. Add varied, sharp photos of the same person with one "
            "face each.", n=len(accepted), report=str(project.prepare_report), needed=opts.min_photos)

    # 3. plan: solve repeats from the step budget and rename the folder, as the tutorial does
    budget = cfgmod.apply(project.train_config(), {"max_train_epochs": opts.epochs,
                                                   "max_train_steps": opts.max_train_steps})
    plan = plan_for(budget, scan_for(budget), budget=True)
    adopt(project, plan, opts.max_train_steps)
    commands.append(f"facelora plan {_q(project.root)} --epochs {opts.epochs} "
                    f"--max-train-steps {opts.max_train_steps} --yes")

    # 4. train (never into an earlier run's files)
    cfg = project.train_config()
    project.room_for_new_run(cfg.output_dir, cfg.output_name)
    train(project, cfg, allow_pickle=opts.allow_pickle)
    commands.append(f"facelora train {_q(project.root)}")

    # 5. grid and 6. score
    # The probe prompts (eval/probes.toml: likeness, flexibility, bleed) as the third axis; not
    # for the tiny test model, whose noise has no face to probe and whose demo they made ten
    # times longer.
    probes = opts.base_model != "tiny"
    grid_opts = GridOptions(weights=opts.weights, steps=opts.grid_steps, size=opts.grid_size,
                            z="probes" if probes else None)
    say("Drawing the grid of saved files x LoRA weights" + (" x probe prompts ..." if probes else " ..."))
    grid = make_grid(project, grid_opts)
    say(f"Grid: {grid.grid} ({len(grid.cells)} cells in {grid.seconds:.0f} s)")
    commands.append(f"facelora grid {_q(project.root)}{' --probes' if probes else ''} --weights {opts.weights} --steps {opts.grid_steps}"
                    + (f" --size {opts.grid_size}" if opts.grid_size else ""))
    say("Scoring the likeness of every cell ...")
    likeness = score_project(project, ScoreOptions())
    commands.append(f"facelora score {_q(project.root)}")

    notes = []
    if opts.base_model == "tiny":
        notes.append("This run used the tiny test model: its weights are random, so every generated image "
                     "is noise and the likeness scorer is expected to find no faces. Run with "
                     "--base-model path/to/sd15.safetensors for real results.")
    out = write_report(project, plan.to_dict(), commands, notes)
    return RunResult(project, out, likeness.to_dict().get("best"), likeness.verdict, commands)


# The demo's settings for the tiny test model: small enough to run end to end on a CPU in a few
# minutes. With a real base model the demo uses the tutorial's settings instead.
TINY_DEMO = dict(
    overrides={"resolution": "128", "network_dim": 8, "network_alpha": 4, "optimizer_type": "AdamW",
               "lr_scheduler": "cosine_with_restarts", "unet_lr": 1e-3, "text_encoder_lr": 5e-4},
    max_train_steps=144, epochs=3, weights="0,0.5,1.0", grid_size="128x128", grid_steps=8,
)


def demo(folder: Path, base_model: str = "tiny", say: Say = print) -> RunResult:
    """The embedded default: photos made from scikit-image's astronaut, trained end to end."""
    from .demo_photos import write_demo_photos

    photos = folder / "photos"
    write_demo_photos(photos)
    say(f"Demo photos: {len(list(photos.iterdir()))} variants of scikit-image's astronaut (public domain) in {photos}")
    extra = TINY_DEMO if base_model == "tiny" else {}
    if base_model == "tiny":
        say("The demo uses the tiny test model. Its weights are random, so its images are noise and the "
            "likeness scorer is expected to find no faces; every step still runs for real. Give "
            "--base-model path/to/sd15.safetensors to do real work.")
    opts = RunOptions(photos=photos, project=folder / "project", trigger="ohwx", class_word="woman",
                      base_model=base_model, **extra)
    return run(opts, say)
