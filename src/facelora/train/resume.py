"""The training state that `facelora train --resume` continues from, saved with every LoRA file,
on Ctrl-C and on SIGTERM, under PROJECT/log/state/:

    log/state/step00000012-epoch000003/
      network.safetensors     the LoRA's weights in fp32 (not the save_precision copy)
      optimizer.safetensors   the optimizer's tensors (Adam's moments, step counts, ...)
      optimizer.json          the rest of the optimizer's state_dict, tensors as references
      scheduler.json          the learning-rate scheduler's state_dict
      scaler.json             fp16's GradScaler state (fp16 runs only)
      ema.safetensors         ema_decay's averaged weights in fp32, and ema.json: its decay and update count
      rng.safetensors         torch's CPU (and CUDA) random states
      rng.json                Python's and NumPy's random states
      loop.json               facelora.train.state.LoopState: step, epoch, place in the epoch, losses
      config.json             the TrainConfig the run used
      manifest.json           written last: the format, the position, and every file's SHA-256

Nothing here is a pickle: tensors are safetensors, everything else JSON, so loading a state runs
no code. A state is written into a hidden temporary folder and renamed into place only when
complete (manifest included), so a crash or a full disk mid-save leaves the previous state as it
was; a folder whose manifest is missing or whose files do not match their hashes is passed over
with a note. The newest KEEP states are kept.

The data order, noise and timesteps are pure functions of (seed, epoch, step) (data.py and
state.py), so the loop's position is all a resumed run needs to draw what an unbroken run would
have drawn; the random-number states are kept as well for anything that uses the global
generators.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from ..config import TrainConfig
from ..fileio import clear_write_errors, usual_permissions
from ..messages import Message, said
from .ema import WeightsEMA
from .plain_state import ResumeError, from_json, rng_states, set_rng_states, to_json
from .state import LoopState

FORMAT = 1
KEEP = 2
MANIFEST = "manifest.json"
_NAME = re.compile(r"^step(\d{8})-epoch(\d{6})$")
TEMP_PREFIX = ".incomplete-"

# Fields whose change makes a saved state meaningless for this run: the network's shape and the
# optimizer whose moments are saved. Others (epochs, rates, ...) may change on resume, with a note.
MUST_MATCH = ("network_module", "network_args", "network_dim", "network_alpha", "network_train_unet_only", "network_train_text_encoder_only",
              "optimizer_type", "optimizer_args", "ema_decay")


def folder_name(loop: LoopState) -> str:
    return f"step{loop.global_step:08d}-epoch{loop.epoch:06d}"


# --- saving ------------------------------------------------------------------------------------


def save_state(state_dir: Path, network: torch.nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any,
               loop: LoopState, cfg: TrainConfig, *, scaler: Any = None, ema: WeightsEMA | None = None,
               finished: bool = False, num_processes: int = 1, keep: int = KEEP) -> Path:
    """Write the whole training state as one new folder in `state_dir` (atomically: a temporary
    folder renamed into place once complete) and drop all but the newest `keep` states.
    `finished`: the run's last epoch is done (a resume then has nothing left to do)."""
    state_dir = Path(state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    remove_incomplete(state_dir)
    final = state_dir / folder_name(loop)
    tmp = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX + final.name + ".", dir=state_dir))
    try:
        with clear_write_errors(final):
            files = write_parts(tmp, network, optimizer, scheduler, scaler, loop, cfg, ema)
            write_manifest(tmp, {
                "format": FORMAT, "global_step": loop.global_step, "epoch": loop.epoch,
                "step_in_epoch": loop.step_in_epoch, "finished": finished, "num_processes": num_processes,
                "saved_at": time.time(), "files": files,
            })
            _fsync_dir(tmp)
            usual_permissions(tmp)
            if final.exists():  # the same position saved twice (a step save, then Ctrl-C): replace it
                old = state_dir / f"{TEMP_PREFIX}old-{final.name}"
                shutil.rmtree(old, ignore_errors=True)
                final.rename(old)
                tmp.rename(final)
                shutil.rmtree(old, ignore_errors=True)
            else:
                tmp.rename(final)
            _fsync_dir(state_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for stale in complete_states(state_dir)[keep:]:
        shutil.rmtree(stale, ignore_errors=True)
    return final


def write_parts(folder: Path, network: torch.nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any,
                scaler: Any, loop: LoopState, cfg: TrainConfig, ema: WeightsEMA | None = None) -> dict[str, dict[str, Any]]:
    """Every file of a state but its manifest, into `folder`; returns their sizes and hashes."""
    files: dict[str, dict[str, Any]] = {}

    def put_tensors(name: str, tensors: dict[str, torch.Tensor]) -> None:
        save_file({k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}, str(folder / name))
        files[name] = _fsync_and_hash(folder / name)

    def put_json(name: str, data: Any) -> None:
        (folder / name).write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
        files[name] = _fsync_and_hash(folder / name)

    put_tensors("network.safetensors", network.state_dict())
    opt_tensors: dict[str, torch.Tensor] = {}
    put_json("optimizer.json", to_json(optimizer.state_dict(), opt_tensors, "optimizer"))
    put_tensors("optimizer.safetensors", opt_tensors)
    sched_tensors: dict[str, torch.Tensor] = {}
    put_json("scheduler.json", to_json(scheduler.state_dict(), sched_tensors, "scheduler"))
    if sched_tensors:
        put_tensors("scheduler.safetensors", sched_tensors)
    if scaler is not None:  # fp16's GradScaler: its scale and growth tracker
        put_json("scaler.json", to_json(scaler.state_dict(), {}, "scaler"))
    if ema is not None:  # the averaged weights go on where they were, not from the resumed weights
        ema_tensors: dict[str, torch.Tensor] = {}
        put_json("ema.json", to_json(ema.state_dict(), ema_tensors, "ema"))
        put_tensors("ema.safetensors", ema_tensors)
    rng_tensors, rng_rest = rng_states()
    put_tensors("rng.safetensors", rng_tensors)
    put_json("rng.json", rng_rest)
    put_json("loop.json", asdict(loop))
    put_json("config.json", cfg.model_dump(mode="json"))
    return files


def write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    """The manifest, written last: a state folder without one is a save that never finished."""
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    _fsync_and_hash(folder / MANIFEST)


def remove_incomplete(state_dir: Path) -> list[Path]:
    """Delete the temporary folders of saves that never finished (a crash, a kill, a full disk)."""
    gone = []
    for p in Path(state_dir).glob(TEMP_PREFIX + "*"):
        shutil.rmtree(p, ignore_errors=True)
        gone.append(p)
    return gone


def _fsync_and_hash(path: Path) -> dict[str, Any]:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
        os.fsync(f.fileno())
    return {"sha256": h.hexdigest(), "bytes": path.stat().st_size}


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --- finding and loading -----------------------------------------------------------------------


def complete_states(state_dir: Path) -> list[Path]:
    """State folders with a manifest, newest first: by the time their manifest says they were
    saved, then by position (not by file time). A new run's states at lower steps than an earlier
    run's are its newest, so they are kept and resumed, never the earlier run's."""
    found = []
    for p in Path(state_dir).glob("step*-epoch*"):
        m = _NAME.match(p.name)
        if m and p.is_dir() and (p / MANIFEST).is_file():
            found.append(((_saved_at(p), int(m.group(1)), int(m.group(2))), p))
    return [p for _, p in sorted(found, reverse=True)]


def states_of(state_dir: Path, output_name: str) -> list[Path]:
    """The complete states a run of `output_name` saved (its config.json says whose a state is)."""
    def whose(folder: Path) -> str | None:
        try:
            return json.loads((folder / "config.json").read_text(encoding="utf-8")).get("output_name")
        except (OSError, ValueError, AttributeError):
            return None

    return [p for p in complete_states(state_dir) if whose(p) == output_name]


def _saved_at(folder: Path) -> float:
    try:
        return float(read_manifest(folder).get("saved_at", 0.0))
    except (OSError, ValueError, TypeError, AttributeError):
        return 0.0  # an unreadable manifest: check_folder says why when it is tried


def newest_state(state_dir: Path) -> tuple[Path, int] | None:
    """The newest state folder with a manifest and the step it resumes at, without checking its
    hashes (what the GUI shows after a stop; --resume checks them)."""
    states = complete_states(state_dir)
    return (states[0], int(_NAME.match(states[0].name).group(1))) if states else None


def check_folder(folder: Path) -> Message | None:
    """Why `folder` is not a usable state, as the note that passes it over (None when it is
    usable): a missing or unreadable manifest, a missing file, or a file whose SHA-256 differs
    from the manifest's."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        files = manifest["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return said("Ignoring state {state}: its manifest.json is missing or unreadable; trying the one before it.",
                    state=folder.name)
    if manifest.get("format") != FORMAT:
        return said("Ignoring state {state}: it has format {found}, this facelora reads {wanted}; trying the one "
                    "before it.", state=folder.name, found=manifest.get("format"), wanted=FORMAT)
    for name, want in files.items():
        path = folder / name
        if not path.is_file():
            return said("Ignoring state {state}: {file} is missing; trying the one before it.", state=folder.name,
                        file=name)
        if path.stat().st_size != want["bytes"] or _fsync_and_hash(path)["sha256"] != want["sha256"]:
            return said("Ignoring state {state}: {file} does not match its hash (a damaged or half-written file); "
                        "trying the one before it.", state=folder.name, file=name)
    return None


def latest_state(state_dir: Path) -> tuple[Path | None, list[Message]]:
    """The newest usable state folder, and notes on the broken ones passed over."""
    notes = []
    state_dir = Path(state_dir)
    if not state_dir.is_dir():
        return None, notes
    for p in sorted(state_dir.glob(TEMP_PREFIX + "*")):
        notes.append(said("Ignoring {name}: a save that never finished (the run was killed while saving).", name=p.name))
    for p in sorted(state_dir.glob("step*")):
        if p.is_dir() and not (p / MANIFEST).is_file():
            notes.append(said("Ignoring state {name}: it has no manifest.json (an incomplete save).", name=p.name))
    for folder in complete_states(state_dir):
        passed_over = check_folder(folder)
        if passed_over is None:
            return folder, notes
        notes.append(passed_over)
    return None, notes


@dataclass
class Resumed:
    folder: Path
    loop: LoopState
    finished: bool
    config: dict[str, Any]
    notes: list[Message] = field(default_factory=list)


def read_manifest(folder: Path) -> dict[str, Any]:
    return json.loads((Path(folder) / MANIFEST).read_text(encoding="utf-8"))


def compare_config(saved: dict[str, Any], cfg: TrainConfig, saved_processes: int, num_processes: int) -> list[Message]:
    """Refuse a state whose network or optimizer differs from this run's; note other changes."""
    now = cfg.model_dump(mode="json")
    differ = [k for k in now if k in saved and saved[k] != now[k]]
    fatal = [k for k in differ if k in MUST_MATCH]
    if "output_name" in differ:  # runs never mix: its files would go on under this run's name
        raise ResumeError("The newest saved state is of the run '{saved}', not '{now}': resuming it here would mix "
                          "the two runs' files. Resume it with --output_name {saved}, or train from the start without "
                          "--resume. Nothing was changed.", saved=str(saved["output_name"]), now=str(now["output_name"]))
    if "ema_decay" in fatal:
        raise ResumeError("The saved state's EMA of the weights has ema_decay {saved}, this run asks for {now}: its "
                          "averaged weights cannot go on. Resume with --ema_decay {flag}, or train from the start "
                          "without --resume.", saved=str(saved["ema_decay"]), now=str(now["ema_decay"]),
                          flag=str(saved["ema_decay"] if saved["ema_decay"] is not None else "none"))
    if "network_module" in fatal or "network_args" in fatal:
        raise ResumeError("The saved state is of another network type: {saved_module} {saved_args}, this run trains "
                          "{module} {args}. Resume with the saved network_module and network_args, or train from the "
                          "start without --resume.", saved_module=str(saved.get("network_module")),
                          saved_args=str(saved.get("network_args")), module=str(cfg.network_module),
                          args=str(cfg.network_args))
    if fatal:
        what = ", ".join(f"{k} (saved {saved[k]!r}, now {now[k]!r})" for k in fatal)
        raise ResumeError("The saved state does not fit this run: {what}. Resume with the same settings, "
                          "or train from the start without --resume.", what=what)
    notes = []
    ignore = {"pretrained_model_name_or_path", "train_data_dir", "output_dir", "logging_dir"}
    changed = [k for k in differ if k not in ignore]
    if changed:
        notes.append(said("Changed since the state was saved: {changes}. The run continues with the new values.",
                          changes=", ".join(f"{k} {saved[k]!r} -> {now[k]!r}" for k in changed)))
    if saved_processes != num_processes:
        notes.append(said("The state was saved by {saved} process(es), this run has {now}: the rest of the run shares "
                          "the data differently than an unbroken run would.", saved=saved_processes, now=num_processes))
    return notes


def load_state(folder: Path, network: torch.nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any,
               cfg: TrainConfig, num_processes: int = 1, scaler: Any = None, ema: WeightsEMA | None = None) -> Resumed:
    """Put the state in `folder` back into the network, optimizer, scheduler, EMA and random
    generators; return the loop's position."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    saved_cfg = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    notes = compare_config(saved_cfg, cfg, int(manifest.get("num_processes", 1)), num_processes)
    weights = load_file(str(folder / "network.safetensors"))
    own = network.state_dict()
    if set(weights) != set(own) or any(weights[k].shape != own[k].shape for k in own):
        raise ResumeError("The network in {folder} does not match this run's LoRA (other modules or rank).",
                          folder=str(folder))
    network.load_state_dict({k: v.to(own[k].device, own[k].dtype) for k, v in weights.items()})
    opt_tensors = load_file(str(folder / "optimizer.safetensors"))
    optimizer.load_state_dict(from_json(json.loads((folder / "optimizer.json").read_text(encoding="utf-8")), opt_tensors))
    sched_tensors = load_file(str(folder / "scheduler.safetensors")) if (folder / "scheduler.safetensors").is_file() else {}
    scheduler.load_state_dict(from_json(json.loads((folder / "scheduler.json").read_text(encoding="utf-8")), sched_tensors))
    if scaler is not None and (folder / "scaler.json").is_file():
        scaler.load_state_dict(from_json(json.loads((folder / "scaler.json").read_text(encoding="utf-8")), {}))
    if ema is not None:
        notes += restore_ema(folder, ema)
    set_rng_states(load_file(str(folder / "rng.safetensors")), json.loads((folder / "rng.json").read_text(encoding="utf-8")))
    loop = LoopState(**json.loads((folder / "loop.json").read_text(encoding="utf-8")))
    if loop.seed != cfg.seed:
        raise ResumeError("The saved state was trained with seed {saved}, this run has {seed}: resume with --seed "
                          "{saved}.", saved=loop.seed, seed=cfg.seed)
    return Resumed(folder, loop, bool(manifest.get("finished")), saved_cfg, notes)


def restore_ema(folder: Path, ema: WeightsEMA) -> list[Message]:
    """The EMA's averaged weights and update count as the state saved them (compare_config has
    made sure its ema_decay is this run's); a note when the state holds none (an older facelora's)."""
    if not (folder / "ema.json").is_file():
        return [said("The state {name} holds no EMA weights (saved by an older facelora): the EMA starts again from "
                     "the resumed weights, so the -ema files differ from an unbroken run's.", name=folder.name)]
    tensors = load_file(str(folder / "ema.safetensors"))
    try:
        ema.load_state_dict(from_json(json.loads((folder / "ema.json").read_text(encoding="utf-8")), tensors))
    except ValueError as e:
        raise ResumeError("The EMA weights in {folder} do not fit this run's network: {error}", folder=str(folder),
                          error=str(e)) from None
    return []


def no_state_error(state_dir: Path, notes: list[Message]) -> ResumeError:
    why = (" " + " ".join(n.text for n in notes)) if notes else ""
    return ResumeError(f"Nothing to resume: no complete training state in {state_dir}.{why} "
                      f"Train without --resume to start from the beginning, or from a saved LoRA's weights "
                      f"with --network_weights FILE (the optimizer and the step count start over).")


def resume_run(state_dir: Path, network: torch.nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any,
               cfg: TrainConfig, accelerator: Any, total_steps: int, ema: WeightsEMA | None = None) -> Resumed:
    """train(resume=True): the newest usable state in `state_dir` put back into the network,
    optimizer, scheduler and generators; the half-written LoRA files of a killed save removed (on
    the main process); notes on all of it, and on where the run goes on."""
    folder, found = latest_state(state_dir)
    if folder is None:
        raise no_state_error(state_dir, found)
    back = load_state(folder, accelerator.unwrap_model(network), optimizer, scheduler, cfg,
                      accelerator.num_processes, accelerator.scaler, ema)
    back.notes[:0] = found
    if accelerator.is_main_process:
        for partial in remove_partial_files(Path(cfg.output_dir), cfg.output_name):
            back.notes.append(said("Removed {name}: half of a LoRA file whose save was cut off.", name=partial.name))
    back.notes.append(said("Resuming at step {step} of {total} (epoch {epoch}) from {folder}.",
                           step=back.loop.global_step, total=total_steps, epoch=back.loop.epoch, folder=folder))
    return back


def remove_partial_files(output_dir: Path, output_name: str) -> list[Path]:
    """Temporary files of LoRA saves a kill interrupted (`.<name>...safetensors.*.tmp` beside the
    LoRA files); the finished files are never touched."""
    gone = []
    for p in Path(output_dir).glob(f".{glob_escape(output_name)}*.safetensors.*.tmp"):
        p.unlink(missing_ok=True)
        gone.append(p)
    return gone


def glob_escape(text: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", text)
