"""Faults injected into real commands: `facelora train` on the tiny model with a full disk (plain
I/O and safetensors), a read-only or forbidden folder (a patched os.open: tests run as root, where
chmod stops nothing), names that are not file names; and every kind of broken file facelora
reads. Each must end with a non-zero exit code and one message naming the path, never a
traceback, never a file under a final name that is not complete, and the inputs unchanged."""

from __future__ import annotations

import errno
import hashlib
import os
from pathlib import Path

import pytest
from safetensors import SafetensorError
from typer.testing import CliRunner

from conftest import tiny_training_project
from facelora.cli import app
from facelora.config import apply
from facelora.lora_file import read_lora
from facelora.project import Project
from facelora.train import resume as resume_mod

BASE = dict(pretrained_model_name_or_path="tiny", resolution="64", max_train_epochs=1, network_dim=4,
            network_alpha=2, optimizer_type="AdamW", lr_scheduler="constant", save_precision="float",
            mixed_precision="no")
# what safetensors raises when the disk fills while it writes a file
SAFETENSORS_ENOSPC = ('Error while serializing: IoError(Os { code: 28, kind: StorageFull, '
                      'message: "No space left on device" })')


def make_project(root: Path, **updates) -> Project:
    project = tiny_training_project(root, images=2, repeats=1)
    settings = project.settings()
    settings.train = apply(settings.train, {**BASE, **updates})
    project.save_settings(settings)
    return project


def snapshot(*roots: Path) -> dict[str, str]:
    """SHA-256 of every file under the roots (the inputs a fault must leave as they were)."""
    out = {}
    for root in roots:
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for p in files:
            out[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def invoke(*args: str):
    res = CliRunner().invoke(app, [str(a) for a in args])
    text = res.output  # stdout and stderr together
    return res, " ".join(text.split())  # rich wraps long paths: compare on one line


def assert_one_clear_message(res, text: str, *names: str) -> None:
    assert res.exit_code not in (0, None), text
    assert isinstance(res.exception, SystemExit), f"{res.exception!r}: {text}"
    assert "Traceback" not in text and "error:" in text, text
    for name in names:
        assert name in text, (name, text)


def assert_only_complete_files(project: Project) -> None:
    """Every LoRA under its final name reads back whole; no temporary file or state is left."""
    for p in project.models_dir.glob("*.safetensors"):
        read_lora(p)
    assert not [p for p in project.models_dir.rglob("*") if p.name.endswith(".tmp")]
    if project.state_dir.is_dir():
        assert not list(project.state_dir.glob(resume_mod.TEMP_PREFIX + "*"))
        for folder in resume_mod.complete_states(project.state_dir):
            assert resume_mod.check_folder(folder) is None


def refuse_writes_under(monkeypatch, folder: Path, code: int) -> None:
    """os.open (tempfile.mkstemp, the job lock) fails with `code` for writes under `folder`."""
    real_open = os.open

    def fake_open(path, flags, *a, **kw):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT) and str(Path(path)).startswith(str(folder)):
            raise OSError(code, os.strerror(code), str(path))
        return real_open(path, flags, *a, **kw)

    monkeypatch.setattr(os, "open", fake_open)


# --- writes that fail ----------------------------------------------------------------------------


@pytest.mark.parametrize("fault, where, expect", [
    ("read-only", "models", "read-only"),
    ("read-only", "log", "read-only"),
    ("permission", "models", "permission denied"),
    ("disk-full-io", "models", "disk is full"),
    ("disk-full-safetensors", "state", "disk is full"),
])
def test_a_failed_write_is_one_message_and_loses_nothing(tmp_path, monkeypatch, fault, where, expect):
    project = make_project(tmp_path / "p")
    inputs = snapshot(project.image_dir, project.config_path)
    target = {"models": project.models_dir, "log": project.log_dir, "state": project.state_dir}[where]
    if fault == "read-only":
        refuse_writes_under(monkeypatch, target, errno.EROFS)
    elif fault == "permission":
        refuse_writes_under(monkeypatch, target, errno.EACCES)
    elif fault == "disk-full-io":
        real_fsync = os.fsync

        def fsync(fd):
            if os.readlink(f"/proc/self/fd/{fd}").startswith(str(target)):
                raise OSError(errno.ENOSPC, "No space left on device")
            return real_fsync(fd)

        monkeypatch.setattr(os, "fsync", fsync)
    else:
        def save_file(*a, **kw):
            raise SafetensorError(SAFETENSORS_ENOSPC)

        monkeypatch.setattr(resume_mod, "save_file", save_file)
    res, text = invoke("train", project.root)
    monkeypatch.undo()
    named = {"models": "ohwx.safetensors", "log": "train.lock", "state": "step00000002-epoch000001"}[where]
    assert_one_clear_message(res, text, expect, named, "nothing was overwritten")
    assert_only_complete_files(project)
    assert snapshot(project.image_dir, project.config_path) == inputs


