"""`facelora train`: one process, or several launched through accelerate."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Optional

import typer

from .. import config as cfgmod
from ..locks import held
from ..project import Project
from .app import OVERRIDES, app, console, friendly, overrides_from


_FOLDERS = ("train_data_dir", "output_dir", "logging_dir")


@app.command(context_settings=OVERRIDES)
@friendly
def train(
    ctx: typer.Context,
    project: Annotated[Path, typer.Argument(help="The project to train.")],
    base_model: Annotated[Optional[str], typer.Option(
        "--base-model", help="SD1.5 base model: a .safetensors file, a diffusers folder, or 'tiny' (the test "
                             "model). Default: the project's pretrained_model_name_or_path.")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Go on from the state saved with the last file "
                                                          "(save_state), after an interruption.")] = False,
    allow_pickle: Annotated[bool, typer.Option("--allow-pickle", help="Allow a .ckpt base model (a pickle, "
                                               "read with weights_only=True). Only for files you trust.")] = False,
    num_processes: Annotated[int, typer.Option("--num_processes", "--num-processes", min=1, help=(
        "Train on this many GPUs (processes; on a machine without a GPU, CPU processes): facelora "
        "launches itself through accelerate."))] = 1,
) -> None:
    """Train the LoRA on the project's images, as Kohya's train_network.py does: the parameters
    and the plan first, then a progress bar, and a 'model saved:' line for every file. Any
    training parameter can follow in Kohya's spelling (--network_dim 32 --optimizer_args
    "decouple=True" "weight_decay=0.01"); they apply to this run only and are not saved.
    Ctrl-C saves the LoRA and the state and stops; --resume goes on from there."""
    from ..train.loop import train as train_lora

    p = Project.open(project)
    if num_processes > 1 and "LOCAL_RANK" not in os.environ:  # not yet inside a launched process
        args = [str(p.root)] + (["--base-model", base_model] if base_model else []) + (["--resume"] if resume else [])
        with held(p, "train", f"facelora train --num_processes {num_processes}"):
            status = launch_processes(num_processes, args + (["--allow-pickle"] if allow_pickle else []) + list(ctx.args))
        raise typer.Exit(status)
    updates = overrides_from(ctx)
    if base_model:
        updates["pretrained_model_name_or_path"] = base_model
    for key in _FOLDERS:  # a relative folder given here is inside the project, as in facelora.toml
        if key in updates and not Path(updates[key]).is_absolute():
            updates[key] = str(p.root / updates[key])
    cfg = cfgmod.apply(p.train_config(), updates)
    with held(p, "train", "facelora train"):
        result = train_lora(p, cfg, allow_pickle=allow_pickle, resume=resume, console=console)
    if result.interrupted:
        raise typer.Exit(130)


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
