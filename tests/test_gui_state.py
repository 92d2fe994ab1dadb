"""The GUI's paths, terminal and state without a browser: folders added from the page, pickers
that stay inside them, errors as messages, the job's output on the GUI's terminal, the Train
page's view of a resumed or restarted run, numbers, the training command and sample prompts."""

from __future__ import annotations

import io
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("gradio")

import gradio as gr  # noqa: E402

from facelora import events as ev  # noqa: E402
from facelora.errors import FaceloraError  # noqa: E402
from facelora.gui import common, jobs, pickers  # noqa: E402
from facelora.gui.settings import SETTINGS_FILE, GuiSettings  # noqa: E402
from facelora.gui.workspace import PathError, Workspace  # noqa: E402
from facelora.project import init_project  # noqa: E402


def test_a_folder_added_from_the_page_is_served_kept_and_named_in_refusals(tmp_path: Path):
    ws_dir, photos = tmp_path / "ws", tmp_path / "photos"
    ws_dir.mkdir(), photos.mkdir()
    (photos / "a.jpg").write_bytes(b"x")
    ws = Workspace.of(ws_dir)
    served = ws.served
    with pytest.raises(PathError) as refused:
        ws.resolve(str(photos / "a.jpg"))
    assert f"add {photos}" in str(refused.value) and "Project page" in str(refused.value)
    assert ws.add_root(str(photos)) == photos.resolve()
    assert ws.resolve(str(photos / "a.jpg")) == (photos / "a.jpg").resolve()
    assert served is ws.served and str(photos.resolve()) in served  # gradio's allowed_paths list
    assert GuiSettings.read(ws_dir).allow == [str(photos.resolve())]
    assert "allow" in (ws_dir / SETTINGS_FILE).read_text()
    for bad, why in (("relative/path", "full path"), (str(tmp_path / "none"), "not a folder"),
                     ("/", "whole drive"), (str(photos / "sub" / ".."), "already")):
        with pytest.raises(PathError, match=why):
            ws.add_root(bad)
    assert GuiSettings.read(ws_dir).allow == [str(photos.resolve())]  # nothing else was kept


def test_added_folders_return_at_the_next_start_but_not_over_the_network(tmp_path: Path):
    from facelora.gui.app import open_workspace

    ws_dir, models = tmp_path / "ws", tmp_path / "models"
    ws_dir.mkdir(), models.mkdir()
    GuiSettings([str(models)], "zh-CN").write(ws_dir)
    try:
        ws = open_workspace(ws_dir, [], listen=False)
        assert models.resolve() in ws.roots.all and str(models.resolve()) in ws.served
        from facelora.gui.i18n import language
        assert language() == "zh-CN"
        assert common.BUG_LOG[0] == ws_dir.resolve() / "facelora-gui.log"
        listening = open_workspace(ws_dir, [], listen=True)
        with pytest.raises(PathError, match="--listen"):
            listening.add_root(str(tmp_path))
    finally:
        from facelora.gui.i18n import set_language
        set_language("en")
    (ws_dir / SETTINGS_FILE).write_text("allow = [")
    with pytest.raises(FaceloraError, match=SETTINGS_FILE):
        GuiSettings.read(ws_dir)


def test_pickers_list_only_what_lies_inside_the_roots(tmp_path: Path):
    ws_dir, secret = tmp_path / "ws", tmp_path / "secret"
    (ws_dir / "models" / "sd15").mkdir(parents=True)
    (ws_dir / "models" / "face.safetensors").write_bytes(b"x")
    (ws_dir / "models" / "notes.txt").write_text("x")
    secret.mkdir()
    (ws_dir / "models" / "out").symlink_to(secret)
    ws = Workspace.of(ws_dir)
    root = str(ws_dir.resolve())
    assert pickers.listing(ws, root) == ["models/"]  # a root: no way up
    inside = pickers.listing(ws, root + "/models", (".safetensors",))
    assert inside == ["..", "sd15/", "face.safetensors"]  # the link out and other files are not offered
    assert pickers.step(ws, root, "models/") == (root + "/models", None)
    assert pickers.step(ws, root + "/models", "face.safetensors") == (root + "/models", root + "/models/face.safetensors")
    assert pickers.step(ws, root, "..") == (root, None)  # never above a root
    with pytest.raises(PathError):
        pickers.listing(ws, str(secret))
    with pytest.raises(PathError):
        pickers.step(ws, root + "/models", "out/")


