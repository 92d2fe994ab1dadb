"""The values of a grid axis, written as in AUTOMATIC1111's X/Y/Z plot script.

A1111 reads an axis as comma-separated values (CSV, so a value with a comma can be quoted) and
expands number ranges:

    1-5          1, 2, 3, 4, 5            (integers, step 1)
    1-10 (+3)    1, 4, 7, 10              (a step in brackets, may be negative: 10-1 (-3))
    0.2-1.0 (+0.2)  0.2, 0.4, 0.6, 0.8, 1.0
    0-1 [6]      0, 0.2, 0.4, 0.6, 0.8, 1.0  (a count in square brackets: evenly spaced)

Prompt S/R ("search/replace") is the other way to give an axis: the first value is searched for
in the prompt and negative prompt, and each value in turn replaces it. The first value must be
there, or the axis would make identical cells; that is an error, as in A1111.
"""

from __future__ import annotations

import csv
import io
import re
from typing import Literal

import numpy as np

from ..errors import FaceloraError


class AxisError(FaceloraError, ValueError):
    """Axis values that cannot be read, or a Prompt S/R whose first value is not in the prompt."""


_NUM = r"[+-]?\s*\d+(?:\.\d*)?|[+-]?\s*\.\d+"
_RANGE_STEP = re.compile(rf"^\s*({_NUM})\s*-\s*({_NUM})\s*(?:\(\s*([+-]?\s*\d*\.?\d+)\s*\))?\s*$")
_RANGE_COUNT = re.compile(rf"^\s*({_NUM})\s*-\s*({_NUM})\s*\[\s*(\d+)\s*\]\s*$")
# Floats from a range are rounded so 0.2 + 0.4 prints as 0.6, not 0.6000000000000001.
_DECIMALS = 10


def split_values(text: str) -> list[str]:
    """A1111's axis text: comma-separated, quotes allowed, blanks around values ignored."""
    if text is None or not text.strip():
        return []
    rows = list(csv.reader(io.StringIO(text.strip()), skipinitialspace=True))
    values = [v.strip() for row in rows for v in row]
    return [v for v in values if v]


def _num(s: str) -> float:
    return float(s.replace(" ", ""))


def _expand(value: str, kind: Literal["int", "float"]) -> list[float] | None:
    """The numbers of one range value, or None when `value` is not a range."""
    m = _RANGE_COUNT.match(value)
    if m:
        start, end, count = _num(m.group(1)), _num(m.group(2)), int(m.group(3))
        if count < 1:
            raise AxisError("'{value}': the count in [ ] must be at least 1.", value=value)
        out = np.linspace(start, end, count)
        return [float(v) for v in (np.round(out) if kind == "int" else out)]
    m = _RANGE_STEP.match(value)
    if not m:
        return None
    start, end = _num(m.group(1)), _num(m.group(2))
    step = _num(m.group(3)) if m.group(3) else (1.0 if end >= start else -1.0)
    if step == 0 or (end - start) * step < 0:
        raise AxisError("'{value}': the step {step:g} never gets from {start:g} to {end:g}.", value=value, step=step,
                        start=start, end=end)
    n = int(np.floor((end - start) / step + 1e-9)) + 1
    return [start + i * step for i in range(n)]


def parse_numbers(text: str, kind: Literal["int", "float"] = "float", what: str = "values") -> list[float | int]:
    """Numbers and ranges ('0.2-1.0 (+0.2)', '0-1 [6]', '1-5') in the order given."""
    out: list[float | int] = []
    for value in split_values(text):
        expanded = _expand(value, kind)
        if expanded is None:
            try:
                expanded = [float(value)]
            except ValueError:
                raise AxisError("{what}: '{value}' is not a number or a range; write e.g. '0.4,0.6,0.8', "
                              "'0.2-1.0 (+0.2)' or '0-1 [6]'.", what=what, value=value) from None
        for v in expanded:
            if kind == "int":
                if abs(v - round(v)) > 1e-9:
                    raise AxisError("{what}: '{value}' gives {v:g}, which is not a whole number.", what=what, value=value, v=v)
                out.append(int(round(v)))
            else:
                out.append(round(v, _DECIMALS) + 0.0)  # + 0.0 turns -0.0 into 0.0
    if not out:
        raise AxisError("{what}: no values given.", what=what)
    return out


def parse_sr(text: str, prompt: str, negative: str = "", what: str = "Prompt S/R") -> list[str]:
    """The values of a Prompt S/R axis; the first must occur in the prompt or negative prompt."""
    values = split_values(text)
    if not values:
        raise AxisError("{what}: no values given.", what=what)
    if values[0] not in prompt and values[0] not in (negative or ""):
        raise AxisError(
            "{what}: the first value '{first}' is not in the prompt or the negative prompt, so nothing would be "
            "replaced. Prompt: \"{prompt}\". Put '{first}' in the prompt (e.g. <lora:NAME-{first}:1>) or start the "
            "values with a text the prompt holds.", what=what, first=values[0], prompt=prompt)
    return values


def replace(prompt: str, negative: str, search: str, value: str) -> tuple[str, str]:
    """One Prompt S/R cell: every occurrence of `search` becomes `value`, as A1111 does."""
    return prompt.replace(search, value), (negative or "").replace(search, value)
