"""The probe prompts (eval/probes.toml) as the grid's third axis, the validation loss read from a
LoRA file's metadata, installing only a clean pick unless forced, and the scoreboard's heatmap."""

from __future__ import annotations

import pytest
from PIL import Image

from facelora.config import TrainConfig
from facelora.evaluate import infotext
from facelora.evaluate.board import GroupScore, LikenessReport
from facelora.evaluate.grid import GridError, GridOptions, plan_grid
from facelora.evaluate.heatmap import panels, write_heatmap
from facelora.evaluate.likeness import LikenessError
from facelora.evaluate.probes import ProbeError, probes_file, read_probes
from facelora.project import PROBES_TOML
from facelora.evaluate.scoring import install_best, validation_loss
from facelora.lora_file import kohya_metadata, save_lora
from facelora.networks.lora import LoRANetwork
from facelora.model.tiny import build_tiny
from facelora.filenames import lora_filename
from facelora.project import init_project


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    p = init_project(tmp_path_factory.mktemp("probes") / "proj", "ohwx", "woman",
                     train=TrainConfig(pretrained_model_name_or_path="tiny", resolution="64"))
    model = build_tiny()
    net = LoRANetwork(model.unet, model.text_encoder, rank=2, alpha=1)
    for epoch, loss in ((1, "0.1234"), (2, None)):
        meta = kohya_metadata(network_dim=2, network_alpha=1, output_name="ohwx", epoch=epoch, steps=epoch)
        if loss:
            meta["ss_validation_loss"] = loss
        save_lora(p.models_dir / lora_filename("ohwx", epoch), net.kohya_state_dict(), meta)
    return p


def test_default_probes_are_written_once_and_filled_in(tmp_path):
    path = probes_file(tmp_path / PROBES_TOML)
    assert path.name == PROBES_TOML and "bleed" in path.read_text(encoding="utf-8")
    probes = read_probes(path, "ohwx", "woman")
    kinds = [p.kind for p in probes]
    assert kinds.count("likeness") == 1 and kinds.count("flexibility") == 5 and kinds.count("bleed") == 4
    assert all("ohwx" in p.prompt for p in probes if p.kind != "bleed")
    assert all("ohwx" not in p.prompt for p in probes if p.kind == "bleed")
    assert "portrait photo of a woman" in [p.prompt for p in probes]
    path.write_text(path.read_text(encoding="utf-8").replace('bleed = [', 'bleed = [\n    "{trigger} at a desk",'),
                    encoding="utf-8")
    assert probes_file(path) == path  # kept, not rewritten
    with pytest.raises(ProbeError, match="names the trigger"):
        read_probes(path, "ohwx", "woman")
    path.write_text('selfies = ["x"]', encoding="utf-8")
    with pytest.raises(ProbeError, match="unknown probe kind"):
        read_probes(path, "ohwx", "woman")


def test_grid_renders_every_probe_for_every_file_and_weight(project):
    plan = plan_grid(project, GridOptions(weights="0.5,1", z="probes", size="64x64"))
    probes = read_probes(project.probes_toml, "ohwx", "woman")
    assert len(plan.cells) == 2 * 2 * len(probes) and plan.z_kind == "probes"
    for c in plan.cells:
        assert c.probe in ("likeness", "flexibility", "bleed")
        assert infotext.lora_tags(c.prompt)[0].weight == c.weight  # the LoRA is on, also for bleed
        assert ("ohwx," in c.prompt or "ohwx " in c.prompt) == (c.probe != "bleed")
    assert {c.to_dict(project.root)["probe"] for c in plan.cells} == {"likeness", "flexibility", "bleed"}
    with pytest.raises(GridError, match="leave out --prompt"):
        plan_grid(project, GridOptions(z="probes", prompt="ohwx woman"))


def test_validation_loss_from_the_metadata(project):
    assert validation_loss(project.models_dir / lora_filename("ohwx", 1)) == pytest.approx(0.1234)
    assert validation_loss(project.models_dir / lora_filename("ohwx", 2)) is None
    assert validation_loss(project.models_dir / "missing.safetensors") is None


