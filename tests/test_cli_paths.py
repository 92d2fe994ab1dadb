"""The paths a user takes through the CLI (issue 19): runs never mix, the project remembers, Kohya
layouts are adopted, presets and parameters everywhere, the tiny model at its size, and grid and
score turn bad files and Ctrl-C into messages. Each test asserts the message and that no file
was lost or changed."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from conftest import tiny_training_project
from typer.testing import CliRunner

from facelora import __version__
from facelora.cli import app
from facelora.config import TrainConfig
from facelora.plan import tutorial_warnings
from facelora.project import CONFIG_FILE, Project, init_project

runner = CliRunner()
# The smallest real run: 2 images x 2 repeats, one epoch of 4 steps at 64 px.
TINY_RUN = ["--base-model", "tiny", "--resolution", "64", "--network_dim", "4", "--network_alpha", "2",
            "--max_train_epochs", "1", "--optimizer_type", "AdamW", "--mixed_precision", "no"]


def files_of(root: Path) -> dict[str, str]:
    """Every file under root with its content's hash: what must not be lost or changed."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and p.suffix not in (".lock", ".last")}


def kohya_layout(root: Path) -> Path:
    """A folder laid out as the kohya_ss GUI's data preparation makes it, without facelora.toml."""
    tiny_training_project(root)
    (root / CONFIG_FILE).unlink()
    return root


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A Kohya layout that `train` adopted and trained once (the adoption's message checked)."""
    root = kohya_layout(tmp_path_factory.mktemp("trained") / "anna")
    res = runner.invoke(app, ["train", str(root), *TINY_RUN])
    assert res.exit_code == 0, res.output
    assert "laid out the Kohya way: adopted it" in res.output and "trigger 'ohwx'" in res.output
    text = " ".join(res.output.split())  # the tutorial's ranges, warned about before training
    for part in ("2 photo(s): the tutorial uses at least 10", "repeats 2 lies outside the tutorial's 10-30",
                 "epochs 1 lies outside the tutorial's 5-10", "total steps 4 lies outside the tutorial's 3000-5000"):
        assert part in text
    assert (root / "models" / "ohwx.safetensors").is_file()
    return root


def copy_of(trained: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(trained, tmp_path / "copy"))


def test_version_and_params():
    res = runner.invoke(app, ["--version"])
    assert res.exit_code == 0 and res.output.strip() == f"facelora {__version__}"
    res = runner.invoke(app, ["params"])
    assert res.exit_code == 0
    for name, field in TrainConfig.model_fields.items():
        assert f"--{name} " in res.output and field.description.split()[0] in res.output


def test_a_second_run_refuses_and_nothing_changes(trained, tmp_path):
    root = copy_of(trained, tmp_path)
    before = files_of(root)
    res = runner.invoke(app, ["train", str(root), *TINY_RUN])
    assert res.exit_code == 2
    assert "holds files of an earlier run of 'ohwx' (ohwx.safetensors)" in res.output
    assert "--overwrite" in res.output and "--output_name" in res.output and "Nothing was changed" in res.output
    assert files_of(root) == before


def test_resume_is_not_refused(trained, tmp_path):
    root = copy_of(trained, tmp_path)
    before = {k: v for k, v in files_of(root).items() if k.startswith("models")}
    res = runner.invoke(app, ["train", str(root), "--resume", *TINY_RUN])
    assert res.exit_code == 0, res.output
    assert "earlier run" not in res.output and "Nothing to resume" in res.output
    assert {k: v for k, v in files_of(root).items() if k.startswith("models")} == before


def test_another_output_name_keeps_both_runs_apart_and_the_grid_lists_one(trained, tmp_path):
    from facelora.evaluate.loras import list_loras

    root = copy_of(trained, tmp_path)
    first = (root / "models" / "ohwx.safetensors").read_bytes()
    res = runner.invoke(app, ["train", str(root), *TINY_RUN, "--output_name", "second"])
    assert res.exit_code == 0, res.output
    assert (root / "models" / "ohwx.safetensors").read_bytes() == first
    assert [f.name for f in list_loras(root / "models", "second")] == ["second"]
    assert [f.name for f in list_loras(root / "models", "ohwx")] == ["ohwx"]
    before = files_of(root)  # the newest state is the second run's: --resume of 'ohwx' must not go on with it
    res = runner.invoke(app, ["train", str(root), "--resume", *TINY_RUN])
    assert res.exit_code == 2 and "is of the run 'second', not 'ohwx'" in res.output, res.output
    assert "--output_name second" in res.output and files_of(root) == before


@pytest.mark.parametrize("preset, optimizer", [("static", "AdamW8bit"), ("dynamic", "DAdaptAdam"),
                                               ("dynamic-adafactor", "Adafactor")])
def test_train_takes_the_tutorials_presets(trained, tmp_path, preset, optimizer):
    root = copy_of(trained, tmp_path)
    before = files_of(root)
    args = [a for a in TINY_RUN if a not in ("--optimizer_type", "AdamW")]  # the preset's optimizer
    res = runner.invoke(app, ["train", str(root), *args, "--preset", preset, "--output_name", preset])
    assert res.exit_code == 0, res.output
    assert f"optimizer_type {optimizer} " in " ".join(res.output.split())
    assert (root / "models" / f"{preset}.safetensors").is_file()
    after = files_of(root)
    assert all(after[k] == v for k, v in before.items() if k.startswith("models/"))  # the earlier run's files


def test_a_new_runs_states_are_its_own_though_at_lower_steps(trained, tmp_path):
    root = copy_of(trained, tmp_path)  # the earlier run saved its state at step 4
    short = [*TINY_RUN[:TINY_RUN.index("--max_train_epochs")], *TINY_RUN[TINY_RUN.index("--max_train_epochs") + 2:],
             "--max_train_epochs", "none", "--max_train_steps", "2", "--output_name", "short"]
    res = runner.invoke(app, ["train", str(root), *short])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["train", str(root), "--resume", *short])  # its own state, not the step-4 one
    assert res.exit_code == 0 and "Nothing to resume: this run already finished at step 2" in res.output, res.output


