"""`PROJECT/report.html`: one page that shows a whole run, built only from the files the steps
left in the project folder (so it can be rebuilt at any time, and the folder copied elsewhere):
the contact sheet, the plan, the loss curve, the grid, the likeness heatmap, the best file and
weight, and the commands that reproduce each step."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from . import events as ev
from .fileio import atomic_write_text, read_json
from .project import Project


def _figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(7, 3.2), dpi=100)


def _finish(fig, ax, xlabel: str, legend: str, out: Path) -> Path:
    """Label, legend and grid the chart, and write it to `out`."""
    import matplotlib.pyplot as plt

    ax.set_xlabel(xlabel)
    ax.set_ylabel("loss")
    ax.legend(loc=legend)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out


def loss_chart(events: list[ev.Event], out: Path) -> Path | None:
    """Current and average loss against step, as a PNG; None when there are no steps yet."""
    steps = [e for e in events if isinstance(e, ev.Step) and e.loss is not None]
    if not steps:
        return None
    fig, ax = _figure()
    x = [e.step for e in steps]
    ax.plot(x, [e.loss for e in steps], lw=0.8, alpha=0.45, label="loss")
    if any(e.avg_loss is not None for e in steps):
        ax.plot(x, [e.avg_loss for e in steps], lw=1.8, label="average loss")
    for e in events:
        if isinstance(e, ev.Saved) and e.step:
            ax.axvline(e.step, color="grey", lw=0.5, ls=":")
    return _finish(fig, ax, "step", "upper right", out)


def epoch_loss_chart(events: list[ev.Event], out: Path) -> Path | None:
    """Training loss (each epoch's mean) and validation loss against epoch, as a PNG: where they
    part, the LoRA starts to learn the photos rather than the person. None before an epoch ends."""
    train = {e.epoch: e.loss for e in events if isinstance(e, ev.EpochEnd) and e.loss is not None}
    val = {e.epoch: e.loss for e in events if isinstance(e, ev.Validation) and e.at == "epoch" and e.loss is not None}
    if not train:
        return None
    fig, ax = _figure()
    ax.plot(list(train), list(train.values()), marker="o", lw=1.6, label="training loss (epoch mean)")
    if val:
        ax.plot(list(val), list(val.values()), marker="s", lw=1.6, label="validation loss (held-out photos)")
    ax.xaxis.get_major_locator().set_params(integer=True)
    return _finish(fig, ax, "epoch", "best", out)


def _img(project: Project, path: Path, alt: str) -> str:
    if not path.is_file():
        return f"<p class=missing>{html.escape(alt)}: not made yet.</p>"
    rel = path.relative_to(project.root).as_posix()
    return f'<a href="{html.escape(rel)}"><img src="{html.escape(rel)}" alt="{html.escape(alt)}"></a>'


def _table(rows: list[tuple[str, Any]]) -> str:
    body = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>"


_CSS = """
body{font:15px/1.45 system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{margin-bottom:.2em} h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
img{max-width:100%;border:1px solid #ccc} table{border-collapse:collapse}
th,td{text-align:left;padding:.2em .8em;border-bottom:1px solid #eee;vertical-align:top}
.best{background:#eef8ee;border:1px solid #9c9;padding:.8em 1em;border-radius:6px}
.warn{background:#fff6e0;border:1px solid #e8c56b;padding:.8em 1em;border-radius:6px}
pre{background:#f5f5f5;padding:.6em;overflow-x:auto} .missing{color:#999}
"""


def write_report(project: Project, plan: dict[str, Any] | None, commands: list[str],
                 notes: list[str] | None = None) -> Path:
    """Build report.html from what the project folder holds now."""
    settings = project.settings()
    events = ev.read_events(project.events_path)
    chart = loss_chart(events, project.loss_chart)
    per_epoch = epoch_loss_chart(events, project.epoch_loss_chart)
    parts = [f"<h1>facelora report: {html.escape(settings.trigger)}</h1>"]
    for n in notes or []:
        parts.append(f'<p class="warn">{html.escape(n)}</p>')

    parts.append("<h2>Photos</h2>")
    prep = read_json(project.prepare_report)
    if prep:
        items = prep.get("items", [])
        acc = sum(1 for i in items if i.get("status") == "accepted")
        parts.append(f"<p>{acc} of {len(items)} photos accepted.</p>")
        rejected = [(Path(i["source"]).name, i.get("reason", "")) for i in items if i.get("status") == "rejected"]
        if rejected:
            parts.append("<p>Rejected:</p>" + _table(rejected))
    parts.append(_img(project, project.contact_sheet, "contact sheet"))
    parts.append(_coverage((prep or {}).get("coverage"), project))

    parts.append("<h2>Plan</h2>")
    if plan:
        keys = ("images", "repeats", "epochs", "batch_size", "steps_per_epoch", "total_steps", "reg_images",
                "validation_images", "validation_photos")
        parts.append(_table([(k.replace("_", " "), ", ".join(plan[k]) if isinstance(plan[k], list) else plan[k])
                             for k in keys if k in plan]))

    parts.append("<h2>Training</h2>")
    end = next((e for e in reversed(events) if isinstance(e, (ev.End, ev.Error))), None)
    if end:
        parts.append(f"<p>{html.escape(_describe_end(end))}</p>")
    parts.append(_img(project, chart, "loss curve") if chart else "<p class=missing>No training steps logged yet.</p>")
    if per_epoch:
        parts.append(_img(project, per_epoch, "training and validation loss per epoch"))
    live = [e for e in events if isinstance(e, ev.Likeness)]
    if live:
        parts.append("<p>Likeness of the samples while training:</p>"
                     + _table([(f"epoch {e.epoch}", e.message.removeprefix("likeness: ")) for e in live]))
    saved = [e.path for e in events if isinstance(e, ev.Saved) and e.path]
    if saved:
        parts.append("<p>Files saved:</p><ul>" + "".join(f"<li>{html.escape(Path(p).name)}</li>" for p in saved) + "</ul>")

    parts.append("<h2>Grid: saved files x LoRA weights</h2>")
    parts.append(_img(project, project.grid_png, "X/Y grid"))

    parts.append("<h2>Likeness scoreboard: alike, flexible, not a copy, not on everyone</h2>")
    parts.append(_scoreboard(read_json(project.likeness_json)))
    parts.append(_img(project, project.heatmap_png, "scoreboard heatmap"))

    parts.append("<h2>Reproduce</h2><pre>" + html.escape("\n".join(commands)) + "</pre>")
    page = (f"<!doctype html><html><head><meta charset=utf-8><title>facelora: {html.escape(settings.trigger)}"
            f"</title><style>{_CSS}</style></head><body>{''.join(parts)}</body></html>")
    out = project.report_html
    atomic_write_text(out, page)
    return out




def _coverage(coverage: dict[str, Any] | None, project: Project) -> str:
    """The photos' head poses and expressions (prepare's audit), with its warnings and plot."""
    if not coverage or not coverage.get("photos"):
        return ""
    counts = lambda d: ", ".join(f"{n} {what}" for what, n in d.items())  # noqa: E731
    parts = [f"<p>Head pose: {html.escape(counts(coverage.get('views', {})))}; expression: "
             f"{html.escape(counts(coverage.get('expressions', {})))}.</p>"]
    parts += [f'<p class="warn">{html.escape(w)}</p>' for w in coverage.get("warnings", [])]
    if coverage.get("plot"):
        parts.append(_img(project, project.pose_plot, "head poses of the training photos"))
    return "".join(parts)


def _describe_end(e: ev.End | ev.Error) -> str:
    if isinstance(e, ev.Error):
        return f"Training stopped: {e.message or 'an error'}"
    took = f" in {e.seconds:.0f} s" if e.seconds is not None else ""
    return f"Trained {e.step} steps{took}."


def _scoreboard(likeness: dict[str, Any] | None) -> str:
    """The pick (or why there is none), the rule, and one line per score: what the files reached,
    or why a score has nothing to show."""
    if not likeness:
        return "<p class=missing>Not scored yet.</p>"
    best = likeness.get("best")
    parts = []
    if best:
        parts.append(f'<p class="best">Pick: <b>{html.escape(str(best.get("file")))}</b> at weight '
                     f'<b>{best.get("weight")}</b>. {html.escape(str(likeness.get("verdict", "")))}</p>')
    else:
        parts.append(f'<p class="warn">{html.escape(str(likeness.get("verdict") or "No generated image had a face, so there is no pick."))}</p>')
    parts.append(f"<p>Rule: {html.escape(str(likeness.get('rule', '')))}</p>")
    groups = [g for g in likeness.get("groups", []) if g.get("file") and g.get("weight") not in (None, 0)]
    parts.append(_table([(name, _score_line(groups, *how)) for name, *how in _SCORES]))
    for w in likeness.get("warnings", [])[:10]:
        parts.append(f'<p class="warn">{html.escape(str(w))}</p>')
    for s in likeness.get("skipped", []):
        parts.append(f"<p class=missing>skipped {html.escape(Path(s['path']).name)}: {html.escape(s['reason'])}</p>")
    if likeness.get("probes"):
        parts.append(f"<p>Probe prompts: <code>{html.escape(likeness['probes'])}</code> (edit it to add your own).</p>")
    baseline = likeness.get("baseline")
    if isinstance(baseline, dict) and baseline.get("mean") is not None:
        parts.append(f"<p>How alike the training photos are to each other (leave-one-out distance): "
                     f"{baseline['mean']:.3f} on average.</p>")
    return "".join(parts)


# (row, the groups' key, how many faces it rests on, best is min or max, format, no-faces message)
_SCORES = [
    ("likeness (mean distance)", "mean_distance", "faces", min, "{:.3f}", "no faces in the likeness images"),
    ("flexibility (match rate)", "flexibility", "flex_faces", max, "{:.0%}", "no faces in the flexibility images"),
    ("bleed (other people who are the person)", "bleed", "bleed_faces", min, "{:.0%}", "no faces in the bleed images"),
    ("copies of a training photo", "copies", "faces", min, "{:d}", "no faces, nothing to compare"),
    ("validation loss", "validation_loss", None, min, "{:.4f}", "— (not recorded by training)"),
]


def _score_line(groups: list[dict[str, Any]], key: str, faces: str | None, best, fmt: str, empty: str) -> str:
    values = [g[key] for g in groups if g.get(key) is not None and (faces is None or g.get(faces))]
    if not values:
        return empty
    worst = min if best is max else max
    return f"best {fmt.format(best(values))}, worst {fmt.format(worst(values))} over {len(values)} file/weight(s)"
