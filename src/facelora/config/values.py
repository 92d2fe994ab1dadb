"""Parameter values as Kohya writes them: resolutions and `key=value` argument lists."""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError


def parse_resolution(v: str | int) -> tuple[int, int]:
    parts = [p.strip() for p in str(v).replace("x", ",").split(",") if p.strip()]
    try:
        nums = [int(p) for p in parts]
    except ValueError:
        nums = []
    if len(nums) == 1:
        nums = nums * 2
    if len(nums) != 2 or min(nums) < 64 or any(n % 8 for n in nums):
        raise ConfigError("resolution '{value}' must be one number or 'W,H', each a multiple of 8 and at least 64",
                          value=v)
    return nums[0], nums[1]


def _parse_value(s: str) -> Any:
    low = s.lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    if "," in s:
        return tuple(_parse_value(p) for p in s.split(","))
    for cast in (int, float):
        try:
            return cast(s)
        except ValueError:
            pass
    return s


def parse_kv_args(items: list[str]) -> dict[str, Any]:
    """Kohya's `--optimizer_args "decouple=True" "betas=0.9,0.999"` -> {'decouple': True, 'betas': (0.9, 0.999)}."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError("Argument '{item}' must be 'key=value' (e.g. weight_decay=0.01).", item=item)
        out[key.strip()] = _parse_value(value.strip())
    return out

