"""The kohya_ss GUI's LoRA_type and its top-level LyCORIS keys become the network_module and
network_args its lora_gui.py puts on sd-scripts' command line (bmaltais/kohya_ss 45088f04), or a
refusal that names what facelora cannot train; its noise_offset_type picks one kind of noise."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from facelora import config as c
from facelora.config import ConfigError


def gui(**keys):
    return c.import_kohya(json.dumps({"network_dim": 8, "network_alpha": 4, **keys}))


def test_lycoris_lokr_takes_the_gui_arguments_in_its_order():
    cfg, notes = gui(LoRA_type="LyCORIS/LoKr", conv_dim=4, conv_alpha=2, factor=8, use_cp=True, decompose_both=True,
                     dora_wd=True, rank_dropout=0.1, LyCORIS_preset="attn-mlp", unit=4, train_on_input=False)
    assert cfg.network_module == "lycoris.kohya"
    assert cfg.network_args == [
        "preset=attn-mlp", "conv_dim=4", "conv_alpha=2", "use_tucker=False", "rank_dropout=0.1", "bypass_mode=False",
        "dora_wd=True", "module_dropout=0", "factor=8", "use_cp=True", "use_scalar=False", "decompose_both=True",
        "rank_dropout_scale=False", "algo=lokr", "train_norm=False"]
    assert any("LoRA_type 'LyCORIS/LoKr' is network_module lycoris.kohya" in n for n in notes)
    assert not any("unit" in n or "train_on_input" in n for n in notes)  # DyLoRA's and iA3's keys, unread for LoKr


def test_lycoris_locon_under_the_guis_old_name_and_its_options():
    cfg, notes = gui(LoRA_type="LoCon", conv_dim=16, conv_alpha=8, use_tucker=True, use_scalar=True, bypass_mode=True,
                 train_norm=True, module_dropout=0.1, network_dropout=0.2)
    args = dict(a.split("=", 1) for a in cfg.network_args)
    assert args["algo"] == "locon" and args["conv_dim"] == "16" and args["conv_alpha"] == "8"
    assert args["use_tucker"] == args["use_scalar"] == args["bypass_mode"] == args["train_norm"] == "True"
    assert args["module_dropout"] == "0.1"
    assert "dropout" not in args  # network_dropout: lycoris.kohya's create_network reads no neuron_dropout
    assert not any("network_dropout" in n for n in notes)
    checked, _ = c.check(cfg, cuda=False)
    assert checked.network_args == cfg.network_args


def test_standard_and_kohya_locon_pass_only_what_is_set():
    cfg, notes = gui(LoRA_type="Standard", conv_dim=8, conv_alpha=4, down_lr_weight="sine", mid_lr_weight="",
                     use_tucker=True, dora_wd=True)
    assert cfg.network_module == "networks.lora" and cfg.network_args == ["down_lr_weight=sine"]
    assert not any("dora_wd" in n or "use_tucker" in n for n in notes)  # LyCORIS keys, unread for Standard
    cfg, _ = gui(LoRA_type="Kohya LoCon", conv_dim=8, conv_alpha=4, up_lr_weight="linear")
    assert cfg.network_args == ["conv_dim=8", "conv_alpha=4", "up_lr_weight=linear"]
    cfg, _ = gui(LoRA_type="Kohya LoCon")  # the GUI's sliders start at conv_dim 1, conv_alpha 1
    assert cfg.network_args == ["conv_dim=1", "conv_alpha=1"]


def test_network_args_facelora_cannot_train_are_refused_at_import_by_name():
    with pytest.raises(ConfigError) as e:
        gui(LoRA_type="Standard", rank_dropout=0.1, block_dims="2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2",
            loraplus_lr_ratio=16, weighted_captions=True, bucket_reso_steps=0)
    msg = str(e.value)  # every problem at once: the network's, the value's, the unused key
    for key in ("rank_dropout", "block_dims", "loraplus_lr_ratio", "networks.lora", "weighted_captions",
                "bucket_reso_steps"):
        assert key in msg
    with pytest.raises(ConfigError, match=r"LoRA_type 'Kohya LoHa' \(sd-scripts' networks.loha.*LyCORIS/LoHa"):
        gui(LoRA_type="Kohya LoHa")
    with pytest.raises(ConfigError, match=r"LoRA_type 'LyCORIS/iA3' \(lycoris algo=ia3\)"):
        gui(LoRA_type="LyCORIS/iA3")


def test_noise_offset_type_picks_one_kind_of_noise():
    noise = dict(noise_offset=0.05, multires_noise_iterations=6, multires_noise_discount=0.3)
    cfg, _ = gui(noise_offset_type="Multires", **noise)
    assert cfg.multires_noise_iterations == 6 and cfg.multires_noise_discount == 0.3 and cfg.noise_offset == 0
    cfg, _ = gui(noise_offset_type="Original", **noise)
    assert cfg.noise_offset == 0.05 and cfg.multires_noise_iterations is None
    cfg, _ = gui(**noise)  # the GUI's default type is Original
    assert cfg.noise_offset == 0.05 and cfg.multires_noise_iterations is None


def test_bucket_steps_as_sd_scripts_takes_them():
    cfg, notes = c.import_kohya("enable_bucket = true\nbucket_reso_steps = 32\n")
    assert cfg.bucket_reso_steps == 64 and any("bucket_reso_steps 32 is read as 64" in n for n in notes)
    cfg, notes = c.import_kohya("bucket_reso_steps = 1\n")
    assert cfg.bucket_reso_steps == 64 and any("only with enable_bucket" in n for n in notes)
    cfg, notes = c.import_kohya("enable_bucket = true\nbucket_reso_steps = 128\n")
    assert cfg.bucket_reso_steps == 128 and not any("bucket_reso_steps" in n for n in notes)
    with pytest.raises(ConfigError, match="bucket_reso_steps 32 with enable_bucket.*divisible by 64"):
        c.export_kohya(c.TrainConfig(output_name="x", enable_bucket=True, bucket_reso_steps=32), Path("p"))
    assert "bucket_reso_steps = 32" in c.export_kohya(c.TrainConfig(output_name="x", bucket_reso_steps=32), Path("p"))


def test_captions_longer_than_one_chunk_are_read_as_75_tokens():
    cfg, notes = c.import_kohya("max_token_length = 225\n")
    assert cfg.max_token_length == 75 and any("max_token_length 225 is read as 75" in n for n in notes)


def test_a_rate_of_0_trains_that_part_not_at_all():
    cfg, _ = gui(text_encoder_lr=0, unet_lr=1e-4)
    assert cfg.network_train_unet_only and not cfg.network_train_text_encoder_only and cfg.text_encoder_lr is None
    cfg, _ = gui(text_encoder_lr=5e-5, unet_lr=0)
    assert cfg.network_train_text_encoder_only and not cfg.network_train_unet_only and cfg.unet_lr is None
    cfg, _ = gui(text_encoder_lr=0, unet_lr=0, learning_rate=1e-4)  # both: learning_rate for both parts
    assert not cfg.network_train_unet_only and not cfg.network_train_text_encoder_only
    assert cfg.effective_unet_lr == cfg.effective_text_encoder_lr == 1e-4
