"""prepare-pose.png: each accepted photo's head pose as a point, yaw across and pitch up, marked
by its expression and labelled with its number, over the bands of the frontal, three-quarter and
profile views: a set that sits in the middle band alone shows the face from one side only."""

from __future__ import annotations

import io

from .. import headpose
from ..fileio import atomic_write_bytes
from ..project import POSE_PLOT, Project
from .report import PrepareItem

_MARKERS = {"neutral": ("o", "#4c78a8"), "smile": ("^", "#f58518"), "open mouth": ("s", "#e45756")}
_LIMIT = 90.0


def write(items: list[PrepareItem], project: Project) -> str | None:
    """Draw the accepted photos with a measured pose into the project's prepare-pose.png; its
    name, or None (no file) when no photo has a pose."""
    shown = [it for it in items if it.status == "accepted" and it.yaw is not None]
    if not shown:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.4), dpi=100)
    for lo, hi, colour in ((headpose.FRONTAL, headpose.PROFILE, "#f2f2f2"), (headpose.PROFILE, _LIMIT, "#e4e4e4")):
        for sign in (-1, 1):
            ax.axvspan(sign * lo, sign * hi, color=colour, zorder=0)
    for word, (marker, colour) in _MARKERS.items():
        group = [it for it in shown if it.expression == word]
        if group:
            ax.scatter([it.yaw for it in group], [it.pitch for it in group], marker=marker, color=colour,
                       label=f"{word} ({len(group)})", zorder=2)
    for it in shown:
        ax.annotate(f"{it.number:03d}" if it.number is not None else "", (it.yaw, it.pitch), fontsize=7,
                    xytext=(3, 3), textcoords="offset points")
    ax.set_xlim(-_LIMIT, _LIMIT)
    ax.set_ylim(-45, 45)
    ax.set_xlabel("yaw (degrees; > 0 turned to the picture's right)")
    ax.set_ylabel("pitch (> 0 chin up)")
    ax.set_title("Head pose of the training photos: frontal | three-quarter | profile", fontsize=9)
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    atomic_write_bytes(project.pose_plot, buf.getvalue())
    return POSE_PLOT
