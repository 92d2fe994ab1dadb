"""The set's spread of head poses and expressions (prepare/audit.coverage): a warning for a set
seen from one side only or with one expression, none for a varied set."""

from __future__ import annotations

from facelora.prepare import audit
from facelora.prepare.report import PrepareItem


def _items(poses: list[tuple[float, str]]) -> list[PrepareItem]:
    return [PrepareItem(source=f"/p/{i}.png", status="accepted", number=i + 1, yaw=y, pitch=0.0, expression=e)
            for i, (y, e) in enumerate(poses)]


def test_a_varied_set_has_no_warning():
    cov = audit.coverage(_items([(0, "smile"), (-25, "neutral"), (30, "smile"), (60, "open mouth")]))
    assert cov.views == {"frontal": 1, "three-quarter": 2, "profile": 1}
    assert cov.expressions == {"smile": 2, "neutral": 1, "open mouth": 1}
    assert cov.warnings == []


def test_all_frontal_and_all_one_expression_are_both_said():
    cov = audit.coverage(_items([(3, "smile"), (-8, "smile"), (12, "smile")]))
    assert len(cov.warnings) == 2
    assert cov.warnings[0].startswith("no three-quarter view or profile: all 3 photo(s) face the camera")
    assert cov.warnings[1].startswith("one expression (smile) in all 3 photo(s)")


def test_rejected_and_unmeasured_photos_do_not_count():
    items = _items([(30, "neutral"), (0, "smile")])
    items[1].status = "rejected"
    items.append(PrepareItem(source="/p/old.png", status="accepted"))  # from a version without pose
    cov = audit.coverage(items)
    assert cov.photos == 1 and cov.views == {"three-quarter": 1}
    assert len(cov.warnings) == 1 and cov.warnings[0].startswith("one expression (neutral)")


def test_report_html_shows_the_coverage_plot_and_the_live_likeness(tmp_path):
    from PIL import Image

    from facelora import events as ev
    from facelora.fileio import atomic_write_json
    from facelora.project import init_project
    from facelora.report import write_report

    project = init_project(tmp_path / "p", "ohwx", "woman")
    cov = audit.coverage(_items([(3, "smile"), (-8, "smile")]), plot="prepare-pose.png")
    Image.new("RGB", (60, 40)).save(project.pose_plot)
    atomic_write_json(project.prepare_report, {"items": [], "coverage": cov.model_dump()})
    writer = ev.EventWriter(project.events_path)
    writer.write(ev.Likeness(epoch=1, images=2, message="likeness: no faces in the samples"))
    writer.close()
    page = write_report(project, None, []).read_text(encoding="utf-8")
    assert "Head pose: 2 frontal; expression: 2 smile." in page and '<img src="prepare-pose.png"' in page
    assert "no three-quarter view or profile" in page and "one expression (smile)" in page
    assert "<th>epoch 1</th><td>no faces in the samples</td>" in page
