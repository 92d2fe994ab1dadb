"""The Train page's parts, without a browser: the start notes in the page's language, the banner a
Start or Resume click leaves once its job has ended, and the loss chart's whole-step ticks."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

pytest.importorskip("gradio")

from facelora import events as ev  # noqa: E402
from facelora.gui import i18n, jobs  # noqa: E402
from facelora.gui.pages import train as page  # noqa: E402
from facelora.messages import said  # noqa: E402


def _run(steps: int, first: int = 1, **start) -> list[ev.Event]:
    events: list[ev.Event] = [ev.Start(time=1.0, total_steps=first + steps - 1, epochs=1,
                                       steps_per_epoch=first + steps - 1, **start)]
    avg = 0.0
    for i, s in enumerate(range(first, first + steps), 1):
        loss = 0.15 + 0.1 * math.sin(s) + 0.3 / s
        avg = (avg * (i - 1) + loss) / i
        events.append(ev.Step(time=1.0 + s, step=s, epoch=1, loss=loss, avg_loss=avg))
    return events


@pytest.mark.parametrize("steps,first", [(1, 1), (2, 1), (17, 1), (80, 1), (3, 40), (4801, 1)])
def test_the_loss_chart_has_whole_steps_on_its_x_axis_and_no_labels_overlap(steps: int, first: int):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = page.loss_chart(jobs.progress(_run(steps, first), running=False))
    FigureCanvasAgg(fig).draw()  # as the PNG the page gets: the ticks and labels are placed
    ax = fig.axes[0]
    low, high = ax.get_xlim()
    ticks = [t for t in ax.get_xticks() if low <= t <= high]
    assert len(ticks) >= 2 and all(t == int(t) for t in ticks), ticks  # never 17.5
    assert first in ticks or low < first < high
    renderer = fig.canvas.get_renderer()
    boxes = sorted((lab.get_window_extent(renderer) for lab in ax.get_xticklabels() if lab.get_text()),
                   key=lambda b: b.x0)
    assert all(a.x1 < b.x0 for a, b in zip(boxes, boxes[1:])), "tick labels overlap"
    assert [lab.get_text() for lab in ax.get_legend().get_texts()] == ["loss", "average"]


def test_the_loss_chart_speaks_the_page_language():
    i18n.set_language("zh-CN")
    try:
        fig = page.loss_chart(jobs.progress(_run(17), running=False))
    finally:
        i18n.set_language("en")
    ax = fig.axes[0]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("步数", "损失")
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["损失", "平均"]
    assert page.loss_chart(jobs.progress([], running=False)) is None  # nothing before the first step


def test_the_start_notes_show_under_the_state_in_the_page_language(tmp_path: Path):
    resumed = said("Resuming at step {step} of {total} (epoch {epoch}) from {folder}.", step=40, total=80, epoch=4,
                   folder=tmp_path / "log" / "state" / "step00000040-epoch000004")
    events = _run(3, notes=[resumed.plain().keys(), said("The tiny test model has random weights: its LoRA files and "
                                                         "samples are noise, not results.").keys(),
                            "An old run's note, as written."])
    prog, idle = jobs.progress(events, running=False), jobs.JobState("train", False)
    english = page.status_html(prog, idle, page.notes_html(events))
    assert 'id="train-notes"' in english and "Notes at the start of the run" in english
    assert f"Resuming at step 40 of 80 (epoch 4) from {tmp_path}" in english
    assert "An old run&#x27;s note, as written." in english
    i18n.set_language("zh-CN")  # the page's language switch calls the same functions again
    try:
        chinese = page.status_html(prog, idle, page.notes_html(events))
    finally:
        i18n.set_language("en")
    assert "训练开始时的提示" in chinese and "第 40 步，共 80 步（第 4 轮）" in chinese and str(tmp_path) in chinese
    assert "微型测试模型的权重是随机的" in chinese and "Resuming" not in chinese and "tiny test model" not in chinese
    assert "An old run&#x27;s note, as written." in chinese  # no template: its English
    assert page.notes_html(_run(2)) == ""  # a run without notes shows no list
    starting = jobs.JobState("train", True, pid=7, started=1e12)
    assert 'id="train-notes"' not in page.status_html(jobs.progress([], True), starting, page.notes_html([]))


def test_a_start_or_resume_reply_gives_way_to_the_state_once_its_job_has_ended():
    resumed = page.started_reply(4242, resume=True)
    assert "Training resumed (process 4242)." in resumed and "Training started" in page.started_reply(7, False)
    finished = jobs.progress(_run(3) + [ev.End(step=3, epoch=1, **said("Training finished.").keys())], False)
    stopped = jobs.progress(_run(3) + [ev.End(step=3, epoch=1, interrupted=True,
                                              **said("Interrupted at step {step}.", step=3).keys())], False)
    running = jobs.JobState("train", True, pid=4242)
    assert page.action_after(resumed, finished, running) is None  # its job still runs: the reply stands
    ended = jobs.JobState("train", False, pid=4242, returncode=0)
    after = page.action_after(resumed, finished, ended)
    assert "Finished" in after and "fl-ok" in after and "resumed" not in after
    assert "Stopped" in page.action_after(resumed, stopped, ended)
    assert "Finished" in page.action_after(resumed, finished, jobs.JobState("train", True, pid=5))  # another job
    refused = page.note("Nothing to resume: the last run finished at step 3. Start trains a new run.", "warn")
    assert page.action_after(refused, finished, ended) is None  # any other reply stays as it is
    assert page.action_after(None, finished, ended) is None and page.action_after("", finished, ended) is None
    i18n.set_language("zh-CN")
    try:
        assert "已完成" in page.action_after(resumed, finished, ended)
    finally:
        i18n.set_language("en")
