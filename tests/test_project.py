import json

import pytest
from PIL import Image
from typer.testing import CliRunner

from facelora.cli import app
from facelora.dataset import DatasetError, missing_caption_warning, scan
from facelora.filenames import LoraName, interrupted_filename, lora_filename, parse_lora_filename
from facelora.project import Concept, Project, ProjectError, init_project

runner = CliRunner()


@pytest.mark.parametrize("name", ["my project", "我的 项目", "space and 中文 mixed"])
def test_init_on_paths_with_spaces_and_chinese(tmp_path, name):
    root = tmp_path / name
    result = runner.invoke(app, ["init", str(root), "--trigger", "ohwx", "--class-word", "woman", "--repeats", "15"])
    assert result.exit_code == 0, result.output
    assert (root / "image" / "15_ohwx woman").is_dir()
    assert (root / "models").is_dir() and (root / "log").is_dir()
    settings = Project.open(root).settings()
    assert settings.trigger == "ohwx" and settings.class_word == "woman"
    assert settings.train.output_name == "ohwx"


def test_init_never_overwrites(tmp_path):
    root = tmp_path / "p"
    init_project(root, "ohwx")
    before = (root / "facelora.toml").read_bytes()
    result = runner.invoke(app, ["init", str(root), "--trigger", "other"])
    assert result.exit_code == 2 and "already a facelora project" in result.output
    assert (root / "facelora.toml").read_bytes() == before
    other = tmp_path / "q"
    other.mkdir()
    (other / "mine.txt").write_text("keep")
    result = runner.invoke(app, ["init", str(other), "--trigger", "ohwx"])
    assert result.exit_code == 2 and "not empty" in result.output
    assert (other / "mine.txt").read_text() == "keep"


def test_init_takes_kohya_overrides_and_presets(tmp_path):
    root = tmp_path / "p"
    result = runner.invoke(app, ["init", str(root), "--trigger", "ohwx", "--preset", "dynamic", "--network_dim", "32"])
    assert result.exit_code == 0, result.output
    cfg = Project.open(root).settings().train
    assert cfg.network_dim == 32 and cfg.optimizer_type == "DAdaptAdam"


def test_trigger_must_be_one_word(tmp_path):
    result = runner.invoke(app, ["init", str(tmp_path / "p"), "--trigger", "two words"])
    assert result.exit_code == 2 and "one word" in result.output


def test_concept_folder_names():
    assert Concept.parse("15_ohwx woman") == Concept(15, "ohwx", "woman")
    assert Concept(25, "ScarlettJohansson").folder_name == "25_ScarlettJohansson"
    with pytest.raises(ProjectError, match="no '<repeats>_' prefix"):
        Concept.parse("ohwx")
    assert lora_filename("x", epoch=3) == "x-000003.safetensors"
    assert lora_filename("x", step=500) == "x-step00000500.safetensors"
    assert lora_filename("x") == "x.safetensors"


def test_lora_file_names_read_back_as_written():
    written = [lora_filename("ohwx", epoch=3), lora_filename("ohwx", step=500), lora_filename("ohwx"),
               interrupted_filename("ohwx", 7)]
    parsed = [parse_lora_filename(n, "ohwx") for n in written]
    assert parsed == [LoraName("ohwx", "epoch", 3), LoraName("ohwx", "step", 500), LoraName("ohwx"),
                      LoraName("ohwx", "interrupted", 7)]
    assert [p.filename for p in parsed] == written and parsed[1].step == 500 and parsed[0].epoch == 3
    # another run's files are not this run's; an output_name that looks numbered stays whole
    assert parse_lora_filename("other-000001.safetensors", "ohwx") is None
    assert parse_lora_filename("a-000001.safetensors", "a-000001") == LoraName("a-000001")
    # a tag's name from an image made anywhere: the name alone says the save
    assert parse_lora_filename("mine-000002") == LoraName("mine", "epoch", 2)
    assert parse_lora_filename("mine") == LoraName("mine")