def test_friendly_turns_refusals_into_messages_and_logs_bugs(tmp_path: Path, monkeypatch, capsys):
    monkeypatch.setattr(common, "BUG_LOG", [tmp_path / "gui.log"])

    @common.friendly(outputs=3)
    def refused():
        raise FaceloraError("Choose one of the project's LoRA files.")

    @common.friendly()
    def bug():
        return {}["missing"]

    message, *rest = refused()
    assert "fl-error" in message and "Choose one of the project" in message
    assert all(isinstance(r, type(gr.skip())) for r in rest) and len(rest) == 2
    assert "Traceback" not in capsys.readouterr().err  # a refusal is no bug
    shown = bug()
    assert "KeyError" in shown and str(tmp_path / "gui.log") in shown
    assert "Traceback" in capsys.readouterr().err and "KeyError" in (tmp_path / "gui.log").read_text()


def test_numbers_are_written_short():
    assert common.num(3.7980617469479953e-07) == "3.8e-07"
    assert common.num(0.00012345) == "0.000123"
    assert (common.num(1.0), common.num(64.0), common.num(7), common.num(True)) == ("1", "64", "7", "True")
    assert "3.8e-07" in common.table([("learning rate", 3.7980617469479953e-07)])


def test_the_job_output_is_echoed_to_the_terminal(tmp_path: Path):
    out_file = tmp_path / "train.out"
    with out_file.open("wb") as f:
        child = subprocess.Popen([sys.executable, "-c", "import time\nprint('step 1/4', flush=True)\n"
                                  "time.sleep(0.3)\nprint('step 4/4 done', flush=True)"], stdout=f)
        terminal = io.StringIO()
        jobs.echo(out_file, "train", child, terminal, every_s=0.05)
    text = terminal.getvalue()
    assert "train started" in text and "step 1/4" in text and "step 4/4 done" in text
    assert text.index("step 4/4") < text.index("train ended (exit code 0)")


def _run(first_step: int, saved: list[str], end: dict | None, t0: float) -> list[dict]:
    out = [{"event": "start", "time": t0, "total_steps": 8, "epochs": 2, "first_step": first_step}]
    for i, name in enumerate(saved):
        out.append({"event": "step", "time": t0 + i + 1, "step": first_step + i + 1, "loss": 0.1})
        out.append({"event": "saved", "time": t0 + i + 1, "path": name})
    return out + ([{"event": "end", "time": t0 + 9, **end}] if end else [])


def test_the_saved_files_are_the_whole_run_after_a_resume():
    older = _run(0, ["old.safetensors"], {"step": 8}, 10.0)  # an earlier, finished run
    first = _run(0, ["ohwx-000001.safetensors"], {"step": 4, "interrupted": True}, 100.0)
    resumed = _run(4, ["ohwx-000002.safetensors", "ohwx.safetensors"], {"step": 8}, 200.0)
    run = jobs.whole_run([e for e in map(ev.parse, older + first + resumed)])
    prog = jobs.progress(run, running=False)
    assert prog.saved == ["ohwx-000001.safetensors", "ohwx-000002.safetensors", "ohwx.safetensors"]
    assert prog.status == "finished" and len(prog.losses) == 3
    part = jobs.progress([e for e in map(ev.parse, first + resumed[:3])], running=True)
    assert part.status == "running" and part.message == ""  # the resumed part is no longer "stopped"


def test_after_start_the_previous_run_is_not_shown(tmp_path: Path):
    from facelora.gui.pages.train import nothing_to_resume, shown_events, status_html

    finished = [e for e in map(ev.parse, _run(0, ["ohwx.safetensors"], {"step": 8}, time.time() - 60))]
    starting = jobs.JobState("train", True, 123, ["train"], time.time())
    assert shown_events(finished, starting) == []
    html = status_html(jobs.progress([], True), starting)
    assert 'data-status="running"' in html and "Finished" not in html and "Starting" in html
    ended = jobs.JobState("train", False, 123, ["train"], time.time() - 120, returncode=0)
    assert shown_events(finished, ended) == finished
    p = init_project(tmp_path / "p", "ohwx")
    assert "no run has started" in nothing_to_resume(p)
    p.events_path.parent.mkdir(parents=True, exist_ok=True)
    p.events_path.write_text("".join(__import__("json").dumps(e) + "\n" for e in _run(0, ["a"], {"step": 8}, 5.0)))
    assert "Nothing to resume: the last run finished at step 8" in nothing_to_resume(p)
    stopped = _run(0, ["ohwx-000001.safetensors"], {"step": 4, "interrupted": True}, 50.0)
    with p.events_path.open("a") as f:  # a new run appends to events.jsonl, and is stopped
        f.write("".join(__import__("json").dumps(e) + "\n" for e in stopped))
    assert nothing_to_resume(p) is None  # a stopped run resumes


