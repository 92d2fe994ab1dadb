"""events.jsonl: every event kind written by EventWriter reads back the same through read_events
and EventLog, and the GUI's progress reads the keys the writer writes."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

import pytest

from facelora import events as ev
from facelora.gui import jobs

# One event of every kind, every field away from its default, so a key the reader drops shows.
EXAMPLES = [
    ev.Start(time=1.0, run="ohwx_20260101000000", total_steps=12, epochs=3, steps_per_epoch=4, images=2,
             repeats=2, batch_size=1, samples_per_epoch=4, first_step=1, device="cpu", mixed_precision="no",
             params={"network_dim": 4, "optimizer_args": ["a=1"]}, notes=["a note"]),
    ev.Step(time=2.0, step=1, epoch=1, loss=0.25, avg_loss=0.5, lr_unet=1e-3, lr_te=1e-4, lr_dlr=2e-3, s_per_it=0.5),
    ev.Skipped(time=2.5, step=2, epoch=1, count=1, message="loss was nan", template="loss was {what}",
               values={"what": "nan"}),
    ev.EpochEnd(time=3.0, epoch=1, step=4, loss=0.3),
    ev.Validation(time=3.2, step=4, epoch=1, loss=0.31, at="step", images=2),
    ev.Saved(time=3.5, path="/p/models/ohwx-step00000004.safetensors", step=4, epoch=1, kind="step"),
    ev.Samples(time=4.0, path=["/p/models/sample/ohwx_e000001_00_7.png"], step=4, epoch=1),
    ev.Likeness(time=4.5, epoch=1, step=4, images=2, detection_rate=0.5, match_rate=0.5, mean_distance=0.41,
                bleed=0.25, copies=1.0, message="likeness: faces 50%, match 50%"),
    ev.End(time=5.0, step=12, epoch=3, avg_loss=0.2, files=["/p/models/ohwx.safetensors"], interrupted=True,
           message="Interrupted at step 12.", template="Interrupted at step {step}.", values={"step": 12},
           seconds=4.0),
    ev.Error(time=6.0, step=12, message="out of memory", template="out of {what}", values={"what": "memory"}),
]


def test_the_examples_cover_every_kind_and_field():
    assert {type(e) for e in EXAMPLES} == set(ev.KINDS.values())
    for e in EXAMPLES:
        default = type(e)()
        assert all(getattr(e, f.name) != getattr(default, f.name) for f in fields(e)), type(e).__name__


def test_every_kind_round_trips_through_the_writer_and_both_readers(tmp_path: Path):
    path = tmp_path / "log" / "events.jsonl"
    writer = ev.EventWriter(path)
    for e in EXAMPLES:
        writer.write(e)
    writer.close()
    assert ev.read_events(path) == EXAMPLES
    log = ev.EventLog(path)
    assert log.refresh() and log.parsed == EXAMPLES
    assert [line["event"] for line in log.events] == [e.KIND for e in EXAMPLES]
    assert log.current_run() == EXAMPLES  # one start: the whole file is the current run


def test_the_writer_stamps_the_time_and_readers_tolerate_other_versions(tmp_path: Path):
    path = tmp_path / "events.jsonl"
    writer = ev.EventWriter(path)
    writer.write(ev.Step(step=3))
    writer.close()
    line = json.loads(path.read_text())
    assert line["event"] == "step" and isinstance(line["time"], float) and line["step"] == 3
    with path.open("a") as f:  # a key this version does not know, a kind it does not know
        f.write('{"event": "step", "step": 4, "future_key": 1}\n{"event": "later-kind"}\n')
    assert ev.read_events(path)[1:] == [ev.Step(step=4)]


def test_progress_reads_what_the_writer_writes(tmp_path: Path):
    path = tmp_path / "events.jsonl"
    writer = ev.EventWriter(path)
    for e in EXAMPLES[:-1]:  # up to the end of an interrupted run
        writer.write(e)
    writer.close()
    prog = jobs.progress(ev.read_events(path), running=False)
    assert (prog.status, prog.step, prog.total_steps, prog.epoch, prog.epochs) == ("stopped", 12, 12, 1, 3)
    assert (prog.loss, prog.avg_loss, prog.lr_unet, prog.lr_te) == (0.25, 0.5, 1e-3, 1e-4)
    assert prog.losses == [(1, 0.25, 0.5)] and prog.message == "Interrupted at step 12."
    assert prog.saved == ["/p/models/ohwx-step00000004.safetensors"]
    assert prog.samples == ["/p/models/sample/ohwx_e000001_00_7.png"]
    assert [(e.epoch, e.detection_rate, e.mean_distance) for e in prog.likeness] == [(1, 0.5, 0.41)]
    assert prog.elapsed_s == 4.0 and prog.eta_s == 0.0
    failed = jobs.progress(ev.read_events(path) + [EXAMPLES[-1]], running=False)
    assert (failed.status, failed.message) == ("failed", "out of memory")


def test_a_resumed_run_starts_a_new_current_run():
    resumed = [*EXAMPLES[:3], ev.Start(time=10.0, total_steps=12, first_step=1), ev.Step(time=11.0, step=2)]
    assert ev.current_run(resumed) == resumed[3:]


def test_event_log_reads_new_lines_only_and_waits_for_a_whole_line(tmp_path: Path):
    path = tmp_path / "events.jsonl"
    log = ev.EventLog(path)
    assert not log.refresh() and log.events == []
    path.write_text('{"event": "start", "time": 0, "total_steps": 10}\n{"event": "step", "st')
    log.refresh()
    assert [e["event"] for e in log.events] == ["start"]
    with path.open("a") as f:
        f.write('ep": 1, "loss": 0.5, "time": 1}\nnot json\n')
    assert log.refresh()
    assert [e["event"] for e in log.events] == ["start", "step"]
    path.write_text('{"event": "start", "time": 5}\n')  # a new run rewrote the file
    log.refresh()
    assert log.events == [{"event": "start", "time": 5}]




def test_start_notes_carry_their_template_and_old_plain_notes_still_read(tmp_path: Path):
    import io

    from rich.console import Console

    from facelora.config import TrainConfig
    from facelora.messages import Message, said
    from facelora.plan import plan_for
    from facelora.train.progress import Reporter

    path = tmp_path / "events.jsonl"
    out = io.StringIO()
    reporter = Reporter(path, None, console=Console(file=out, width=300))
    cfg = TrainConfig()
    note = said("Starting from the LoRA {file}.", file=tmp_path / "start.safetensors")
    reporter.start(cfg, plan_for(cfg, 12), "cpu", 0, [note, said("xformers needs CUDA; PyTorch's SDPA attention "
                                                                   "is used instead.")])
    reporter.close()
    assert f"note: Starting from the LoRA {tmp_path / 'start.safetensors'}." in out.getvalue()  # the English as before
    line = json.loads(path.read_text(encoding="utf-8").splitlines()[0])
    assert line["notes"][0] == {"message": note.text, "template": "Starting from the LoRA {file}.",
                                "values": {"file": str(tmp_path / "start.safetensors")}}
    start = ev.read_events(path)[0]
    assert start.said_notes() == [note.plain(), Message("xformers needs CUDA; PyTorch's SDPA attention is used instead.")]
    old = ev.parse({"event": "start", "notes": ["Resuming at step 4 of 8 (epoch 2) from /p/log/state/x."]})
    assert old.said_notes() == [Message("Resuming at step 4 of 8 (epoch 2) from /p/log/state/x.")]  # text, no template
    edited = ev.parse({"event": "start", "notes": [{"message": "As written.", "template": "At {step}.", "values": {}}]})
    assert [m.text for m in edited.said_notes()] == ["As written."]


@pytest.mark.parametrize("width", [80, 100, 200])
def test_the_parameters_table_never_breaks_a_name(tmp_path: Path, width: int):
    import io

    from rich.console import Console

    from facelora.config import TrainConfig
    from facelora.plan import plan_for
    from facelora.train.progress import Reporter

    out = io.StringIO()
    reporter = Reporter(tmp_path / "events.jsonl", None, console=Console(file=out, width=width))
    cfg = TrainConfig()
    reporter.start(cfg, plan_for(cfg, 12), "cpu", 0, [])
    reporter.close()
    words = {w for line in out.getvalue().splitlines() for w in line.split()}
    assert set(TrainConfig.model_fields) <= words  # every name whole, on one line
    assert max(len(line) for line in out.getvalue().splitlines()) <= width
