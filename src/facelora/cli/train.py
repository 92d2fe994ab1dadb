"""`facelora train`: one process, or several launched through accelerate."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from .. import config as cfgmod
from ..locks import held
from ..project import Project
from ..train.options import TrainOptions
from ..model.family import TINY
from ..run import TINY_DEMO
from .plan import warn_outside_tutorial
from .app import (OVERRIDES, OptionsFile, app, console, default_of, friendly, note, option_of, options_from_file,
                  options_of, overrides_from)

# The tiny test model's training size unless asked otherwise: the demo's.
TINY_RESOLUTION = TINY_DEMO["overrides"]["resolution"]
DEFAULT_RESOLUTION = cfgmod.TrainConfig.model_fields["resolution"].default


def _train(name: str, *flags: str) -> Any:
    return option_of(TrainOptions, name, *flags)


@app.command(context_settings=OVERRIDES)
@friendly
def train(
    ctx: typer.Context,
    project: Annotated[Path, typer.Argument(help="The project to train (a folder laid out the Kohya way is adopted).")],
    base_model: Annotated[Optional[str], _train("base_model", "--base-model")] = None,
    preset: Annotated[Optional[str], _train("preset")] = None,
    save: Annotated[bool, _train("save", "--save")] = False,
    overwrite: Annotated[bool, _train("overwrite", "--overwrite")] = False,
    resume: Annotated[bool, _train("resume", "--resume")] = False,
    allow_pickle: Annotated[bool, _train("allow_pickle", "--allow-pickle")] = False,
    num_processes: Annotated[int, _train("num_processes", "--num_processes", "--num-processes")] = (
        default_of(TrainOptions, "num_processes")),
    options_file: OptionsFile = None,
) -> None:
    """Train the LoRA on the project's images, as Kohya's train_network.py does: the parameters
    and the plan first, then a progress bar, and a 'model saved:' line for every file. Any
    training parameter can follow in Kohya's spelling (--network_dim 32 --optimizer_args
    "decouple=True" "weight_decay=0.01"); they apply to this run only unless --save. A new run
    refuses while an earlier run's files of the same output_name are in output_dir (--overwrite,
    or another --output_name). Ctrl-C saves the LoRA and the state and stops; --resume goes on
    from there. `facelora params` lists every parameter."""
    from ..train.loop import train as train_lora

    p = _open_or_adopt(project)
    options = (options_from_file(options_file, TrainOptions) if options_file is not None else
               options_of(TrainOptions, base_model=base_model, preset=preset, save=save, overwrite=overwrite,
                          resume=resume, allow_pickle=allow_pickle, num_processes=num_processes))
    if options.num_processes > 1 and "LOCAL_RANK" not in os.environ:  # not yet inside a launched process
        if options.save:  # here, once: the launched processes get the same parameters without --save
            run_config(p, options, overrides_from(ctx))
        args = [str(p.root), *(["--options-file", str(options_file)] if options_file else _as_args(options))]
        with held(p, "train", f"facelora train --num_processes {options.num_processes}"):
            status = launch_processes(options.num_processes, args + list(ctx.args))
        raise typer.Exit(status)
    cfg = run_config(p, options, overrides_from(ctx))
    if not options.resume:
        _one_run(p, cfg, options.overwrite)
    if "LOCAL_RANK" not in os.environ or os.environ["LOCAL_RANK"] == "0":
        warn_outside_tutorial(cfg)
    with held(p, "train", "facelora train"):
        result = train_lora(p, cfg, allow_pickle=options.allow_pickle, resume=options.resume, console=console)
    if result.interrupted:
        raise typer.Exit(130)


def _open_or_adopt(root: Path) -> Project:
    """The project; a folder laid out the Kohya way without facelora.toml becomes one (and says so)."""
    from ..kohya_layout import adopt_kohya_layout, kohya_layout

    if not Project.is_project(root) and kohya_layout(root) is not None:
        p = adopt_kohya_layout(root)
        note(f"{root} is laid out the Kohya way: adopted it as a facelora project (wrote {p.config_path.name}, "
             f"trigger '{p.settings().trigger}'; nothing else was changed).")
        return p
    return Project.open(root)


def run_config(p: Project, options: TrainOptions, command_line: dict[str, Any]) -> cfgmod.TrainConfig:
    """The run's parameters: the project's, then the preset, the base model and the parameters of
    the command line (saved into facelora.toml with --save); the tiny model at its small size."""
    updates = {**(cfgmod.preset(options.preset) if options.preset else {}), **options.overrides, **command_line}
    if options.base_model:
        updates["pretrained_model_name_or_path"] = options.base_model
    if options.save and updates:
        settings = p.settings()
        settings.train = cfgmod.apply(settings.train, updates)
        p.save_settings(settings)
        console.print(f"Saved into {p.config_path}: {', '.join(sorted(updates))}")
    for key in cfgmod.PROJECT_FOLDERS:  # a folder given here is inside the project, as in facelora.toml
        if key in updates:
            updates[key] = str(p.folder(updates[key], key))
    cfg = cfgmod.apply(p.train_config(), updates)
    if "resolution" not in updates and at_tiny_size(cfg.pretrained_model_name_or_path, cfg.resolution):
        cfg = cfgmod.apply(cfg, {"resolution": TINY_RESOLUTION})
        note(f"The tiny test model trains at {TINY_RESOLUTION} px (its images are noise at any size, and "
             f"{DEFAULT_RESOLUTION} px takes many seconds a step); give --resolution {DEFAULT_RESOLUTION} to train "
             f"at {DEFAULT_RESOLUTION}.")
    return cfg


def at_tiny_size(base_model: str | None, resolution: str) -> bool:
    """Whether the tiny test model should run at its small size: the project asks for no other
    than the default resolution (a step at 512 px takes many seconds, for noise)."""
    return base_model == TINY and resolution == DEFAULT_RESOLUTION


def _one_run(p: Project, cfg: cfgmod.TrainConfig, overwrite: bool) -> None:
    """Refuse to mix with an earlier run of output_name; --overwrite deletes its files and its
    training states (a later --resume must never go on with the run that was replaced)."""
    import shutil

    from ..train.resume import states_of

    deleted = p.room_for_new_run(cfg.output_dir, cfg.output_name, overwrite)
    states = states_of(p.state_dir, cfg.output_name) if overwrite else []
    for folder in states:
        shutil.rmtree(folder, ignore_errors=True)
    if deleted or states:
        note(f"--overwrite: deleted the earlier run's {len(deleted)} file(s): {', '.join(f.name for f in deleted)}"
             f"{f' and its {len(states)} training state(s)' if states else ''}.")


def _as_args(options: TrainOptions) -> list[str]:
    """The options as `facelora train` takes them, for the launched processes."""
    return ((["--base-model", options.base_model] if options.base_model else []) + (["--resume"] if options.resume else [])
            + (["--preset", options.preset] if options.preset else []) + (["--overwrite"] if options.overwrite else [])
            + (["--allow-pickle"] if options.allow_pickle else []))


def launch_processes(n: int, train_args: list[str]) -> int:
    """Run `facelora train` in n processes through accelerate (torch.distributed: NCCL on GPUs,
    gloo on the CPU) and return its exit status. Ctrl-C and SIGTERM are passed on once, so the
    processes save and stop together; a second Ctrl-C stops them at once."""
    import signal
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(n),
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
           "-m", "facelora", "train", *train_args]
    console.print("Launching " + " ".join(cmd[1:3] + cmd[4:]))
    proc = subprocess.Popen(cmd, start_new_session=True)  # signals reach it from here only, once each
    forward = lambda signum, frame: proc.send_signal(signum)  # noqa: E731
    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return proc.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
