"""AUTOMATIC1111's text conventions: `<lora:NAME:WEIGHT>` tags in prompts, and the `parameters`
text it stores in every PNG it makes (and reads back with "PNG Info"):

    close-up photo of ohwx woman <lora:ohwx-000002:0.8>
    Negative prompt: blurry, lowres
    Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1234, Size: 512x512, Model: v1-5, Lora hashes: "ohwx-000002: 0123456789ab"

The first lines are the prompt, a line starting "Negative prompt:" opens the negative prompt, and
the last line holds `Key: value` pairs (values with a comma, colon or newline are JSON-quoted).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import FaceloraError

PNG_KEY = "parameters"

# <lora:NAME>, <lora:NAME:W> or A1111's <lora:NAME:TE:UNET> (text encoder and UNet multipliers).
_LORA_TAG = re.compile(r"<lora:([^:>]+)(?::([^:>]*))?(?::([^:>]*))?>")
_PARAM = re.compile(r'\s*(\w[\w \-/+]*):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')


class PromptError(FaceloraError, ValueError):
    """A `<lora:...>` tag that cannot be read."""


@dataclass(frozen=True)
class LoraTag:
    """One `<lora:NAME:W>`: the file's name (without .safetensors) and its multipliers."""

    name: str
    weight: float = 1.0
    unet_weight: float | None = None  # set only when the tag gives the UNet its own multiplier

    @property
    def te(self) -> float:
        return self.weight

    @property
    def unet(self) -> float:
        return self.weight if self.unet_weight is None else self.unet_weight

    def text(self) -> str:
        extra = "" if self.unet_weight is None else f":{fmt_number(self.unet_weight)}"
        return f"<lora:{self.name}:{fmt_number(self.weight)}{extra}>"


def fmt_number(v: float) -> str:
    """0.8 -> '0.8', 1.0 -> '1', as A1111 prints weights and CFG scales."""
    return f"{float(v):g}"


def _weight(s: str | None, tag: str, default: float) -> float:
    if s is None or not s.strip():
        return default
    try:
        return float(s)
    except ValueError:
        raise PromptError("{tag}: the weight '{s}' is not a number; write e.g. <lora:NAME:0.8>.", tag=tag, s=s) from None


def find_lora_tags(prompt: str) -> list[tuple[tuple[int, int], LoraTag]]:
    """Every `<lora:...>` tag in `prompt` with its span."""
    out = []
    for m in _LORA_TAG.finditer(prompt or ""):
        w = _weight(m.group(2), m.group(0), 1.0)
        unet = _weight(m.group(3), m.group(0), w) if m.group(3) is not None else None
        out.append(((m.start(), m.end()), LoraTag(m.group(1).strip(), w, unet)))
    return out


def lora_tags(prompt: str) -> list[LoraTag]:
    return [t for _, t in find_lora_tags(prompt)]


def strip_lora_tags(prompt: str) -> str:
    """The prompt the text encoder sees: A1111 removes extra-network tags before encoding."""
    text = _LORA_TAG.sub("", prompt or "")
    text = re.sub(r"\s*,(\s*,)+", ",", text)  # "a, <lora:x:1>, b" leaves no empty item
    return re.sub(r"[ \t]{2,}", " ", text).strip().strip(",").strip()


def set_lora_tag(prompt: str, tag: LoraTag) -> str:
    """Replace the prompt's one `<lora:...>` tag with `tag`, or append it when there is none."""
    found = find_lora_tags(prompt)
    if len(found) > 1:
        raise PromptError("The prompt has {n} <lora:...> tags; a grid cell compares one LoRA file at a time, so "
                          "keep one: \"{prompt}\"", n=len(found), prompt=prompt)
    if not found:
        return f"{prompt.rstrip()} {tag.text()}".strip()
    (start, end), _ = found[0]
    return prompt[:start] + tag.text() + prompt[end:]


# --- the parameters text ---------------------------------------------------------------------


def _quote(v: object) -> str:
    s = str(v)
    return json.dumps(s, ensure_ascii=False) if any(c in s for c in ',\n:"') else s


def _unquote(s: str) -> str:
    s = s.strip()
    if len(s) >= 2 and s[0] == '"' and s[-1] == '"':
        try:
            return json.loads(s)
        except json.JSONDecodeError:
            return s[1:-1]
    return s


@dataclass
class Infotext:
    prompt: str
    negative: str = ""
    params: dict[str, str] = field(default_factory=dict)

    def text(self) -> str:
        lines = [self.prompt]
        if self.negative:
            lines.append(f"Negative prompt: {self.negative}")
        lines.append(", ".join(f"{k}: {_quote(v)}" for k, v in self.params.items() if v is not None and v != ""))
        return "\n".join(lines)

    @property
    def loras(self) -> list[LoraTag]:
        return lora_tags(self.prompt)

    def lora_hashes(self) -> dict[str, str]:
        """`Lora hashes: "name: hash, ..."` as a dict."""
        out = {}
        for item in self.params.get("Lora hashes", "").split(","):
            name, _, h = item.partition(":")
            if name.strip() and h.strip():
                out[name.strip()] = h.strip()
        return out


def format_lora_hashes(hashes: dict[str, str]) -> str:
    return ", ".join(f"{name}: {h}" for name, h in hashes.items())


def parse_infotext(text: str) -> Infotext:
    """A1111's `parameters` text back into prompt, negative prompt and parameters."""
    lines = (text or "").strip().split("\n")
    params: dict[str, str] = {}
    if lines and len(_PARAM.findall(lines[-1])) >= 3:
        params = {k.strip(): _unquote(v) for k, v in _PARAM.findall(lines.pop())}
    prompt, negative, in_negative = [], [], False
    for line in lines:
        if line.startswith("Negative prompt:"):
            in_negative = True
            line = line[len("Negative prompt:"):].lstrip()
        (negative if in_negative else prompt).append(line)
    return Infotext("\n".join(prompt).strip(), "\n".join(negative).strip(), params)


def read_png_infotext(path: Path) -> Infotext | None:
    """The `parameters` text of an image A1111 (or facelora) made, or None when it has none."""
    from PIL import Image

    with Image.open(path) as im:
        text = im.info.get(PNG_KEY)
        if text is None and hasattr(im, "getexif"):  # JPEG/WebP from A1111 keep it in EXIF UserComment
            text = _exif_user_comment(im)
    if not text:
        return None
    return parse_infotext(text if isinstance(text, str) else text.decode("utf-8", "replace"))


def _exif_user_comment(im) -> str | None:
    try:
        raw = im.getexif().get_ifd(0x8769).get(0x9286)  # Exif IFD, UserComment
    except Exception:  # a broken EXIF block is the same as none
        return None
    if isinstance(raw, bytes):
        if raw.startswith(b"UNICODE\0"):
            body = raw[8:]
            return body.decode("utf-16-be" if body[:1] == b"\0" else "utf-16-le", "replace")
        return raw.split(b"\0", 1)[-1].decode("utf-8", "replace")
    return raw or None


def png_info(text: str):
    """A PngInfo holding `text` under A1111's `parameters` key, for Image.save(pnginfo=...)."""
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text(PNG_KEY, text)
    return info
