"""The probe prompts the grid renders for every LoRA file and weight (`facelora grid --z probes`),
so the scoreboard can ask three questions instead of one:

- likeness: the trigger in neutral portraits: is it the person?
- flexibility: the trigger in poses and settings training photos rarely show (profile, full
  body, outdoors, other light, a painting): does it still follow the prompt, or only copy them?
- bleed: the class word and other people, without the trigger: the person's face should not
  appear there.

They live in PROJECT/eval/probes.toml, written with the defaults below on first use; edit it to
add your own. `{trigger}` and `{class}` are filled in from the project.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from ..errors import FaceloraError
from ..fileio import atomic_write_text

KINDS = ("likeness", "flexibility", "bleed")

DEFAULT = '''# facelora's probe prompts: the grid renders each one for every LoRA file and weight
# (facelora grid PROJECT --z probes) and the scoreboard reads them by kind.
# {trigger} and {class} are filled in from the project. Add your own lines; bleed prompts must
# not name the trigger (they ask whether other people get the person's face).

likeness = [
    "{trigger}, {class}, portrait photo, looking at viewer, detailed face",
]

flexibility = [
    "{trigger}, {class}, profile view, side portrait photo",
    "full body photo of {trigger}, {class}, standing in a street",
    "{trigger}, {class}, outdoors in a park, sunny day, photo",
    "{trigger}, {class}, dramatic low-key lighting at night, photo",
    "oil painting of {trigger}, {class}, brush strokes, portrait",
]

bleed = [
    "portrait photo of a {class}",
    "photo of a woman, portrait, looking at viewer",
    "photo of a man, portrait, looking at viewer",
    "two people at a table, photo",
]
'''


class ProbeError(FaceloraError, ValueError):
    """A probes file that cannot be read or breaks its rules."""


@dataclass(frozen=True)
class Probe:
    kind: str  # likeness, flexibility or bleed
    prompt: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.prompt}"


def probes_file(path: Path) -> Path:
    """The project's probes file (Project.probes_toml), written with the defaults when there is none yet."""
    if not path.is_file():
        atomic_write_text(path, DEFAULT)
    return path


def read_probes(path: Path, trigger: str, class_word: str | None) -> list[Probe]:
    """Every probe prompt, filled in, in file order by kind; repeated prompts once."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise ProbeError("{path}: cannot read the probe prompts ({why}). Fix it, or delete it to get the defaults "
                         "back.", path=str(path), why=str(e)) from None
    unknown = set(data) - set(KINDS)
    if unknown:
        raise ProbeError("{path}: unknown probe kind(s) {unknown}; use {kinds}.", path=str(path),
                         unknown=", ".join(sorted(unknown)), kinds=", ".join(KINDS))
    out: list[Probe] = []
    for kind in KINDS:
        texts = data.get(kind, [])
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            raise ProbeError("{path}: '{kind}' must be a list of prompt strings.", path=str(path), kind=kind)
        for text in texts:
            if kind == "bleed" and ("{trigger}" in text or re.search(rf"\b{re.escape(trigger)}\b", text)):
                raise ProbeError("{path}: the bleed prompt \"{text}\" names the trigger; bleed prompts ask about other "
                                 "people.", path=str(path), text=text)
            prompt = text.replace("{trigger}", trigger).replace("{class}", class_word or "person").strip()
            if prompt and all(p.prompt != prompt for p in out):
                out.append(Probe(kind, prompt))
    if not any(p.kind in ("likeness", "flexibility") for p in out):
        raise ProbeError("{path}: no likeness or flexibility prompt, so there is nothing to score the person on.",
                         path=str(path))
    return out