def test_overwrite_deletes_the_earlier_run_first(trained, tmp_path):
    root = copy_of(trained, tmp_path)
    stale = root / "models" / "ohwx-000007.safetensors"  # an epoch file the new run would not write
    shutil.copy(root / "models" / "ohwx.safetensors", stale)
    old_states = {(d / "manifest.json").read_bytes() for d in (root / "log" / "state").iterdir()}
    res = runner.invoke(app, ["train", str(root), *TINY_RUN, "--overwrite"])
    assert res.exit_code == 0, res.output
    assert "--overwrite: deleted the earlier run's 2 file(s)" in res.output and "its 1 training state(s)" in res.output
    assert not stale.exists() and (root / "models" / "ohwx.safetensors").is_file()
    states = {(d / "manifest.json").read_bytes() for d in (root / "log" / "state").iterdir()}
    assert states and not states & old_states  # --resume can only go on with the new run


def test_save_remembers_the_base_model_and_parameters(tmp_path):
    from facelora.cli.train import run_config
    from facelora.train.options import TrainOptions

    p = tiny_training_project(tmp_path / "p")
    cfg = run_config(p, TrainOptions(base_model="tiny", save=True, preset="dynamic-adafactor"), {"network_dim": "8"})
    assert cfg.optimizer_type == "Adafactor" and cfg.network_dim == 8
    saved = Project.open(p.root).settings().train
    assert saved.pretrained_model_name_or_path == "tiny" and saved.network_dim == 8
    assert saved.optimizer_type == "Adafactor" and saved.lr_scheduler == "adafactor"
    assert saved.train_data_dir == "image"  # folders stay relative in facelora.toml
    res = runner.invoke(app, ["train", str(p.root), "--preset", "fast"])
    assert res.exit_code == 2 and "Unknown preset 'fast'" in res.output


def test_tiny_model_trains_at_its_small_size_unless_asked(tmp_path, capsys):
    from facelora.cli.train import TINY_RESOLUTION, run_config
    from facelora.train.options import TrainOptions

    p = tiny_training_project(tmp_path / "p")
    before = files_of(p.root)
    cfg = run_config(p, TrainOptions(base_model="tiny"), {})
    assert cfg.resolution == TINY_RESOLUTION == "128"
    assert "tiny test model trains at 128 px" in capsys.readouterr().err
    assert run_config(p, TrainOptions(base_model="tiny"), {"resolution": "512"}).resolution == "512"
    assert files_of(p.root) == before


def test_config_set_and_show_keep_none(tmp_path):
    p = init_project(tmp_path / "p", "ohwx")
    res = runner.invoke(app, ["config", "set", str(p.root), "max_train_epochs", "none"])
    assert res.exit_code == 0 and "Saved max_train_epochs = None" in res.output
    res = runner.invoke(app, ["config", "set", str(p.root), "save_every_n_epochs", "none"])
    assert p.settings().train.max_train_epochs is None and p.settings().train.save_every_n_epochs is None
    res = runner.invoke(app, ["config", "set", str(p.root), "base_model", "/models/v1-5.safetensors"])
    assert p.settings().train.pretrained_model_name_or_path == "/models/v1-5.safetensors"
    res = runner.invoke(app, ["config", "show", str(p.root), "--changed"])
    assert "max_train_epochs = None   (face default 10)" in res.output
    before = p.config_path.read_bytes()
    res = runner.invoke(app, ["config", "set", str(p.root), "network_dim", "many"])
    assert res.exit_code == 2 and "network_dim" in res.output and "Traceback" not in res.output
    res = runner.invoke(app, ["config", "set", str(p.root), "netwrk_dim", "8"])
    assert res.exit_code == 2 and "Did you mean --network_dim" in res.output
    assert p.config_path.read_bytes() == before


