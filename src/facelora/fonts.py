"""The font of the text facelora draws into its pictures (contact sheet, grid): DejaVu Sans, which
ships inside matplotlib, so labels look the same on every machine; and for text with Chinese,
Japanese or Korean characters (a photo or LoRA named in Chinese, a prompt) a CJK font of this
system, since DejaVu has no CJK glyphs and would draw empty boxes. Without any CJK font installed
(e.g. a bare Linux server: Debian's fonts-wqy-microhei or fonts-noto-cjk provide one) the boxes
remain; the names are in the JSON reports either way."""

from __future__ import annotations

import shutil
import subprocess
from functools import lru_cache
from pathlib import Path

from PIL import ImageFont

# Where Windows, macOS and Debian's packages keep common CJK fonts, for when fontconfig (asked
# first: fc-list :lang=zh) is not there.
CJK_FILES = ("C:/Windows/Fonts/msyh.ttc", "C:/Windows/Fonts/simhei.ttf", "/System/Library/Fonts/PingFang.ttc",
             "/System/Library/Fonts/Hiragino Sans GB.ttc", "/Library/Fonts/Arial Unicode.ttf",
             "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
             "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc")


def has_cjk(text: str) -> bool:
    """Any character from the CJK radicals block (U+2E80) up: Han, kana, hangul, fullwidth forms."""
    return any(ord(ch) >= 0x2E80 for ch in text)


@lru_cache(maxsize=None)
def font_path(cjk: bool) -> str:
    """A CJK font's file when cjk and one is installed; DejaVu Sans's otherwise."""
    if cjk:
        found = _fontconfig_cjk() or next((f for f in CJK_FILES if Path(f).is_file()), None)
        if found:
            return found
    from matplotlib import font_manager

    return font_manager.findfont("DejaVu Sans")


def _fontconfig_cjk() -> str | None:
    """The first font fontconfig says covers Chinese (sans-serif ones first), or None."""
    if shutil.which("fc-list") is None:
        return None
    try:
        out = subprocess.run(["fc-list", ":lang=zh", "file", "family"], capture_output=True, text=True,
                             timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    fonts = [line.split(":")[0].strip() for line in sorted(out.splitlines(), key=lambda line: "Sans" not in line and "Hei" not in line)]
    return next((f for f in fonts if f and Path(f).is_file()), None)


@lru_cache(maxsize=None)
def font(size: int, cjk: bool = False) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(font_path(cjk), size)


def font_for(size: int, *texts: str) -> ImageFont.FreeTypeFont:
    """The font for drawing `texts` at `size` px: a CJK one when any of them needs it."""
    return font(size, any(has_cjk(t) for t in texts))
