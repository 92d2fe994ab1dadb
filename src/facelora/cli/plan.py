"""`facelora plan`: repeats from a step budget, and the whole schedule."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape

from .. import config as cfgmod
from ..dataset import scan_for
from ..plan import Plan, adopt, plan_for, plan_numbers, trained_outside_tutorial, tutorial_warnings
from ..project import Project
from ..tables import plan_table
from .app import AsJson, app, console, friendly, note


# What `plan` without a project calls the saved files: NAME-000001.safetensors, ..., NAME.safetensors.
NO_PROJECT_NAME = "NAME"


def print_plan(plan: Plan, as_json: bool, cfg: Optional[cfgmod.TrainConfig] = None, vram: Optional[float] = None) -> None:
    memory = gpu_memory(cfg, vram) if cfg is not None else None
    if as_json:
        print(json.dumps({**plan.to_dict(), **({"vram": memory} if memory else {})}, ensure_ascii=False))
        return
    console.print(plan_table(plan))
    for n in plan.notes + tutorial_warnings(**plan_numbers(plan)):
        note(n)
    if cfg is not None:  # time and memory, from measured step figures (facelora.estimate)
        from ..estimate import estimate

        for line in estimate(cfg, plan.total_steps).lines():
            console.print(escape(line))
        console.print(escape("\n".join(memory["lines"])) if memory else
                      "GPU memory: no CUDA GPU here; --vram GB checks these settings against a card of that size.")


def warn_outside_tutorial(cfg: cfgmod.TrainConfig) -> None:
    """The tutorial's ranges (photos, repeats, epochs, total steps) checked on the plan these
    parameters train, as prepare and train warn before anything runs."""
    for m in trained_outside_tutorial(cfg):
        note(m.text)


def gpu_memory(cfg: cfgmod.TrainConfig, vram: Optional[float]) -> Optional[dict]:
    """facelora.vram's plan for a card of `vram` GiB (default: this machine's CUDA card), as JSON
    holds it; None without either."""
    from ..vram import GIB, detected_vram_gib, vram_plan

    card = vram if vram is not None else detected_vram_gib()
    if card is None:
        return None
    p = vram_plan(cfg, card)
    return {"vram_gib": round(card, 2), "fits": p.fits, "total_gib": round(p.total_bytes / GIB, 2),
            "parts_gib": {k: round(v / GIB, 3) for k, v in p.parts.items()}, "suggestion": p.suggestion, "lines": p.lines}


@app.command()
@friendly
def plan(
    project: Annotated[Optional[Path], typer.Argument(help="A project: plan from its images and settings.")] = None,
    images: Annotated[Optional[int], typer.Option(min=1, help="Number of training images.")] = None,
    epochs: Annotated[Optional[int], typer.Option(min=1, help="Epochs (5-10 for a face).")] = None,
    max_train_steps: Annotated[Optional[int], typer.Option("--max-train-steps", "--max_train_steps", min=1,
                                                           help="Step budget (3000-5000 for a face).")] = None,
    batch: Annotated[int, typer.Option(min=1, help="Batch size.")] = 1,
    num_processes: Annotated[int, typer.Option("--num-processes", "--num_processes", min=1, help="GPUs / processes.")] = 1,
    resolution: Annotated[Optional[str], typer.Option(help="Training resolution, 'W,H' or one number (default: the "
                                                             "project's, else 512).")] = None,
    vram: Annotated[Optional[float], typer.Option(min=0.5, help="GPU memory in GB to plan for (default: this "
                                                                "machine's CUDA card).")] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Rename image/<old>_<trigger> to the planned repeats.")] = False,
    as_json: AsJson = False,
) -> None:
    """Work out repeats from a step budget (repeats = steps x batch / (images x epochs)) and show
    the whole schedule: steps per epoch, total steps, the files that will be saved; and whether
    the settings fit a GPU's memory (--vram, or the card found), with the change that makes them fit."""
    res = {"resolution": resolution} if resolution else {}
    if project is None:
        if not (images and epochs and max_train_steps):
            raise cfgmod.ConfigError("Without a project, give --images, --epochs and --max-train-steps.")
        # the files' names stand for any project's (its output_name is its trigger word)
        cfg = cfgmod.TrainConfig(train_batch_size=batch, max_train_epochs=epochs, max_train_steps=max_train_steps,
                                 output_name=NO_PROJECT_NAME, **res)
        print_plan(plan_for(cfg, images, num_processes, budget=True), as_json, cfg, vram)
        return
    p = Project.open(project)
    cfg = cfgmod.apply(p.train_config(), res)
    dataset = scan_for(cfg)
    current = plan_for(cfg, dataset, num_processes)
    if not (epochs or max_train_steps):
        print_plan(current, as_json, cfg, vram)
        return
    e = epochs or cfg.max_train_epochs or current.epochs
    steps = max_train_steps or cfg.max_train_steps
    budget = cfgmod.apply(cfg, {"max_train_epochs": e, "max_train_steps": steps})
    new = plan_for(budget, dataset, num_processes, budget=True)
    print_plan(new, as_json, budget, vram)
    if new.repeats != current.repeats or e != cfg.max_train_epochs:
        if yes:
            folder = adopt(p, new, steps)
            if not as_json:
                console.print(f"Renamed to {folder.name}; epochs {e} saved in {p.config_path.name}.")
        elif not as_json:
            note(f"The project uses {current.repeats} repeats; run again with --yes to rename the folder to "
                 f"{new.repeats}_... and save epochs={e}.")