def test_a_full_disk_at_the_first_state_save_leaves_the_lora_and_resume_says_what_to_do(tmp_path, monkeypatch):
    """The LoRA file of epoch 1 is written, its state is not: --resume has nothing to go on from
    and says so (the README's Resume section tells what to do)."""
    project = make_project(tmp_path / "p", max_train_epochs=2)
    monkeypatch.setattr(resume_mod, "save_file", lambda *a, **kw: (_ for _ in ()).throw(SafetensorError(SAFETENSORS_ENOSPC)))
    res, text = invoke("train", project.root)
    monkeypatch.undo()
    assert_one_clear_message(res, text, "disk is full")
    assert [p.name for p in project.models_dir.glob("*.safetensors")] == ["ohwx-000001.safetensors"]
    res, text = invoke("train", project.root, "--resume")
    assert_one_clear_message(res, text, "Nothing to resume", "without --resume")


@pytest.mark.parametrize("name, why", [
    ("../../outside/NAME", "separator"),
    ("x" * 300, "bytes long"),
    ("CON", "Windows reserves"),
    ("a\x00b", "NUL"),
])
def test_an_output_name_that_is_no_file_name_is_refused_before_anything_is_written(tmp_path, name, why):
    project = make_project(tmp_path / "box" / "p")
    inputs = snapshot(project.root)
    res, text = invoke("train", project.root, "--output_name", name)
    assert_one_clear_message(res, text, "output_name", why)
    assert snapshot(project.root) == inputs
    assert sorted(p.name for p in (tmp_path / "box").iterdir()) == ["p"]  # nothing beside the project


@pytest.mark.parametrize("key, value", [("output_dir", "../outside"), ("logging_dir", "/tmp"),
                                        ("train_data_dir", "image/../../x")])
def test_a_folder_outside_the_project_is_refused(tmp_path, key, value):
    project = make_project(tmp_path / "box" / "p")
    res, text = invoke("train", project.root, f"--{key}", value)
    assert_one_clear_message(res, text, key)
    assert sorted(p.name for p in (tmp_path / "box").iterdir()) == ["p"]


def test_a_link_out_of_the_project_is_refused(tmp_path):
    project = make_project(tmp_path / "p")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (project.root / "out").symlink_to(outside)
    res, text = invoke("train", project.root, "--output_dir", "out")
    assert_one_clear_message(res, text, "lies outside")
    assert list(outside.iterdir()) == []


def test_a_toml_that_would_write_outside_is_refused_by_config_import(tmp_path):
    project = make_project(tmp_path / "p")
    toml = tmp_path / "kohya.toml"
    toml.write_text('[training_arguments]\noutput_name = "../../outside/NAME"\n', encoding="utf-8")
    before = snapshot(project.config_path)
    res, text = invoke("config", "import", project.root, toml)
    assert_one_clear_message(res, text, "output_name", "separator")
    assert snapshot(project.config_path) == before