def test_init_on_a_kohya_layout_makes_the_project_there(tmp_path):
    root = kohya_layout(tmp_path / "anna")
    before = files_of(root)
    res = runner.invoke(app, ["plan", str(root)])
    assert res.exit_code == 2 and "laid out the Kohya way" in res.output
    res = runner.invoke(app, ["init", str(root), "--trigger", "anna"])
    assert res.exit_code == 2 and "names the trigger 'ohwx', not 'anna'" in res.output
    assert files_of(root) == before
    res = runner.invoke(app, ["init", str(root), "--trigger", "ohwx"])
    assert res.exit_code == 0, res.output
    assert "laid out the Kohya way: made it a project where it is" in " ".join(res.output.split())
    after = files_of(root)
    assert set(after) - set(before) == {CONFIG_FILE} and all(after[k] == v for k, v in before.items())
    assert Project.open(root).settings().class_word == "woman"


def test_init_on_the_kohya_ss_guis_layout_keeps_its_folders(tmp_path):
    root = kohya_layout(tmp_path / "kohya 布局")
    (root / "image").rename(root / "img")  # the kohya_ss GUI's names: img/<n>_<name>, model/, log/
    (root / "models").rename(root / "model")
    before = files_of(root)
    res = runner.invoke(app, ["init", str(root), "--trigger", "ohwx"])
    assert res.exit_code == 0, res.output
    assert "img/2_ohwx woman" in " ".join(res.output.split())  # where the photos are, not a new image/
    assert set(files_of(root)) - set(before) == {CONFIG_FILE} and not (root / "image").exists()
    p = Project.open(root)
    assert p.concept_dir()[0] == root / "img" / "2_ohwx woman" and Path(p.train_config().output_dir) == root / "model"
    res = runner.invoke(app, ["plan", str(root)])
    assert res.exit_code == 0 and "│ images" in res.output and "2" in res.output, res.output


def test_tutorial_ranges_warn_in_plan():
    assert tutorial_warnings(images=32, repeats=15, epochs=10, total_steps=4800) == []
    warned = tutorial_warnings(images=5, repeats=40, epochs=3, total_steps=600)
    assert len(warned) == 4 and "repeats 40 lies outside the tutorial's 10-30" in warned[1]
    res = runner.invoke(app, ["plan", "--images", "5", "--epochs", "12", "--max-train-steps", "2000"])
    assert res.exit_code == 0
    for part in ("5 photo(s)", "repeats 33", "epochs 12", "total steps 1980"):
        assert part in res.output


def test_prepare_warns_on_the_tutorial_ranges_and_keeps_the_photos(tmp_path, grace_hopper):
    from PIL import Image

    photos = tmp_path / "用户 目录" / "照片"
    photos.mkdir(parents=True)
    Image.fromarray(grace_hopper).save(photos / "grace.jpg")
    before = files_of(photos)
    res = runner.invoke(app, ["prepare", str(photos), str(tmp_path / "用户 目录" / "安娜 project"), "--trigger", "ohwx"])
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())  # 1 photo x 10 repeats x 10 epochs: 100 steps
    assert "1 photo(s): the tutorial uses at least 10" in text
    assert "total steps 100 lies outside the tutorial's 3000-5000" in text and "repeats 10 lies" not in text
    assert files_of(photos) == before


def test_grid_without_a_base_model_says_how_to_set_it_and_the_advice_works(trained, tmp_path):
    root = copy_of(trained, tmp_path)
    before = files_of(root)
    res = runner.invoke(app, ["grid", str(root)])
    assert res.exit_code == 2 and "facelora config set" in res.output and "base_model PATH" in res.output
    assert files_of(root) == before
    res = runner.invoke(app, ["config", "set", str(root), "base_model", "tiny"])
    assert res.exit_code == 0 and Project.open(root).settings().train.pretrained_model_name_or_path == "tiny"


