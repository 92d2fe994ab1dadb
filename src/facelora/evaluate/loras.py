"""The project's LoRA files as the grid sees them: listed in training order, found by the name a
`<lora:NAME>` tag gives, hashed as A1111 hashes them, and installed into another tool's folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..fileio import atomic_write_json, read_json
from ..filenames import LORA_SUFFIX, LoraName, parse_lora_filename
from ..lora_file import LoRAFileError, addnet_hash, read_lora, read_metadata, save_lora

# What A1111 reads as a LoRA's preferred weight: the "preferred weight" of its user-metadata file
# `<name>.json` beside the LoRA (the card's "Edit metadata" dialog writes the same file).
A1111_USER_METADATA_KEY = "preferred weight"
# The SAI model spec's documented "very short hint about how to use the model" (no spec or tool
# defines a numeric preferred-weight key in the header). It lies outside both sshs hashes:
# sshs_model_hash covers the tensor bytes, sshs_legacy_hash the tensors with only ss_* metadata.
USAGE_HINT_KEY = "modelspec.usage_hint"


class LoraFileError(LoRAFileError):
    """A project's LoRA file that is missing or would overwrite another file."""


@dataclass(frozen=True)
class LoraFile:
    path: Path
    epoch: int | None  # from the name (or the metadata, for the final file)
    step: int | None
    final: bool

    @property
    def name(self) -> str:
        """What a `<lora:NAME:W>` tag calls it: the file name without .safetensors."""
        return self.path.name[: -len(LORA_SUFFIX)]

    @property
    def label(self) -> str:
        return self.name


def _int(v: object) -> int | None:
    try:
        return int(str(v))
    except (TypeError, ValueError):
        return None


def list_loras(models_dir: Path, output_name: str) -> list[LoraFile]:
    """The saved files of a training run in the order they were made: epoch files, step files,
    and the final `<name>.safetensors` last. Files from an interrupted run are left out."""
    if not models_dir.is_dir():
        return []
    found: list[tuple[int, LoraFile]] = []
    for p in models_dir.glob(f"*{LORA_SUFFIX}"):
        parsed = parse_lora_filename(p.name, output_name)
        if parsed is None or parsed.kind == "interrupted":
            continue
        if parsed.kind == "final":
            meta = read_metadata(p)
            found.append((parsed.order(), LoraFile(p, _int(meta.get("ss_epoch")), _int(meta.get("ss_steps")), True)))
        else:  # the trainer's step count orders epoch and step saves together
            steps = _int(read_metadata(p).get("ss_steps"))
            found.append((parsed.order(steps), LoraFile(p, parsed.epoch, parsed.step, False)))
    return [lf for _, lf in sorted(found, key=lambda kv: (kv[0], kv[1].name))]


def resolve(name: str, models_dir: Path, output_name: str | None = None) -> Path:
    """The file a `<lora:NAME>` tag means. `NAME-<final epoch>` also finds the final
    `<name>.safetensors`, which Kohya saves without its epoch number (A1111 users rename it to
    make Prompt S/R reach it; facelora reads the epoch from its metadata instead)."""
    name = name.strip()
    direct = models_dir / (name if name.endswith(LORA_SUFFIX) else name + LORA_SUFFIX)
    if direct.is_file():
        return direct
    parsed = parse_lora_filename(name)
    if parsed.kind == "epoch":
        final = models_dir / LoraName(parsed.output_name).filename
        if final.is_file() and _int(read_metadata(final).get("ss_epoch")) == parsed.epoch:
            return final
    have = ", ".join(lf.name for lf in list_loras(models_dir, output_name)) if output_name else ""
    if not have:
        have = ", ".join(sorted(p.name[: -len(LORA_SUFFIX)] for p in models_dir.glob(f"*{LORA_SUFFIX}"))) if models_dir.is_dir() else ""
    raise LoraFileError("No LoRA file '{file}' in {folder}. Files there: {have}.", file=f"{name}{LORA_SUFFIX}",
                        folder=models_dir, have=have or "none (train first)")


def pick(selection: str | list[str] | None, models_dir: Path, output_name: str) -> list[LoraFile]:
    """`all` (or nothing) = every saved file in training order; otherwise names, file names or
    epoch numbers, in the order given."""
    saved = list_loras(models_dir, output_name)
    if isinstance(selection, str):
        selection = [s.strip() for s in selection.split(",") if s.strip()]
    if not selection or selection == ["all"]:
        if not saved:
            raise LoraFileError("No LoRA files named {pattern} in {folder}: train first (facelora train PROJECT), or "
                                "name the files with --checkpoints.", pattern=f"{output_name}*{LORA_SUFFIX}",
                                folder=models_dir)
        return saved
    out = []
    for item in selection:
        if item.isdigit() and len(item) < 6:
            item = LoraName(output_name, "epoch", int(item)).stem
        path = resolve(item, models_dir, output_name)
        match = [lf for lf in saved if lf.path == path]
        out.append(match[0] if match else LoraFile(path, None, None, False))
    return out


def install(source: Path, dest_dir: Path, weight: float, trigger: str | None = None,
            overwrite: bool = False) -> Path:
    """Copy `source` into a LoRA folder (e.g. A1111's models/Lora) with the preferred weight
    written into its header (modelspec.usage_hint) and into A1111's user-metadata file beside it
    (`<name>.json`, "preferred weight"), which A1111 uses when the LoRA's card is clicked.

    The tensors are written back unchanged, through the same writer as training (atomic, and it
    recomputes sshs_model_hash and sshs_legacy_hash, which the new modelspec key does not touch)."""
    dest_dir = Path(dest_dir).expanduser()
    if not dest_dir.is_dir():
        raise LoraFileError("{folder} is not a folder; give the LoRA folder, e.g. stable-diffusion-webui/models/Lora.",
                            folder=dest_dir)
    dest = dest_dir / source.name
    if dest.exists() and not overwrite and dest.resolve() != Path(source).resolve():
        try:
            same = addnet_hash(dest) == addnet_hash(source)
        except LoRAFileError:
            same = False
        if not same:
            raise LoraFileError("{file} exists and holds other weights; use --overwrite to replace it.", file=dest)
    tensors, meta = read_lora(source)
    dtype = next(v.dtype for k, v in tensors.items() if k.endswith(".lora_down.weight"))
    w = f"{float(weight):g}"
    meta = {k: v for k, v in meta.items() if not k.startswith("sshs_")}
    meta[USAGE_HINT_KEY] = f"Use at weight {w}: <lora:{dest.stem}:{w}>" + (f", with the trigger word '{trigger}'" if trigger else "")
    save_lora(dest, tensors, meta, dtype=dtype)
    user_meta = dest.with_suffix(".json")
    current = read_json(user_meta, {})
    current.update({A1111_USER_METADATA_KEY: float(w), "sd version": "SD1"})
    if trigger:
        current["activation text"] = trigger
    atomic_write_json(user_meta, current)
    return dest