# --- reads of broken files -----------------------------------------------------------------------


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("kind", ["not-utf8", "missing", "directory", "not-toml"])
def test_config_import_of_a_broken_file(tmp_path, kind):
    project = make_project(tmp_path / "p")
    given = tmp_path / "kohya.toml"
    if kind == "not-utf8":
        _write(given, b'output_name = "caf\xe9"\n')
    elif kind == "directory":
        given.mkdir()
    elif kind == "not-toml":
        _write(given, b"output_name = = 3\n")
    inputs = [project.config_path] + ([given] if given.is_file() else [])
    before = snapshot(*inputs)
    res, text = invoke("config", "import", project.root, given)
    expect = {"not-utf8": "not UTF-8", "missing": "no such file", "directory": "is a folder",
              "not-toml": "Not a valid TOML"}[kind]
    assert_one_clear_message(res, text, expect, "kohya.toml")
    assert snapshot(*inputs) == before


@pytest.mark.parametrize("data, expect", [(b"[train\n", "not valid TOML"), (b"[project]\ntrigger = '\xff'\n", "not UTF-8")])
def test_a_broken_project_settings_file(tmp_path, data, expect):
    project = make_project(tmp_path / "p")
    _write(project.config_path, data)
    res, text = invoke("train", project.root)
    assert_one_clear_message(res, text, expect, "facelora.toml")
    assert project.config_path.read_bytes() == data


@pytest.mark.parametrize("index", [b"{not json", b"[1, 2]", b"\xff\xfe"])
def test_a_diffusers_folder_with_a_broken_model_index(tmp_path, index):
    project = make_project(tmp_path / "p")
    model = project.root / "base"
    _write(model / "model_index.json", index)
    res, text = invoke("train", project.root, "--base-model", model)
    assert_one_clear_message(res, text, "model_index.json")
    assert not list(project.models_dir.glob("*.safetensors"))


@pytest.mark.parametrize("grid", [b"{\"cells\": [", b"{\"cells\": 3}", b"\xff", b"{\"cells\": [{\"path\": \"../../etc/passwd\", \"x\": 0}]}"])
def test_score_with_a_broken_grid_json(tmp_path, grid):
    project = make_project(tmp_path / "p")
    _write(project.eval_dir / "grid.json", grid)
    res, text = invoke("score", project.root)
    assert_one_clear_message(res, text, "grid")
    assert (project.eval_dir / "grid.json").read_bytes() == grid


@pytest.mark.parametrize("data", [b"", b"\x10\x00\x00\x00\x00\x00\x00\x00{\"a\":", b"not a lora at all"])
def test_a_truncated_lora_to_start_from(tmp_path, data):
    project = make_project(tmp_path / "p")
    weights = _write(project.root / "start.safetensors", data)
    res, text = invoke("train", project.root, "--network_weights", weights)
    assert_one_clear_message(res, text, "start.safetensors")
    assert weights.read_bytes() == data


# --- inputs facelora used to take silently ---------------------------------------------------------


def test_captions_a_bom_is_dropped_and_bytes_that_are_not_utf8_are_named(tmp_path):
    from facelora.dataset import caption_notes, scan

    project = make_project(tmp_path / "p")
    folder, _ = project.concept_dir()
    (folder / "0.txt").write_bytes("\ufeffohwx woman, smiling".encode("utf-8"))
    (folder / "1.txt").write_bytes(b"ohwx woman, caf\xe9")
    data = scan(project.image_dir)
    captions = {p.name: c for p, c, _ in data.items()}
    assert captions["0.png"] == "ohwx woman, smiling"  # no BOM before the trigger word
    notes = caption_notes(data, ".txt")
    assert any("not UTF-8" in n.text and "1.txt" in n.text and "0.txt" not in n.text for n in notes), notes


def test_a_tiny_image_is_refused_and_other_sizes_are_named(tmp_path):
    from PIL import Image

    project = make_project(tmp_path / "p")
    folder, _ = project.concept_dir()
    Image.new("RGB", (1, 1)).save(folder / "dot.png")
    res, text = invoke("train", project.root)
    assert_one_clear_message(res, text, "dot.png", "smaller than 32 px")
    (folder / "dot.png").unlink()
    Image.new("RGB", (96, 80), (120, 90, 60)).save(folder / "wide.png")
    res, text = invoke("train", project.root)
    assert res.exit_code == 0, text
    assert "are not that size" in text and "wide.png" in text and "0.png" not in text.split("are not that size")[1][:200]
