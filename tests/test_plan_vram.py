"""`facelora plan --vram GB`: the plan says whether the settings fit a card of that size and which
change makes them fit, from facelora.vram's figures (tests/test_vram.py checks the arithmetic)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from facelora.cli import app
from facelora.config import TrainConfig, apply, preset
from facelora.project import Project, init_project
from facelora.vram import GIB, vram_plan
from test_project import _images

runner = CliRunner()
TUTORIAL = ["plan", "--images", "32", "--epochs", "10", "--max-train-steps", "4800"]  # TrainConfig's defaults


def plan_json(*args: str) -> dict:
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.mark.parametrize("size", ["512", "768"])
def test_the_tutorials_settings_fit_8_gb_at_512_and_768(size):
    result = runner.invoke(app, [*TUTORIAL, "--vram", "8", "--resolution", size])
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    assert f"{size}x{size} px" in out and "fits in 8 GiB" in out and "not measured on a GPU" in out
    vram = plan_json(*TUTORIAL, "--vram", "8", "--resolution", size)["vram"]
    expected = vram_plan(TrainConfig(resolution=size, max_train_epochs=10, max_train_steps=4800), 8)
    assert vram["fits"] is True and vram["suggestion"] == {}
    assert vram["total_gib"] == round(expected.total_bytes / GIB, 2)
    assert vram["parts_gib"]["base weights"] == pytest.approx(1.83, abs=0.01)  # 1.07 G parameters in fp16


def test_a_smaller_card_gets_the_change_that_fits():
    result = runner.invoke(app, [*TUTORIAL, "--vram", "6", "--resolution", "768"])
    out = " ".join(result.output.split())
    assert result.exit_code == 0 and "does not fit in 6 GiB as set" in out
    assert "change --gradient_checkpointing True" in out and "fits." in out
    vram = plan_json(*TUTORIAL, "--vram", "6", "--resolution", "768")["vram"]
    assert vram["fits"] is False and vram["suggestion"] == {"gradient_checkpointing": True}
    fixed = apply(TrainConfig(resolution="768"), vram["suggestion"])
    assert vram_plan(fixed, 6).fits  # the change it names does fit


def test_without_a_card_or_vram_one_line_says_how(monkeypatch):
    monkeypatch.setattr("facelora.vram.detected_vram_gib", lambda: None)
    result = runner.invoke(app, TUTORIAL)
    assert result.exit_code == 0
    out = " ".join(result.output.split())
    assert out.count("GPU memory") == 1 and "GPU memory plan" not in out
    assert "GPU memory: no CUDA GPU here; --vram GB checks these settings against a card of that size." in out
    assert "vram" not in plan_json(*TUTORIAL)


def test_a_detected_card_is_planned_for(monkeypatch):
    monkeypatch.setattr("facelora.vram.detected_vram_gib", lambda: 12.0)
    assert plan_json(*TUTORIAL)["vram"]["vram_gib"] == 12.0


def test_a_project_plans_with_its_own_settings(tmp_path):
    """The dynamic preset (DAdaptAdam) on a 5 GB card: the tutorial's Adafactor instead."""
    root = tmp_path / "p"
    init_project(root, "ohwx", "woman", repeats=10)
    _images(root / "image" / "10_ohwx woman", 4)
    p = Project.open(root)
    settings = p.settings()
    settings.train = apply(settings.train, {**preset("dynamic"), "resolution": "768"})
    p.save_settings(settings)
    vram = plan_json("plan", str(root), "--vram", "5")["vram"]
    assert "768x768 px" in vram["lines"][0] and "DAdaptAdam" in vram["lines"][0]
    assert vram["fits"] is False and vram["suggestion"]["optimizer_type"] == "Adafactor"
    assert "512x512 px" in plan_json("plan", str(root), "--vram", "5", "--resolution", "512")["vram"]["lines"][0]
