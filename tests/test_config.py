import tomllib

import pytest

from facelora import config as c
from facelora.config import checks
from facelora.config import ConfigError, TrainConfig


def test_face_defaults():
    cfg = TrainConfig()
    assert (cfg.network_dim, cfg.network_alpha, cfg.train_batch_size, cfg.max_train_epochs) == (128, 64, 1, 10)
    assert (cfg.save_every_n_epochs, cfg.caption_extension, cfg.mixed_precision) == (1, ".txt", "fp16")
    assert cfg.cache_latents and not cfg.enable_bucket and cfg.resolution_wh == (512, 512)


def test_presets_from_the_tutorial():
    static = c.apply(TrainConfig(), c.preset("static"))
    assert static.optimizer_type == "AdamW8bit" and static.lr_scheduler == "cosine_with_restarts"
    assert static.lr_scheduler_num_cycles == 3 and (static.unet_lr, static.text_encoder_lr) == (1e-4, 5e-5)
    dyn = c.apply(TrainConfig(), c.preset("dynamic"))
    assert dyn.optimizer_type == "DAdaptAdam"
    assert dyn.optimizer_kwargs() == {"decouple": True, "weight_decay": 0.01, "betas": (0.9, 0.999)}
    assert dyn.learning_rate == dyn.unet_lr == dyn.text_encoder_lr == 1.0
    ada = c.apply(TrainConfig(), c.preset("dynamic-adafactor"))
    assert ada.optimizer_kwargs() == {"relative_step": True, "scale_parameter": True, "warmup_init": True}
    with pytest.raises(ConfigError, match="Unknown preset"):
        c.preset("fast")


def test_overrides_in_kohya_spelling():
    args = ["--network_dim", "32", "--optimizer_args", "decouple=True", "weight_decay=0.01",
            "--base-model", "/m/sd15.safetensors", "--cache_latents_to_disk", "--seed=7"]
    cfg = c.apply(TrainConfig(), c.parse_overrides(args))
    assert cfg.network_dim == 32 and cfg.seed == 7 and cfg.cache_latents_to_disk
    assert cfg.optimizer_args == ["decouple=True", "weight_decay=0.01"]
    assert cfg.pretrained_model_name_or_path == "/m/sd15.safetensors"


def test_unknown_and_bad_overrides_are_explained():
    with pytest.raises(ConfigError, match="--network_dim"):
        c.parse_overrides(["--network_dimm", "3"])
    with pytest.raises(ConfigError, match="network_dim"):
        c.apply(TrainConfig(), c.parse_overrides(["--network_dim", "lots"]))
    with pytest.raises(ConfigError, match="optimizer"):
        c.apply(TrainConfig(), {"optimizer_type": "SuperAdam"})
    with pytest.raises(ConfigError, match="key=value"):
        c.parse_kv_args(["decouple"])


def test_constant_scheduler_with_warmup_is_rejected():
    cfg = TrainConfig(lr_scheduler="constant", lr_warmup_steps=100)
    with pytest.raises(ConfigError, match="constant_with_warmup"):
        c.check(cfg, cuda=True)


def test_adaptive_optimizer_needs_equal_learning_rates():
    cfg = TrainConfig(optimizer_type="DAdaptAdam", unet_lr=1.0, text_encoder_lr=0.5, lr_scheduler="constant")
    with pytest.raises(ConfigError, match="must be\\s+equal"):
        c.check(cfg, cuda=True)
    ok = cfg.model_copy(update={"text_encoder_lr": 0.0})  # 0 = that part is not trained
    c.check(ok, cuda=True)
    with pytest.raises(ConfigError):
        c.check(TrainConfig(optimizer_type="Prodigy", unet_lr=1.0, text_encoder_lr=2.0), cuda=True)


def test_eight_bit_falls_back_to_adamw_only_where_bitsandbytes_does_not_import(monkeypatch):
    cfg, notes = c.check(TrainConfig(optimizer_type="AdamW8bit"), cuda=False)
    assert cfg.optimizer_type == "AdamW8bit"  # bitsandbytes runs it on the CPU too
    assert not any("needs the bitsandbytes package" in n.text for n in notes)
    monkeypatch.setattr(checks, "bitsandbytes_imports", lambda: False)
    for cuda in (False, True):
        cfg, notes = c.check(TrainConfig(optimizer_type="PagedLion8bit"), cuda=cuda)
        assert cfg.optimizer_type == "Lion"
        assert any("needs the bitsandbytes package" in n.text and "pip install bitsandbytes" in n.text for n in notes)


def test_fp16_on_cpu_says_what_is_used_instead(monkeypatch):
    monkeypatch.delenv("FACELORA_CPU_FP16", raising=False)
    cfg, notes = c.check(TrainConfig(mixed_precision="fp16", optimizer_type="AdamW"), cuda=False)
    assert cfg.mixed_precision == "no" and any("fp32" in n.text for n in notes)


