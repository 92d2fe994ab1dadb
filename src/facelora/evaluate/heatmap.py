"""The scoreboard as a small multiple: one heatmap per score, each with LoRA files across (as in
the grid) and weights down: likeness (mean distance, green = close), flexibility (match rate on
the flexibility prompts), bleed (share of other people's faces that are the person), copies
(faces that copy a training photo) and the validation loss. A panel with nothing to show says
why ("no faces", "no bleed prompts", "not recorded") instead of drawing an empty grid. The pick
has a blue frame in every panel."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .board import GroupScore, LikenessReport


@dataclass(frozen=True)
class Panel:
    title: str
    value: Callable[[GroupScore], float | None]
    text: Callable[[GroupScore], str]
    cmap: str  # green where the score is good
    vmin: float
    vmax: float
    empty: str  # what the panel says when no cell has a value


def _pct(v: float | None) -> str:
    return "—" if v is None else f"{v:.0%}"


def panels(threshold: float) -> list[Panel]:
    return [
        Panel("likeness: mean distance (lower = closer)", lambda g: g.mean_distance,
              lambda g: "no face" if g.mean_distance is None else f"{g.mean_distance:.2f}\n{g.match_rate:.0%} match",
              "RdYlGn_r", max(0.0, threshold - 0.3), threshold + 0.3, "no faces in the likeness images"),
        Panel("flexibility: match rate, other poses and settings", lambda g: g.flexibility if g.flex_faces else None,
              lambda g: "no face" if not g.flex_faces else _pct(g.flexibility),
              "RdYlGn", 0.0, 1.0, "no faces in the flexibility images (or no flexibility prompts)"),
        Panel("bleed: other people with the face (lower = better)", lambda g: g.bleed,
              lambda g: "no face" if g.bleed is None else _pct(g.bleed),
              "RdYlGn_r", 0.0, 1.0, "no faces in the bleed images (or no bleed prompts)"),
        Panel("copies of a training photo", lambda g: float(g.copies) if g.faces + g.flex_faces else None,
              lambda g: "no face" if not g.faces + g.flex_faces else (str(g.copies) + ("\n" + g.copy_of[0] if g.copy_of else "")),
              "RdYlGn_r", 0.0, 3.0, "no faces, so nothing to compare with the photos"),
        Panel("validation loss (lower = better)", lambda g: g.validation_loss,
              lambda g: "—" if g.validation_loss is None else f"{g.validation_loss:.4f}",
              "RdYlGn_r", 0.0, 0.0, "not recorded by training"),
    ]


def write_heatmap(report: LikenessReport, out: Path, title: str | None = None) -> Path | None:
    """Write the PNG; None when no group has both a file and a weight (nothing to lay out)."""
    groups = [g for g in report.groups if g.file is not None and g.weight is not None]
    if not groups:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    files = sorted({g.file for g in groups}, key=lambda f: min(g.order for g in groups if g.file == f))
    weights = sorted({g.weight for g in groups})
    cell = {(weights.index(g.weight), files.index(g.file)): g for g in groups}
    shown = panels(report.threshold)
    cols = min(3, len(shown))
    rows = -(-len(shown) // cols)
    fig, axes = plt.subplots(rows, cols, dpi=100, squeeze=False,
                             figsize=(cols * (1.2 + 0.95 * len(files)), rows * (1.5 + 0.55 * len(weights)) + 0.4))
    for ax in axes.flat[len(shown):]:
        ax.axis("off")
    best = report.best
    if len(shown) < rows * cols:  # a free panel: what the blue frame means
        import textwrap

        said = f"Pick (blue frame): {best.file} at weight {best.weight:g}" if best else report.verdict
        axes.flat[-1].text(0, 0.5, textwrap.fill(said, 48) + "\n\n" + textwrap.fill(report.rule, 48),
                           fontsize=7, va="center", transform=axes.flat[-1].transAxes)
    for ax, panel in zip(axes.flat, shown):
        grid = np.full((len(weights), len(files)), np.nan)
        for (r, c), g in cell.items():
            v = panel.value(g)
            grid[r, c] = np.nan if v is None else v
        cmap = matplotlib.colormaps[panel.cmap].with_extremes(bad="#e4e4e4")
        vmin, vmax = panel.vmin, panel.vmax
        if vmax <= vmin:  # a scale of its own (the loss)
            finite = grid[np.isfinite(grid)]
            vmin, vmax = (float(finite.min()), float(finite.max()) + 1e-9) if finite.size else (0.0, 1.0)
        ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto")
        if np.isfinite(grid).any():
            for (r, c), g in cell.items():
                ax.text(c, r, panel.text(g), ha="center", va="center", fontsize=7)
        else:
            ax.text((len(files) - 1) / 2, (len(weights) - 1) / 2, panel.empty.replace(" (", "\n("),
                    ha="center", va="center", fontsize=8, color="#555", wrap=True)
        if best is not None and best.file in files and best.weight in weights:
            ax.add_patch(plt.Rectangle((files.index(best.file) - 0.5, weights.index(best.weight) - 0.5), 1, 1,
                                       fill=False, lw=3, ec="#1f4e9c"))
        ax.set_xticks(range(len(files)), files, rotation=30, ha="right", fontsize=7)
        ax.set_yticks(range(len(weights)), [f"{w:g}" for w in weights], fontsize=7)
        ax.set_title(panel.title, fontsize=8)
        ax.set_ylabel("weight", fontsize=7)
    heading = title or f"Scoreboard per LoRA file (across) and weight (down); match = distance < {report.threshold:g}"
    if report.tiny:
        heading += " — tiny test model: noise, not a result"
    fig.suptitle(heading, fontsize=9)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    tmp.replace(out)
    return out