def test_a_resumed_run_keeps_the_stopped_run_in_view_while_it_loads(tmp_path: Path):
    from facelora.gui.pages.train import shown_events, state_note, status_html

    stopped = [e for e in map(ev.parse, _run(0, ["ohwx-interrupted-step00000004.safetensors"],
                                             {"step": 4, "interrupted": True, "message": "Interrupted at step 4."},
                                             time.time() - 60))]
    resuming = jobs.JobState("train", True, 123, ["train"], time.time())
    assert shown_events(stopped, resuming, resuming=True) == stopped  # its files and curve stay
    assert shown_events(stopped, resuming) == []  # a new run does not show them
    prog = jobs.progress(stopped, True)
    assert prog.saved == ["ohwx-interrupted-step00000004.safetensors"]
    html = status_html(prog, resuming, "<p>resume note</p>")
    assert 'data-status="running"' in html and "Starting" in html  # loading: not "Stopped" any more
    assert "Interrupted at step 4" not in html and "resume note" not in html
    p = init_project(tmp_path / "p", "ohwx")
    done = jobs.progress(stopped, False)
    assert "No training state was saved" in state_note(p, done)
    (p.state_dir / "step00000004-epoch000001").mkdir(parents=True)
    (p.state_dir / "step00000004-epoch000001" / "manifest.json").write_text("{}")
    assert "The training state of step 4 is saved (log/state/step00000004-epoch000001)" in state_note(p, done)
    html = status_html(done, jobs.JobState("train", False), state_note(p, done))
    assert 'data-status="stopped" data-step="4"' in html and "Interrupted at step 4" in html
    assert state_note(p, jobs.progress(stopped[:-1] + [ev.End(step=8)], False)) == ""  # finished: nothing to say


def test_print_training_command_has_both_command_lines(tmp_path: Path):
    from facelora.gui.pages.tools import commands

    p = init_project(tmp_path / "p", "ohwx", "woman")
    text = commands(p)
    assert f"facelora train {p.root}" in text
    assert "accelerate launch" in text and "train_network.py" in text
    assert "--network_dim=128" in text and "--output_name=ohwx" in text
    assert f"--train_data_dir={(p.root / 'image').resolve()}" in text


def test_typed_sample_prompts_become_the_sample_prompts_file(tmp_path: Path):
    from facelora.gui.fields import field_specs, to_widget
    from facelora.gui.pages.params import prompts_text, save_params

    ws = Workspace.of(tmp_path)
    p = ws.create("p", "ohwx", "woman")
    specs = field_specs()
    values = [to_widget(s, getattr(p.train_config(), s.name)) for s in specs]
    message, _, named = save_params(ws, p, specs, values, "ohwx woman, portrait --n blurry --s 20\n")
    assert "Saved in facelora.toml" in message
    assert p.sample_prompts.read_text() == "ohwx woman, portrait --n blurry --s 20\n"
    assert named == str(p.sample_prompts) and p.train_config().sample_prompts == str(p.sample_prompts)
    assert prompts_text(ws, p.train_config()).startswith("ohwx woman, portrait")


def test_tensorboard_serves_the_project_log_on_localhost(tmp_path: Path):
    import urllib.request

    from facelora.gui.pages import tools

    p = init_project(tmp_path / "p", "ohwx")
    logdir, port = tools.tensorboard(p)
    child = tools._boards[Path(logdir)][0]
    try:
        assert Path(logdir) == (p.root / "log").resolve()
        assert tools.tensorboard(p) == (logdir, port)  # one per log folder
        deadline, status = time.monotonic() + 120, None
        while time.monotonic() < deadline and child.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as r:
                    status = r.status
                break
            except OSError:
                time.sleep(1)
        assert status == 200, f"TensorBoard did not answer (exit code {child.poll()})"
    finally:
        child.terminate()
        child.wait(30)


def test_a_gui_started_on_one_project_lists_that_project_only(tmp_path: Path):
    from facelora.gui.app import open_workspace

    alice = init_project(tmp_path / "alice", "ohwx")
    init_project(tmp_path / "bob", "sks")  # a sibling project: never offered
    ws = open_workspace(alice.root, [], listen=False)
    assert ws.projects() == ["."] and ws.open(".").root == alice.root.resolve()
    with pytest.raises(PathError):
        ws.open(str(tmp_path / "bob"))
    assert (alice.root / "facelora-gui.log") == common.BUG_LOG[0]


def test_a_bug_in_a_timer_is_logged_once_and_the_page_keeps_its_state(tmp_path: Path, monkeypatch, capsys):
    monkeypatch.setattr(common, "BUG_LOG", [tmp_path / "gui.log"])

    @common.ticking(2)
    def tick():
        raise RuntimeError("broken")

    for _ in range(3):
        assert all(isinstance(v, type(gr.skip())) for v in tick())
    assert capsys.readouterr().err.count("Traceback") == 1