def test_grid_bad_lora_file_and_ctrl_c_are_messages(trained, tmp_path, monkeypatch):
    root = copy_of(trained, tmp_path)
    (root / "models" / "ohwx-000001.safetensors").write_bytes(b"not a safetensors file")
    before = files_of(root)
    res = runner.invoke(app, ["grid", str(root), "--base-model", "tiny", "--size", "64x64", "--steps", "1"])
    assert res.exit_code == 2 and "ohwx-000001.safetensors" in res.output and "Traceback" not in res.output
    assert files_of(root) == before
    (root / "models" / "ohwx-000001.safetensors").unlink()

    seen = []

    def stop(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("facelora.model.sampling.load_pipeline", stop)
    from facelora.evaluate import grid as grid_mod

    real = grid_mod.make_grid
    monkeypatch.setattr(grid_mod, "make_grid", lambda p, o, progress=None: real(p, o, lambda *a: (seen.append(a), progress and progress(*a))))
    res = runner.invoke(app, ["grid", str(root), "--base-model", "tiny", "--size", "64x64", "--steps", "1"])
    assert res.exit_code == 130 and "Stopped (Ctrl-C)" in res.output and "kept in eval/cells" in res.output
    assert seen and seen[0][0] == 0 and seen[0][1] > 0 and seen[0][2].startswith("loading")  # a total from the start


def test_an_interrupted_grid_leaves_the_earlier_grid_whole(trained, tmp_path, monkeypatch, astronaut):
    from PIL import Image

    root = copy_of(trained, tmp_path)
    res = runner.invoke(app, ["grid", str(root), "--base-model", "tiny", "--weights", "1", "--steps", "1"])
    assert res.exit_code == 0, res.output
    assert "The tiny test model draws at 128 px" in res.output  # the project's resolution is the default 512
    assert json.loads((root / "eval" / "grid.json").read_text(encoding="utf-8"))["size"] == [128, 128]
    (tmp_path / "ref").mkdir()
    Image.fromarray(astronaut).save(tmp_path / "ref" / "photo.jpg")
    score = ["score", "--reference", str(tmp_path / "ref"), "--images", str(root / "eval" / "cells")]
    res = runner.invoke(app, score)  # at 80 columns, the table still names each file
    assert res.exit_code == 0, res.output
    assert any(line.split()[:2] == ["ohwx", "1"] for line in res.output.splitlines() if line.strip())
    before = files_of(root)

    import facelora.model.sampling as sampling

    drawn, real = [], sampling.render

    def render_then_stop(*args, **kwargs):
        if drawn:
            raise KeyboardInterrupt
        drawn.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(sampling, "render", render_then_stop)
    res = runner.invoke(app, ["grid", str(root), "--base-model", "tiny", "--weights", "0.5,1", "--steps", "1"])
    assert res.exit_code == 130 and "kept in eval/cells-drawing" in res.output, res.output
    assert "Grid: 0/2 loading tiny" in res.output  # no terminal here: progress lines, the total from the start
    assert "the earlier grid (eval/grid.png, grid.json and eval/cells) is as it was" in " ".join(res.output.split())
    after = files_of(root)
    assert [k for k in after if k not in before] == ["eval/cells-drawing/0001-ohwx-w0.5-seed1234.png"]
    assert all(after.get(k) == v for k, v in before.items())  # nothing of the earlier grid lost or changed
    res = runner.invoke(app, score)
    assert res.exit_code == 0 and "ohwx" in res.output, res.output  # the earlier grid's cells are all there


def test_score_truncated_photo_and_ctrl_c_are_messages(tmp_path, monkeypatch, astronaut):
    from PIL import Image

    ref, images = tmp_path / "ref", tmp_path / "images"
    ref.mkdir(), images.mkdir()
    Image.fromarray(astronaut).save(ref / "whole.jpg", quality=90)
    data = (ref / "whole.jpg").read_bytes()
    (ref / "cut.jpg").write_bytes(data[: len(data) // 3])  # a truncated JPEG
    (ref / "notes.jpg").write_text("not a photo", encoding="utf-8")  # a non-image
    Image.fromarray(astronaut).save(images / "gen.png")
    before = files_of(tmp_path)
    res = runner.invoke(app, ["score", "--reference", str(ref), "--images", str(images)])
    assert "Traceback" not in res.output and not isinstance(res.exception, OSError)
    assert res.exit_code in (0, 2), res.output
    if res.exit_code == 2:
        assert "error:" in res.output and "Check the reference photos" in res.output
    else:  # each bad file skipped with its reason, the rest scored
        text = " ".join(res.output.split())
        assert "skipped cut.jpg: broken image" in text and "skipped notes.jpg: not an image" in text
    assert files_of(tmp_path) == before
    res = runner.invoke(app, ["score", "--reference", str(tmp_path / "gone"), "--images", str(images)])
    assert res.exit_code == 2 and f"--reference {tmp_path / 'gone'} is not a folder" in " ".join(res.output.split())
    assert "Traceback" not in res.output and files_of(tmp_path) == before

    def stop(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("facelora.evaluate.scoring.score_folder", stop)
    res = runner.invoke(app, ["score", "--reference", str(ref), "--images", str(images)])
    assert res.exit_code == 130 and "Stopped (Ctrl-C). Nothing was written" in res.output
    assert files_of(tmp_path) == before
