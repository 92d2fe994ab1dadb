"""The likeness heatmap: LoRA files across (as in the grid), weights down; each cell coloured by
the mean distance to the person (green = close) and labelled with it and the match rate."""

from __future__ import annotations

from pathlib import Path

from .board import LikenessReport


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
    dist = np.full((len(weights), len(files)), np.nan)
    cell = {(weights.index(g.weight), files.index(g.file)): g for g in groups}
    for (r, c), g in cell.items():
        if g.mean_distance is not None:
            dist[r, c] = g.mean_distance

    t = report.threshold
    fig, ax = plt.subplots(figsize=(1.6 + 1.25 * len(files), 1.4 + 0.75 * len(weights)), dpi=100)
    cmap = matplotlib.colormaps["RdYlGn_r"].copy()
    cmap.set_bad("#d9d9d9")
    im = ax.imshow(np.ma.masked_invalid(dist), cmap=cmap, vmin=max(0.0, t - 0.3), vmax=t + 0.3, aspect="auto")
    for (r, c), g in cell.items():
        text = "no face" if g.mean_distance is None else f"{g.mean_distance:.2f}\n{g.match_rate:.0%} match"
        if g.clones:
            text += "\nclones"
        ax.text(c, r, text, ha="center", va="center", fontsize=8)
    best = report.best
    if best is not None and best.file in files and best.weight in weights:
        ax.add_patch(plt.Rectangle((files.index(best.file) - 0.5, weights.index(best.weight) - 0.5), 1, 1,
                                   fill=False, lw=3, ec="#1f4e9c"))
    ax.set_xticks(range(len(files)), files, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(len(weights)), [f"{w:g}" for w in weights], fontsize=8)
    ax.set_xlabel("LoRA file (training order)")
    ax.set_ylabel("weight")
    bar = fig.colorbar(im, ax=ax, fraction=0.05)
    bar.set_label(f"mean distance (match < {t:g})", fontsize=8)
    heading = title or "Likeness: mean face distance (lower is closer)"
    if report.tiny:
        heading += "\ntiny test model: noise, not a result"
    ax.set_title(heading, fontsize=9)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    tmp.replace(out)
    return out
