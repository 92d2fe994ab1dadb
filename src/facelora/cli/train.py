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
from .app import (OVERRIDES, OptionsFile, app, console, default_of, friendly, option_of, options_from_file, options_of,
                  overrides_from)


def _train(name: str, *flags: str) -> Any:
    return option_of(TrainOptions, name, *flags)


@app.command(context_settings=OVERRIDES)
@friendly
def train(
    ctx: typer.Context,
    project: Annotated[Path, typer.Argument(help="The project to train.")],
    base_model: Annotated[Optional[str], _train("base_model", "--base-model")] = None,
    resume: Annotated[bool, _train("resume", "--resume")] = False,
    allow_pickle: Annotated[bool, _train("allow_pickle", "--allow-pickle")] = False,
    num_processes: Annotated[int, _train("num_processes", "--num_processes", "--num-processes")] = (
        default_of(TrainOptions, "num_processes")),
    options_file: OptionsFile = None,
) -> None:
    """Train the LoRA on the project's images, as Kohya's train_network.py does: the parameters
    and the plan first, then a progress bar, and a 'model saved:' line for every file. Any
    training parameter can follow in Kohya's spelling (--network_dim 32 --optimizer_args
    "decouple=True" "weight_decay=0.01"); they apply to this run only and are not saved.
    Ctrl-C saves the LoRA and the state and stops; --resume goes on from there."""
    from ..train.loop import train as train_lora

    p = Project.open(project)
    options = (options_from_file(options_file, TrainOptions) if options_file is not None else
               options_of(TrainOptions, base_model=base_model, resume=resume, allow_pickle=allow_pickle,
                          num_processes=num_processes))
    if options.num_processes > 1 and "LOCAL_RANK" not in os.environ:  # not yet inside a launched process
        args = [str(p.root), *(["--options-file", str(options_file)] if options_file else _as_args(options))]
        with held(p, "train", f"facelora train --num_processes {options.num_processes}"):
            status = launch_processes(options.num_processes, args + list(ctx.args))
        raise typer.Exit(status)
    updates = {**options.overrides, **overrides_from(ctx)}
    if options.base_model:
        updates["pretrained_model_name_or_path"] = options.base_model
    for key in cfgmod.PROJECT_FOLDERS:  # a folder given here is inside the project, as in facelora.toml
        if key in updates:
            updates[key] = str(p.folder(updates[key], key))
    cfg = cfgmod.apply(p.train_config(), updates)
    with held(p, "train", "facelora train"):
        result = train_lora(p, cfg, allow_pickle=options.allow_pickle, resume=options.resume, console=console)
    if result.interrupted:
        raise typer.Exit(130)


def _as_args(options: TrainOptions) -> list[str]:
    """The options as `facelora train` takes them, for the launched processes."""
    return ((["--base-model", options.base_model] if options.base_model else []) + (["--resume"] if options.resume else [])
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
