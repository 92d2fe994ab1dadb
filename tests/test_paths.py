"""paths.py, the one path policy: which names can be file names, which folder parameters stay in
the project, and that TrainConfig (so the CLI, the GUI's Save and config import) applies both."""

from __future__ import annotations

from pathlib import Path

import pytest

from facelora.config import ConfigError, TrainConfig, apply, import_kohya
from facelora.gui.uploads import name_problem
from facelora.paths import NAME_MAX_BYTES, PathError, check_folder_text, check_name, check_output_name, inside


@pytest.mark.parametrize("name", ["ohwx", "my LoRA v2", "照片 ohwx", "a.b-c_d (1)", "é" * 100])
def test_names_that_are_file_names_everywhere(name):
    assert check_name(name, "name") == name


@pytest.mark.parametrize("name, why", [
    ("", "empty"), ("a/b", "separator"), ("a\\b", "separator"), ("..", "names a folder"), (".", "names a folder"),
    ("a\x00b", "NUL"), ("a\nb", "control"), ("a:b", "Windows refuses"), ("what?", "Windows refuses"),
    ("con", "Windows reserves"), ("LPT1.txt", "Windows reserves"), ("name.", "ends in a dot"),
    ("name ", "ends in a dot or a space"), ("x" * (NAME_MAX_BYTES + 1), "bytes long"), ("é" * 128, "bytes long"),
])
def test_names_that_are_refused_say_why_and_what_is_allowed(name, why):
    with pytest.raises(PathError, match=why) as e:
        check_name(name, "output_name")
    assert "A name may hold" in str(e.value)


def test_output_name_leaves_room_for_the_longest_file_name_made_from_it():
    longest = "x" * 204
    assert check_output_name(longest) == longest and check_output_name("") == ""
    with pytest.raises(PathError, match="bytes long"):
        check_output_name(longest + "x")
    name = f".{longest}-interrupted-step00000123.safetensors.abcdefgh.tmp"
    assert len(name.encode()) <= NAME_MAX_BYTES


@pytest.mark.parametrize("text", ["models", "out/loras", "照片/models", "/abs/is/checked/later"])
def test_folder_parameters_made_of_names(text):
    assert check_folder_text(text, "output_dir") == text


@pytest.mark.parametrize("text", ["../models", "models/../../x", "a:b", "", "x\x00"])
def test_folder_parameters_that_climb_or_are_no_names(text):
    with pytest.raises(PathError):
        check_folder_text(text, "output_dir")


def test_train_config_applies_the_policy_to_every_way_in():
    for bad in ({"output_name": "../../outside/NAME"}, {"output_name": "x" * 300}, {"logging_dir": "../log"},
                {"output_dir": "models/../../x"}, {"train_data_dir": "a\x00"}):
        with pytest.raises(ConfigError, match=next(iter(bad))):
            apply(TrainConfig(), bad)
        with pytest.raises(ValueError):
            TrainConfig(**bad)
    with pytest.raises(ConfigError, match="output_name"):
        import_kohya('[training_arguments]\noutput_name = "../x"\n')


def test_inside_follows_links_and_refuses_what_leaves(tmp_path: Path):
    root = tmp_path / "p"
    (root / "models").mkdir(parents=True)
    (root / "out").symlink_to(tmp_path)
    assert inside(root, "models") == (root / "models").resolve()
    assert inside(root, str(root / "models" / "new")) == (root / "models" / "new").resolve()
    for bad in ("out", "out/x", "../p2", str(tmp_path), "/etc", "a\x00"):
        with pytest.raises(PathError):
            inside(root, bad, "output_dir")


def test_an_uploaded_photo_name_that_is_no_file_name_is_refused():
    assert name_problem("photo.jpg") is None
    assert "bytes long" in name_problem("x" * 260 + ".jpg")
    assert "Windows" in name_problem("a:b.jpg")
