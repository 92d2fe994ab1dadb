"""The README's first command: `facelora demo` runs every step end to end on the tiny model."""

import json

from PIL import Image
from typer.testing import CliRunner

from facelora.cli import app

runner = CliRunner()


def test_demo_runs_end_to_end(tmp_path):
    folder = tmp_path / "演示 demo"
    result = runner.invoke(app, ["demo", str(folder)])
    assert result.exit_code == 0, result.output
    project = folder / "project"
    assert "tiny test model" in result.output and "noise" in result.output
    assert f"Report: {project / 'report.html'}" in result.output.replace("\n", "")
    report = (project / "report.html").read_text(encoding="utf-8")
    for section in ("Photos", "Plan", "Training", "Grid", "Likeness", "Reproduce"):
        assert f"<h2>{section}" in report
    assert "facelora train" in report and "facelora grid" in report
    # the plan renamed the folder to the solved repeats: 144 steps / (12 images x 3 epochs) = 4
    assert (project / "image" / "4_ohwx woman").is_dir()
    assert sorted(p.name for p in (project / "models").glob("*.safetensors")) == [
        "ohwx-000001.safetensors", "ohwx-000002.safetensors", "ohwx.safetensors"]
    grid = Image.open(project / "eval" / "grid.png")
    assert grid.width > 3 * 128 and grid.height > 3 * 128
    likeness = json.loads((project / "eval" / "likeness.json").read_text())
    assert likeness["best"] is None and "no" in likeness["verdict"].lower()  # noise has no face
    assert likeness["baseline"]["faces"] == 12  # the real photos all have one
    assert (project / "log" / "loss.png").is_file()


def test_run_stops_early_with_too_few_photos(tmp_path, photo_dir):
    result = runner.invoke(app, ["run", str(photo_dir), str(tmp_path / "p"), "--trigger", "ohwx",
                                 "--base-model", "tiny"])
    assert result.exit_code == 2
    assert "at least 10 are needed" in result.output and "photo" in result.output
    assert not list((tmp_path / "p" / "models").glob("*.safetensors"))