def test_the_plan_page_warns_outside_the_tutorial_ranges(tmp_path: Path):
    from facelora.gui.pages.params import plan_html_for

    ws = Workspace.of(tmp_path)
    # 2 images, 1 epoch, 4 steps: every number lies outside the tutorial's ranges
    shown = plan_html_for(ws, "", None, 2, 1, 4, 1, "ohwx", 1, 1, None)
    assert "total steps" in shown and shown.count("fl-warn") >= 3
    assert "outside the tutorial" in shown and "at least 10" in shown
    calm = plan_html_for(ws, "", None, 15, 8, 3600, 1, "ohwx", 1, 1, None)  # 15 x 30 repeats x 8 epochs
    assert "outside the tutorial" not in calm and "at least 10" not in calm


def _run_events(tmp_path: Path, end) -> list[ev.Event]:
    """A run's events as training writes them (its Reporter), ended by `end(reporter)`."""
    from rich.console import Console

    from facelora.train.progress import Reporter

    path = tmp_path / "log" / "events.jsonl"
    reporter = Reporter(path, None, console=Console(file=io.StringIO()))
    reporter.event(ev.Start(total_steps=40, epochs=2, steps_per_epoch=20))
    reporter.step(20, 1, 0.25, 0.3, {"lr/unet": 1e-4})
    reporter.event(ev.Likeness(epoch=1, step=20, images=2, detection_rate=0.5, match_rate=0.5, mean_distance=0.41,
                               message="likeness: faces 50%, match 50%, distance 0.410"))
    end(reporter)
    reporter.close()
    log = ev.EventLog(path)
    log.refresh()
    return jobs.whole_run(log.parsed)


def test_the_train_page_shows_a_finished_and_an_interrupted_run_in_chinese(tmp_path: Path):
    from facelora.gui import i18n
    from facelora.gui.pages.train import likeness_html, status_html
    from facelora.train.loop import finished_message, interrupted_message
    from facelora.train.state import LoopState

    state = LoopState(seed=1)
    state.global_step, state.epoch = 40, 2
    state.record(0.25, 20)
    final = tmp_path / "models" / "ohwx.safetensors"
    done = _run_events(tmp_path / "done", lambda r: r.end(40, 2, 0.25, [final], finished_message(state, final, False)))
    stopped = _run_events(tmp_path / "stopped", lambda r: r.end(
        20, 1, 0.25, [], interrupted_message(20, tmp_path / "ohwx-step00000020.safetensors"), interrupted=True))
    idle = jobs.JobState("train", False)
    english_done = status_html(jobs.progress(done, False), idle)
    assert "Training finished: 40 steps, 2 epochs" in english_done  # the English page as before
    i18n.set_language("zh-CN")
    try:
        shown_done = status_html(jobs.progress(done, False), idle)
        shown_stopped = status_html(jobs.progress(stopped, False), idle)
        likeness = likeness_html(jobs.progress(done, False))
    finally:
        i18n.set_language("en")
    assert "训练完成：40 步，2 轮" in shown_done and str(final) in shown_done and 'data-status="finished"' in shown_done
    assert "Training finished" not in shown_done and "Final LoRA" not in shown_done
    assert "已在第 20 步中断。已保存 ohwx-step00000020.safetensors。" in shown_stopped
    assert 'data-status="stopped"' in shown_stopped and "Interrupted" not in shown_stopped
    assert "第 1 轮：人脸 50%，匹配 50%，距离 0.410" in likeness and "faces" not in likeness
    assert "epoch 1: faces 50%, match 50%, distance 0.410" in likeness_html(jobs.progress(done, False))


def test_a_run_that_diverged_shows_its_error_in_chinese(tmp_path: Path):
    from facelora.gui import i18n
    from facelora.gui.pages.train import status_html
    from facelora.train.loop import TrainingDiverged, reported, skipped
    from facelora.config import TrainConfig
    from facelora.train.state import LoopState

    state, cfg = LoopState(seed=1), TrainConfig(max_nonfinite_steps=1)

    def diverge(reporter):
        with pytest.raises(TrainingDiverged):
            with reported(reporter, state):
                state.global_step = 21
                skipped(state, reporter, cfg)

    events = _run_events(tmp_path, diverge)
    assert [type(e).__name__ for e in events[-2:]] == ["Skipped", "Error"]
    assert events[-2].message.startswith("Step 21: the loss or gradient is NaN/inf")  # the terminal's English
    i18n.set_language("zh-CN")
    try:
        shown = status_html(jobs.progress(events, False), jobs.JobState("train", False))
    finally:
        i18n.set_language("en")
    assert 'data-status="failed"' in shown and "训练已停止：连续 1 步的损失为 NaN/inf" in shown
    assert "Likely causes" not in shown
