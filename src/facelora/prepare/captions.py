"""Captions: `<trigger>, <class word>` followed by optional tags.

Tags come from the user (`--tags`) and, on request, from a WD14-style ONNX tagger the user
supplies (`--captioner FOLDER` holding model.onnx and selected_tags.csv, as SmilingWolf's
taggers ship; needs `pip install "facelora[tagger]"`).

What is said in a caption is what the LoRA learns to be promptable; what is left unsaid is
absorbed by the trigger word. So tags that describe the person's identity (hair and eye colour,
freckles, moles, beard, skin tone, ...) are dropped by default: the trigger word should carry
them. `IDENTITY_TAG_PATTERNS` is that list; `--keep-identity-tags` keeps them.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import FaceloraError

_COLOURS = (
    "blonde|platinum blonde|strawberry blonde|brown|light brown|dark brown|black|red|dark red|auburn|"
    "ginger|orange|pink|purple|light purple|blue|light blue|dark blue|green|dark green|aqua|grey|gray|"
    "white|silver|yellow|multicolored|two-tone|streaked|gradient|rainbow"
)
# Full matches, case-insensitive, on tags written with spaces (WD14's underscores replaced).
IDENTITY_TAG_PATTERNS: tuple[str, ...] = (
    rf"(?:{_COLOURS}) hair",
    rf"(?:{_COLOURS}|hazel|amber) eyes",
    r"heterochromia",
    r"freckles",
    r"moles?(?: (?:under|on|above|below|near) .+)?",
    r"beauty mark",
    r"birthmark",
    r"scar(?: on (?:face|cheek|nose|forehead|lip|chin))?",
    r"(?:full |short |long |light )?beard",
    r"stubble",
    r"goatee",
    r"must?ache",
    r"moustache",
    r"facial hair",
    r"sideburns",
    r"thick eyebrows",
    r"dimples",
    r"(?:dark|pale|tan|tanned|brown|black|white)[- ]skin(?:ned)?(?: (?:female|male|woman|man))?",
)
_IDENTITY = re.compile("|".join(f"(?:{p})" for p in IDENTITY_TAG_PATTERNS), re.IGNORECASE)
# Danbooru faces whose underscores are part of the tag, kept as written.
_KAOMOJI = {"0_0", "(o)_(o)", "+_+", "+_-", "._.", "<o>_<o>", "<|>_<|>", "=_=", ">_<", "3_3", "6_9",
            ">_o", "@_@", "^_^", "o_o", "u_u", "x_x", "|_|", "||_||"}


class CaptionerError(FaceloraError):
    """The tagger cannot be loaded or run; the message says what is missing."""


def is_identity_tag(tag: str) -> bool:
    return bool(_IDENTITY.fullmatch(tag.strip()))


def split_tags(text: str | None) -> list[str]:
    return [t.strip() for t in (text or "").split(",") if t.strip()]


def compose(trigger: str, class_word: str | None, tags: list[str] = (), keep_identity_tags: bool = False) -> str:
    """`trigger, class word, tag, ...` without repeats (and without identity tags by default)."""
    head = [trigger] + ([class_word] if class_word else [])
    seen = {t.lower() for t in head}
    out = list(head)
    for tag in tags:
        key = tag.strip().lower()
        if not key or key in seen or (not keep_identity_tags and is_identity_tag(key)):
            continue
        seen.add(key)
        out.append(tag.strip())
    return ", ".join(out)


@dataclass(frozen=True)
class TagScore:
    tag: str
    score: float
    category: str  # "general", "character" (ratings are never caption tags)


class WD14Tagger:
    """A WD14-style ONNX tagger: image in (square, BGR, 0-255), one sigmoid score per tag out."""

    def __init__(self, path: str | Path, general_threshold: float = 0.35, character_threshold: float = 0.85):
        model, table = _tagger_files(Path(path).expanduser())
        try:
            import onnxruntime as ort
        except ImportError:
            raise CaptionerError(
                "--captioner runs the tagger with onnxruntime, which is not installed: pip install \"facelora[tagger]\"."
            ) from None
        options = ort.SessionOptions()
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
        except Exception as e:
            raise CaptionerError("onnxruntime cannot load {model}: {why}", model=str(model), why=str(e)) from None
        self.tags, self.categories = _read_tags(table)
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        shape = list(inp.shape)
        self.channels_first = len(shape) == 4 and shape[1] == 3 and shape[3] != 3
        side = shape[2] if self.channels_first else shape[1]
        self.size = side if isinstance(side, int) and side > 0 else 448
        out = self.session.get_outputs()[0].shape
        if isinstance(out[-1], int) and out[-1] != len(self.tags):
            raise CaptionerError("{model} scores {scored} tags but {table} lists {listed}.", model=model.name,
                                 scored=out[-1], table=table.name, listed=len(self.tags))
        self.general_threshold = general_threshold
        self.character_threshold = character_threshold
        self.name = f"wd14:{model.parent.name}/{model.name}"

    def _input(self, image: Image.Image) -> np.ndarray:
        """As the WD14 taggers were trained: pad to a square on white, resize, BGR floats 0-255."""
        rgb = image.convert("RGB")
        side = max(rgb.size)
        square = Image.new("RGB", (side, side), (255, 255, 255))
        square.paste(rgb, ((side - rgb.width) // 2, (side - rgb.height) // 2))
        square = square.resize((self.size, self.size), Image.Resampling.BICUBIC)
        x = np.asarray(square, dtype=np.float32)[:, :, ::-1]
        if self.channels_first:
            x = x.transpose(2, 0, 1)
        return np.ascontiguousarray(x[None])

    def scores(self, image: Image.Image) -> list[TagScore]:
        """Every general or character tag over its threshold, highest first."""
        probs = self.session.run(None, {self.input_name: self._input(image)})[0][0]
        found = []
        for tag, category, p in zip(self.tags, self.categories, probs.astype(float)):
            if category == "general" and p >= self.general_threshold:
                found.append(TagScore(tag, p, category))
            elif category == "character" and p >= self.character_threshold:
                found.append(TagScore(tag, p, category))
        return sorted(found, key=lambda t: -t.score)

    def __call__(self, image: Image.Image) -> list[str]:
        return [t.tag for t in self.scores(image)]


def _tagger_files(path: Path) -> tuple[Path, Path]:
    if path.is_dir():
        model, table = path / "model.onnx", path / "selected_tags.csv"
    else:
        model, table = path, path.with_name("selected_tags.csv")
    if not model.is_file() or model.suffix.lower() != ".onnx":
        raise CaptionerError(
            "--captioner {path}: expected a folder with model.onnx and selected_tags.csv (a WD14 tagger), or the "
            ".onnx file itself; no such model here.", path=str(path))
    if not table.is_file():
        raise CaptionerError("--captioner {path}: {table} (the tag list) is missing beside {model}.", path=str(path),
                             table=table.name, model=model.name)
    return model, table


_CATEGORY = {"0": "general", "4": "character", "9": "rating"}


def _read_tags(table: Path) -> tuple[list[str], list[str]]:
    """selected_tags.csv: tag_id,name,category,count; names get spaces for underscores."""
    tags, categories = [], []
    with table.open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            try:
                name, category = row["name"], row["category"]
            except KeyError:
                raise CaptionerError("{table} needs 'name' and 'category' columns (WD14's selected_tags.csv).",
                                     table=str(table)) from None
            tags.append(name if name in _KAOMOJI else name.replace("_", " "))
            categories.append(_CATEGORY.get(category.strip(), "other"))
    if not tags:
        raise CaptionerError("{table} lists no tags.", table=str(table))
    return tags, categories


def load_captioner(spec: str, general_threshold: float, character_threshold: float) -> WD14Tagger | None:
    """None for the template captioner, else the tagger at `spec`."""
    if spec.strip().lower() == "template":
        return None
    return WD14Tagger(spec, general_threshold, character_threshold)
