"""Every kohya_ss file in ../shared/kohya_ss (the GUI's Standard LoRA, LoCon and LoHa presets and
its config.toml) imports and trains the tiny model with the network type it names: the saved
file's tensors are that type's (hada_w1_a for LoHa, the resnets' 3x3 convolutions for LoCon and
LoHa, lora_down/lora_up of the attention layers only for LoRA) and its metadata carries the network_module and network_args the
kohya_ss GUI passes sd-scripts. Only the base model, the size (64 px) and the length (one step)
are changed from what `facelora config import` took from the file."""

from __future__ import annotations

import io
import json
import re
import shutil
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from conftest import tiny_training_project
from facelora import config as c
from facelora.cli import app
from facelora.lora_file import network_type, read_lora
from facelora.train.loop import train
from test_kohya_import import SAMPLES, sample

# file: (network_module, the file's module type, 3x3 convolutions adapted, network_args it must carry)
PRESETS = {
    "sd15 - EDG_LoraOptiSettings.json": ("networks.lora", "LoRA", False, {}),
    "sd15 - EDG_LoConOptiSettings.json": ("lycoris.kohya", "LoRA", True,
                                          {"algo": "locon", "conv_dim": "32", "conv_alpha": "1", "preset": "full"}),
    "loha-sd15.json": ("lycoris.kohya", "LoHa", True,
                       {"algo": "loha", "conv_dim": "8", "conv_alpha": "4", "use_tucker": "False"}),
    "config example.toml": ("networks.lora", "LoRA", False, {}),
}
# What a 1-step run on the tiny model needs changed; nothing of the network.
FAST = dict(pretrained_model_name_or_path="tiny", resolution="64", max_train_steps=1, max_train_epochs=None,
            save_every_n_epochs=None, save_every_n_steps=None, sample_every_n_epochs=None)


def test_every_sample_file_is_trained_here():
    assert {p.name for p in SAMPLES.iterdir() if p.suffix in (".json", ".toml")} == set(PRESETS)


@pytest.mark.parametrize("name", PRESETS)
def test_preset_imports_and_trains_with_its_network_type(tmp_path, name):
    module, kind, conv, args = PRESETS[name]
    project = tiny_training_project(tmp_path / "p", images=2, repeats=2)
    res = CliRunner().invoke(app, ["config", "import", str(project.root), str(sample(name))])
    assert res.exit_code == 0, res.output
    imported = project.train_config()
    assert imported.network_module == module
    if imported.reg_data_dir:  # the GUI's config.toml names a class-image folder: give it one image
        classes = Path(imported.reg_data_dir) / "1_woman"
        classes.mkdir(parents=True)
        shutil.copy(next(project.concept_dir()[0].glob("*.png")), classes / "0.png")
    cfg = c.apply(imported, FAST)
    result = train(project, cfg, console=Console(file=io.StringIO()))
    tensors, meta = read_lora(result.final)
    assert meta["ss_network_module"] == module
    assert network_type(list(tensors)) == kind
    saved_args = json.loads(meta["ss_network_args"])
    assert saved_args == dict(a.split("=", 1) for a in imported.network_args)
    assert args.items() <= saved_args.items()
    convs = [k for k in tensors if re.match(r"lora_unet_.*_resnets_\d+_conv[12]\.", k)]  # the 3x3 convolutions
    assert bool(convs) == conv, convs[:3]
    if kind == "LoHa":
        assert any(k.endswith(".hada_w1_a") for k in tensors) and not any("lora_down" in k for k in tensors)
    assert meta["ss_network_dim"] == str(imported.network_dim)


def test_a_lokr_preset_with_the_full_matrix_dim_imports_and_trains(tmp_path):
    """kohya_ss's LoKr presets set network_dim (and conv_dim) 100000, LyCORIS' "do not
    decompose" value: it imports, the plan's memory estimate stays that of a small network, and
    it trains the tiny model one step into LoKr modules with whole (undecomposed) factors."""
    from facelora.vram import vram_plan

    raw = json.loads(sample("loha-sd15.json").read_text())
    lokr = {**raw, "LoRA_type": "LyCORIS/LoKr", "network_dim": 100000, "network_alpha": 1, "conv_dim": 100000,
            "conv_alpha": 1, "factor": 4}
    path = tmp_path / "lokr-sd15.json"
    path.write_text(json.dumps(lokr))
    project = tiny_training_project(tmp_path / "p", images=2, repeats=2)
    res = CliRunner().invoke(app, ["config", "import", str(project.root), str(path)])
    assert res.exit_code == 0, res.output
    imported = project.train_config()
    assert imported.network_dim == 100000 and imported.lokr and "algo=lokr" in imported.network_args
    lora = c.apply(imported, {"network_module": "networks.lora", "network_args": [], "network_dim": 1024})
    assert vram_plan(imported).total_bytes < vram_plan(lora).total_bytes  # not 100000 x a rank-1 LoRA
    result = train(project, c.apply(imported, FAST), console=Console(file=io.StringIO()))
    tensors, meta = read_lora(result.final)
    assert network_type(list(tensors)) == "LoKr" and meta["ss_network_dim"] == "100000"
    assert any(k.endswith(".lokr_w2") for k in tensors) and not any(k.endswith(".lokr_w2_a") for k in tensors)


def test_a_plain_lora_with_the_full_matrix_dim_is_refused_with_the_reason():
    with pytest.raises(c.ConfigError, match="network_dim 100000 is above 1024.*Only LyCORIS LoKr"):
        c.apply(c.TrainConfig(), {"network_dim": 100000})
    with pytest.raises(c.ConfigError, match="network_dim 2048 is above 1024"):
        c.apply(c.TrainConfig(), {"network_dim": 2048, "network_module": "lycoris.kohya",
                                  "network_args": ["algo=loha"]})
    assert c.apply(c.TrainConfig(), {"network_dim": 1024}).network_dim == 1024