def test_lora_training_order():
    epoch2, step5, final = LoraName("x", "epoch", 2), LoraName("x", "step", 5), LoraName("x")
    assert epoch2.order() < step5.order() < final.order()
    assert epoch2.order(steps=8) > step5.order(steps=5)  # the saved step, when known, decides


def _images(folder, n, captions=True):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.new("RGB", (8, 8), (i, 0, 0)).save(folder / f"{i:03d}.png")
        if captions:
            (folder / f"{i:03d}.txt").write_text(f"ohwx, woman, tag{i}", encoding="utf-8")


def test_scan_reads_captions_and_repeats(tmp_path):
    _images(tmp_path / "image" / "15_ohwx woman", 3)
    data = scan(tmp_path / "image")
    assert data.num_images == 3 and data.num_samples == 45
    assert data.items()[0][1] == "ohwx, woman, tag0"
    assert data.tag_frequency()["15_ohwx woman"]["ohwx"] == 3


def test_leaf_folder_is_explained(tmp_path):
    _images(tmp_path / "image" / "15_ohwx", 2)
    with pytest.raises(DatasetError, match="Point train_data_dir at its parent"):
        scan(tmp_path / "image" / "15_ohwx")


def test_folder_without_prefix_is_explained(tmp_path):
    _images(tmp_path / "image" / "ohwx", 2)
    with pytest.raises(ProjectError, match="no '<repeats>_' prefix"):
        scan(tmp_path / "image")


def test_images_directly_in_image_folder(tmp_path):
    _images(tmp_path / "image", 2)
    with pytest.raises(DatasetError, match="holds 2 images directly"):
        scan(tmp_path / "image")


def test_empty_folder_is_explained(tmp_path):
    (tmp_path / "image" / "10_ohwx").mkdir(parents=True)
    with pytest.raises(DatasetError, match="holds no images"):
        scan(tmp_path / "image")


def test_missing_captions_use_folder_words_and_are_listed(tmp_path):
    _images(tmp_path / "image" / "10_ohwx woman", 2, captions=False)
    data = scan(tmp_path / "image", ".txt")
    assert [cap for _, cap, _ in data.items()] == ["ohwx woman", "ohwx woman"]
    msg = missing_caption_warning(data, ".txt").text
    assert "000.png" in msg and "001.png" in msg and "folder words" in msg


def test_plan_command_standalone_json():
    result = runner.invoke(app, ["plan", "--images", "32", "--epochs", "10", "--max-train-steps", "4800", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert {k: data[k] for k in ("images", "repeats", "epochs", "batch_size", "steps_per_epoch", "total_steps")} == {
        "images": 32, "repeats": 15, "epochs": 10, "batch_size": 1, "steps_per_epoch": 480, "total_steps": 4800}
    assert len(data["saved_files"]) == 10


def test_plan_command_renames_the_project_folder(tmp_path):
    root = tmp_path / "我的 project"
    init_project(root, "ohwx", "woman", repeats=10)
    _images(root / "image" / "10_ohwx woman", 4)
    args = ["plan", str(root), "--epochs", "5", "--max-train-steps", "300"]  # 300 / (4 x 5) = 15
    result = runner.invoke(app, args)
    assert result.exit_code == 0 and "--yes" in result.output
    assert Project.open(root).concept_dir()[1].repeats == 10  # nothing renamed without --yes
    result = runner.invoke(app, args + ["--yes"])
    assert result.exit_code == 0, result.output
    folder, concept = Project.open(root).concept_dir()
    assert folder.name == "15_ohwx woman" and len(list(folder.glob("*.png"))) == 4
    assert Project.open(root).settings().train.max_train_epochs == 5
    result = runner.invoke(app, ["plan", str(root), "--json"])
    assert json.loads(result.stdout)["total_steps"] == 300


def test_opening_a_folder_that_is_no_project_gives_a_command_that_runs_as_printed(tmp_path):
    import shlex

    folder = tmp_path / "我的 photos"
    folder.mkdir()
    with pytest.raises(ProjectError) as e:
        Project.open(folder)
    command = str(e.value).split("Create one with: ", 1)[1]
    assert shlex.split(command) == ["facelora", "init", str(folder), "--trigger", "NAME"]
