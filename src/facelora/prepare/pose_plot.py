"""prepare-pose.png: each accepted photo's head pose as a point, yaw across and pitch up, marked
by its expression and labelled with its number, over the bands of the frontal, three-quarter and
profile views: a set that sits in the middle band alone shows the face from one side only.

Drawn with PIL like the contact sheet: importing matplotlib's pyplot for one scatter plot cost a
prepare run about 0.9 s of CPU (0.07 s a photo of a 13-photo set), more than everything else it
does outside dlib."""

from __future__ import annotations

import io

from PIL import Image, ImageDraw

from .. import headpose
from ..fileio import atomic_write_bytes
from ..fonts import font_for
from ..project import POSE_PLOT, Project
from .report import PrepareItem

_MARKERS = {"neutral": ("o", "#4c78a8"), "smile": ("^", "#f58518"), "open mouth": ("s", "#e45756")}
_YAW, _PITCH = 90.0, 45.0  # the axes run from -limit to +limit degrees
_SIZE = (600, 340)
_LEFT, _TOP, _RIGHT, _BOTTOM = 58, 28, 12, 44  # the margins around the plotting area
_R = 5  # marker radius, px
_TITLE = "Head pose of the training photos: frontal | three-quarter | profile"


def write(items: list[PrepareItem], project: Project) -> str | None:
    """Draw the accepted photos with a measured pose into the project's prepare-pose.png; its
    name, or None (no file) when no photo has a pose."""
    shown = [it for it in items if it.status == "accepted" and it.yaw is not None]
    if not shown:
        return None
    buf = io.BytesIO()
    draw(shown).save(buf, "PNG", compress_level=1)
    atomic_write_bytes(project.pose_plot, buf.getvalue())
    return POSE_PLOT


def draw(shown: list[PrepareItem]) -> Image.Image:
    im = Image.new("RGB", _SIZE, "white")
    d = ImageDraw.Draw(im)
    w, h = _SIZE
    x0, y0, x1, y1 = _LEFT, _TOP, w - _RIGHT, h - _BOTTOM

    def at(yaw: float, pitch: float) -> tuple[float, float]:
        yaw, pitch = max(-_YAW, min(_YAW, yaw)), max(-_PITCH, min(_PITCH, pitch))
        return x0 + (yaw + _YAW) / (2 * _YAW) * (x1 - x0), y1 - (pitch + _PITCH) / (2 * _PITCH) * (y1 - y0)

    for lo, hi, colour in ((headpose.FRONTAL, headpose.PROFILE, "#f2f2f2"), (headpose.PROFILE, _YAW, "#e4e4e4")):
        for sign in (-1, 1):
            (a, _), (b, _) = at(sign * lo, 0), at(sign * hi, 0)
            d.rectangle((min(a, b), y0, max(a, b), y1), fill=colour)
    small, label = font_for(10), font_for(11)
    for yaw in range(-90, 91, 30):
        x, _ = at(yaw, 0)
        d.line((x, y0, x, y1), fill="#dddddd")
        d.text((x, y1 + 4), str(yaw), fill="black", font=small, anchor="mt")
    for pitch in range(-40, 41, 20):
        _, y = at(0, pitch)
        d.line((x0, y, x1, y), fill="#dddddd")
        d.text((x0 - 4, y), str(pitch), fill="black", font=small, anchor="rm")
    d.rectangle((x0, y0, x1, y1), outline="black")
    d.text((w / 2, 6), _TITLE, fill="black", font=label, anchor="mt")
    d.text(((x0 + x1) / 2, h - 4), "yaw (degrees; > 0 turned to the picture's right)", fill="black", font=label,
           anchor="mb")
    d.text((4, y0 - 14), "pitch (> 0 chin up)", fill="black", font=small)
    legend = []
    for word, (marker, colour) in _MARKERS.items():
        group = [it for it in shown if it.expression == word]
        for it in group:
            x, y = at(it.yaw, it.pitch)
            _marker(d, marker, x, y, colour)
            d.text((x + _R + 2, y - _R - 2), f"{it.number:03d}" if it.number is not None else "", fill="black",
                   font=small, anchor="lb")
        if group:
            legend.append((marker, colour, f"{word} ({len(group)})"))
    for k, (marker, colour, text) in enumerate(reversed(legend)):
        y = y1 - 12 - 16 * k
        _marker(d, marker, x1 - 110, y, colour)
        d.text((x1 - 100, y), text, fill="black", font=small, anchor="lm")
    return im


def _marker(d: ImageDraw.ImageDraw, marker: str, x: float, y: float, colour: str) -> None:
    box = (x - _R, y - _R, x + _R, y + _R)
    if marker == "o":
        d.ellipse(box, fill=colour)
    elif marker == "^":
        d.polygon([(x, y - _R), (x + _R, y + _R), (x - _R, y + _R)], fill=colour)
    else:
        d.rectangle(box, fill=colour)