def test_fp16_on_cpu_runs_as_fp16_when_the_tests_ask(monkeypatch):
    """The test switch: the CPU runs autocast float16 with a GradScaler, the path a GPU takes."""
    monkeypatch.setenv("FACELORA_CPU_FP16", "1")
    cfg, notes = c.check(TrainConfig(mixed_precision="fp16", optimizer_type="AdamW"), cuda=False)
    assert cfg.mixed_precision == "fp16" and not notes


def test_alpha_above_dim_warns():
    _, notes = c.check(TrainConfig(network_dim=16, network_alpha=32, optimizer_type="AdamW"), cuda=True)
    assert any("above network_dim" in n.text for n in notes)


def test_conflicting_train_only_flags():
    with pytest.raises(ConfigError, match="exclude each other"):
        c.check(TrainConfig(network_train_unet_only=True, network_train_text_encoder_only=True), cuda=True)


def test_project_toml_round_trip(tmp_path):
    s = c.ProjectSettings(trigger="ohwx", class_word="woman",
                          train=c.apply(TrainConfig(), {**c.preset("dynamic"), "min_snr_gamma": 5, "network_dim": 64}))
    c.save_settings(tmp_path / "facelora.toml", s)
    assert c.load_settings(tmp_path / "facelora.toml") == s


def test_broken_toml_is_explained(tmp_path):
    p = tmp_path / "facelora.toml"
    p.write_text("[project\ntrigger=", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        c.load_settings(p)


def test_kohya_export_is_what_sd_scripts_reads(tmp_path):
    cfg = c.apply(TrainConfig(), {**c.preset("dynamic"), "output_name": "ohwx", "lr_warmup_steps": 0.1,
                                  "lr_scheduler": "constant_with_warmup", "max_train_steps": 1000,
                                  "max_train_epochs": None})
    text = c.export_kohya(cfg, tmp_path)
    raw = tomllib.loads(text)
    # sd-scripts flattens the tables; every value must be a plain TOML value, no nulls.
    flat = {k: v for section in raw.values() for k, v in section.items()}
    assert flat["network_module"] == "networks.lora"
    assert flat["optimizer_args"] == ["decouple=True", "weight_decay=0.01", "betas=0.9,0.999"]
    assert flat["lr_warmup_steps"] == 100
    assert flat["train_data_dir"] == str((tmp_path / "image").resolve())
    assert "max_train_epochs" not in flat and "max_nonfinite_steps" not in flat


def test_export_then_import_gives_the_same_config(tmp_path):
    cfg = c.apply(TrainConfig(), {**c.preset("static"), "output_name": "ohwx", "network_dim": 32,
                                  "network_alpha": 16, "noise_offset": 0.05, "min_snr_gamma": 5.0,
                                  "clip_skip": 2, "resolution": "768,768", "optimizer_type": "AdamW"})
    back, notes = c.import_kohya(c.export_kohya(cfg, tmp_path))
    assert notes == []
    paths = ("train_data_dir", "output_dir", "logging_dir")
    assert back.model_dump(exclude=set(paths)) == cfg.model_dump(exclude=set(paths))


def test_import_kohya_sd_scripts_and_gui_spellings():
    text = """
    pretrained_model_name_or_path = "/models/v1-5.safetensors"
    [training]
    optimizer = "DAdaptAdam"
    optimizer_args = "decouple=True weight_decay=0.01 betas=0.9,0.999"
    epoch = 8
    max_resolution = "768,768"
    xformers = "xformers"
    learning_rate = 1.0
    unet_lr = 1.0
    text_encoder_lr = 1.0
    lr_scheduler = "constant"
    persistent_data_loader_workers = true
    some_future_option = 3
    """
    cfg, notes = c.import_kohya(text)
    assert cfg.optimizer_type == "DAdaptAdam" and cfg.max_train_epochs == 8
    assert cfg.optimizer_args == ["decouple=True", "weight_decay=0.01", "betas=0.9,0.999"]
    assert cfg.resolution_wh == (768, 768) and cfg.xformers
    assert notes and "some_future_option" in notes[0] and "persistent" not in notes[0]


def test_import_refuses_other_model_families():
    with pytest.raises(ConfigError, match="SD1.5"):
        c.import_kohya("v2 = true\n")


def test_every_field_has_a_plain_explanation_and_a_group():
    fields = c.config_fields()
    assert all(help_ for _, help_, _ in fields.values())
    basic = c.config_fields("basic")
    assert {"network_dim", "network_alpha", "optimizer_type", "max_train_epochs"} <= set(basic)