def _group(file, warnings=(), faces=4, **kw):
    return GroupScore(f"{file} @ 1", file, 1.0, 1, 4, faces, faces / 4, 0.4 if faces else None, 0.75 if faces else 0.0,
                      0.3, warnings=list(warnings), **kw)


def test_only_a_clean_pick_is_installed_unless_forced(project, tmp_path):
    warned = _group("ohwx-000002", ["ohwx-000002 @ 1: 2 face(s) copy a training photo"], copies=2)
    report = LikenessReport(0.6, {}, [], [warned], None, "No clean file: ...")
    with pytest.raises(LikenessError, match="--force installs"):
        install_best(project, report, tmp_path)
    done = install_best(project, report, tmp_path, force=True)
    assert done.path.name == "ohwx-000002.safetensors" and done.path.is_file() and done.weight == 1.0


def test_heatmap_has_a_panel_per_score_and_says_no_faces(tmp_path):
    groups = [_group("e1", faces=0), _group("e2", faces=0, validation_loss=0.12)]
    report = LikenessReport(0.6, {}, [], groups, None, "no faces", tiny=True)
    out = write_heatmap(report, tmp_path / "heatmap.png")
    with Image.open(out) as im:
        assert 1.5 * im.height < im.width < 3 * im.height  # five panels, three a row
    assert [p.title.split(":")[0].split(" ")[0] for p in panels(0.6)] == [
        "likeness", "flexibility", "bleed", "copies", "validation"]
    seen = [p.text(groups[0]) for p in panels(0.6)]
    assert seen[:4] == ["no face"] * 4 and seen[4] == "—"


@pytest.mark.slow
def test_grid_probes_and_score_on_the_tiny_model(project, tmp_path):
    """The CLI end to end: --probes renders every probe for each file, score reads their kinds,
    and the tiny model's noise gives an honest 'no faces' everywhere and nothing to install."""
    import json

    from typer.testing import CliRunner

    from facelora.cli import app
    from test_evaluate_likeness import write_reference

    folder, _ = project.concept_dir()
    write_reference(folder, 3)
    runner = CliRunner()
    result = runner.invoke(app, ["grid", str(project.root), "--probes", "--weights", "1", "--steps", "2",
                                 "--size", "64x64", "--score"])
    assert result.exit_code == 0, result.output
    report = json.loads((project.eval_dir / "likeness.json").read_text(encoding="utf-8"))
    assert report["probes"] == "eval/probes.toml" and len(report["images"]) == 2 * 10
    assert {i["kind"] for i in report["images"]} == {"likeness", "flexibility", "bleed"}
    assert [(g["images"], g["flex_images"], g["bleed_images"]) for g in report["groups"]] == [(1, 5, 4)] * 2
    assert report["best"] is None and "No generated image has a face" in report["verdict"]
    result = runner.invoke(app, ["score", str(project.root), "--install-to", str(tmp_path), "--force"])
    assert result.exit_code == 2 and "Nothing to install" in result.output
    result = runner.invoke(app, ["grid", str(project.root), "--probes", "--z", "seeds", "1,2"])
    assert result.exit_code == 2 and "--probes is the third axis" in result.output


def test_the_gui_asks_for_probes_as_the_cli_does(tmp_path):
    import typer

    from facelora.cli import app
    from facelora.gui.fields import grid_specs, to_widget
    from facelora.gui.pages.evaluate import grid_args
    from facelora.gui.workspace import Workspace

    (tmp_path / "ws").mkdir()
    ws = Workspace.of(tmp_path / "ws")
    p = ws.create("p", "ohwx", None)
    specs = grid_specs()
    values = {s.name: to_widget(s, s.default) for s in specs}
    values.update(z="probes")
    args = grid_args(p, ws, specs, [values[s.name] for s in specs])
    assert args == ["grid", str(p.root), "--probes"]
    ctx = typer.main.get_command(app).commands["grid"].make_context("grid", args[1:])
    assert ctx.params["probes"] is True and ctx.params["z"] is None
