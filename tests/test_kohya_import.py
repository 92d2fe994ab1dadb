"""Kohya files import as sd-scripts and the kohya_ss GUI would run them: every sample file in
../shared/kohya_ss, a TOML as sd-scripts' --output_config writes it (defaults left out), the GUI's
conventions, dataset_config files; through `facelora config import`, with the project's file left
unchanged whenever the import is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from facelora import config as c
from facelora.cli import app
from facelora.config import ConfigError, TrainConfig
from facelora.config.kohya_gui import SD_SCRIPTS_DEFAULTS
from facelora.project import init_project

SAMPLES = Path(__file__).resolve().parents[1] / ".." / "shared" / "kohya_ss"
if not SAMPLES.is_dir():
    SAMPLES = Path("/work/shared/kohya_ss")
runner = CliRunner()
# kohya_ss's lora_gui.py network_args of LyCORIS/LoCon and LyCORIS/LoHa, the file's other LyCORIS keys
# at the GUI's widget values (use_tucker twice there: once here, as sd-scripts reads them into a dict)
GUI_LYCORIS_ARGS = ("preset=full conv_dim={conv_dim} conv_alpha={conv_alpha} use_tucker=False rank_dropout=0 "
                    "bypass_mode=False dora_wd=False module_dropout=0 use_scalar=False rank_dropout_scale=False "
                    "algo={algo} train_norm=False")


def sample(name: str) -> Path:
    path = SAMPLES / name
    assert path.is_file(), f"the kohya_ss sample {path} is missing (see ../shared/kohya_ss/README.md)"
    return path


def import_file(name: str):
    path = sample(name)
    return c.import_kohya(path.read_text(encoding="utf-8"), source=path)


def test_every_sample_file_is_covered():
    names = {p.name for p in SAMPLES.iterdir() if p.suffix in (".json", ".toml")}
    assert names == {"config example.toml", "loha-sd15.json", "sd15 - EDG_LoConOptiSettings.json",
                     "sd15 - EDG_LoraOptiSettings.json"}


def test_gui_standard_lora_preset_imports_as_the_gui_runs_it():
    cfg, notes = import_file("sd15 - EDG_LoraOptiSettings.json")
    raw = json.loads(sample("sd15 - EDG_LoraOptiSettings.json").read_text())
    assert cfg.network_module == "networks.lora" and cfg.network_args == []  # conv_dim is LoCon's
    assert cfg.network_dim == raw["network_dim"] and cfg.network_alpha == raw["network_alpha"]
    assert cfg.learning_rate == float(raw["learning_rate"]) and cfg.text_encoder_lr == 5e-5
    assert cfg.max_train_epochs == raw["epoch"] == 1  # the GUI's epochs
    assert cfg.seed == 1234 and cfg.clip_skip == 2 and cfg.noise_offset == 0.05
    assert cfg.xformers is True and cfg.mixed_precision == "bf16" and cfg.save_precision == "bf16"
    assert cfg.save_every_n_steps is None  # the GUI's 0 means off
    assert cfg.resolution == "512,648"  # 650 is not a multiple of 8
    assert any("512,650 rounded down to 512,648" in n for n in notes)
    assert any("LoRA_type 'Standard' is network_module networks.lora" in n for n in notes)


def test_gui_locon_preset_maps_to_lycoris_and_training_refuses_it_by_name():
    cfg, notes = import_file("sd15 - EDG_LoConOptiSettings.json")
    assert cfg.network_module == "lycoris.kohya"
    assert {"algo=locon", "conv_dim=32", "conv_alpha=1"} <= set(cfg.network_args)
    # word for word what kohya_ss's lora_gui.py passes (its widgets' values for the keys the file leaves out)
    assert cfg.network_args == GUI_LYCORIS_ARGS.format(algo="locon", conv_dim=32, conv_alpha=1).split()
    from facelora.networks import NETWORK_MODULES

    if "lycoris.kohya" not in NETWORK_MODULES:
        with pytest.raises(ConfigError, match="network_module 'lycoris.kohya'"):
            c.check(cfg, cuda=False)


def test_gui_loha_preset_imports_as_the_gui_runs_it():
    cfg, notes = import_file("loha-sd15.json")
    assert cfg.network_module == "lycoris.kohya"
    assert cfg.network_args == GUI_LYCORIS_ARGS.format(algo="loha", conv_dim=8, conv_alpha=4).split()
    # sd-scripts' train_network.py stops at bucket steps not divisible by 64 with enable_bucket on
    assert cfg.enable_bucket and cfg.bucket_reso_steps == 64
    assert any("bucket_reso_steps 1 is read as 64" in n and "divisible by 64" in n for n in notes)
    assert cfg.multires_noise_iterations == 8 and cfg.multires_noise_discount == 0.2  # noise_offset_type Multires
    assert cfg.scale_weight_norms == 1 and cfg.min_snr_gamma == 10 and cfg.gradient_accumulation_steps == 4
    unused = " ".join(notes)  # bucket_no_upscale, the preset's last unused key, facelora now trains
    assert "facelora does not use" not in unused and "bucket_no_upscale" not in unused
    assert cfg.bucket_no_upscale  # facelora buckets as Kohya does with it (tests/test_bucket_no_upscale.py)
    # keys the GUI reads for other LoRA types only (use_cp: LoKr, train_on_input: iA3, unit: DyLoRA, factor: LoKr)
    for key in ("train_on_input", "use_cp", "unit", "factor"):
        assert key not in unused
    assert "multires_noise_iterations" not in unused and "scale_weight_norms" not in unused
    assert "prior_loss_weight" not in unused  # 1.0 changes nothing


def test_gui_file_facelora_cannot_train_is_refused_with_every_problem_in_one_message(tmp_path):
    raw = json.loads(sample("loha-sd15.json").read_text())
    path = tmp_path / "loha-sd15.json"  # the kohya_ss GUI itself refuses a step below 1
    path.write_text(json.dumps({**raw, "bucket_reso_steps": 0, "weighted_captions": True, "flip_aug": True}))
    with pytest.raises(ConfigError) as e:
        c.import_kohya(path.read_text(), source=path)
    msg = str(e.value)
    assert "loha-sd15.json" in msg and "bucket_reso_steps" in msg and "(got 0)" in msg
    # the keys facelora has no use for, in the same message (multires noise and max-norm it trains)
    for key in ("weighted_captions", "flip_aug"):
        assert key in msg
    assert "bucket_no_upscale" not in msg  # facelora trains it
    assert "multires_noise_iterations" not in msg and "scale_weight_norms" not in msg
    assert "prior_loss_weight" not in msg  # 1.0 changes nothing


def test_gui_config_toml_imports_its_training_sections_only():
    cfg, notes = import_file("config example.toml")
    assert cfg.max_train_epochs == 1 and cfg.lr_scheduler == "cosine" and cfg.seed == 1234
    assert cfg.xformers is True and cfg.enable_bucket and cfg.max_bucket_reso == 2048
    assert cfg.caption_extension == ".txt"  # [basic]'s, not [wd14_caption]'s
    assert cfg.max_data_loader_n_workers == 0  # [advanced]'s, not [wd14_caption]'s 2
    assert any("dataset_config" in n and "not found" in n for n in notes)
    assert cfg.reg_data_dir == "./data/reg" and any("reg_data_dir './data/reg' is read inside the project" in n
                                                    for n in notes)
    # absent in the GUI file: sd-scripts' defaults, not the face defaults
    assert cfg.network_alpha == SD_SCRIPTS_DEFAULTS["network_alpha"] == 1.0


def test_sd_scripts_output_config_means_what_sd_scripts_runs():
    # what train_network.py --output_config writes: only the values that differ from its defaults
    text = ('pretrained_model_name_or_path = "/models/v1-5.safetensors"\nnetwork_module = "networks.lora"\n'
            'network_dim = 32\nlearning_rate = 0.0001\nmax_train_epochs = 10\noutput_name = "ohwx"\n'
            'resolution = "512,512"\ntrain_data_dir = "/data/img"\n')
    cfg, notes = c.import_kohya(text, TrainConfig())
    assert cfg.network_alpha == 1.0 and cfg.text_encoder_lr is None and cfg.unet_lr is None
    assert cfg.effective_text_encoder_lr == cfg.effective_unet_lr == 1e-4
    assert cfg.lr_scheduler == "constant" and cfg.lr_scheduler_num_cycles == 1
    assert cfg.caption_extension == ".caption" and cfg.save_precision == "float"
    assert cfg.optimizer_type == "AdamW" and cfg.mixed_precision == "no" and cfg.cache_latents is False
    assert cfg.max_data_loader_n_workers == 8 and cfg.sample_sampler == "ddim" and cfg.save_state is False
    assert cfg.save_every_n_epochs is None and cfg.train_data_dir == "image"  # folders stay the project's
    assert any("random one was drawn" in n and str(cfg.seed) in n for n in notes)
    differ = " | ".join(c.face_differences(cfg))
    for part in ("network_alpha 1.0 (face default 64.0)", "lr_scheduler 'constant'", "caption_extension '.caption'",
                 "save_precision 'float'", "network_dim 32"):
        assert part in differ


def test_text_encoder_lr_list_and_kohya_locon(tmp_path):
    cfg, notes = c.import_kohya("text_encoder_lr = [5e-5, 1e-5]\nlearning_rate = 1e-4\nnetwork_dim = 8\n")
    assert cfg.text_encoder_lr == 5e-5
    gui = {"LoRA_type": "Kohya LoCon", "conv_dim": "16", "conv_alpha": 8, "network_dim": 32, "epoch": 4,
           "lr_warmup": "10", "lr_scheduler": "constant_with_warmup", "save_every_n_epochs": 0, "seed": ""}
    cfg, notes = c.import_kohya(json.dumps(gui))
    assert cfg.network_module == "networks.lora" and cfg.network_args == ["conv_dim=16", "conv_alpha=8"]
    assert cfg.lr_warmup_steps == 0.1 and cfg.save_every_n_epochs is None and cfg.max_train_epochs == 4
    checked, _ = c.check(cfg, cuda=False)  # Kohya's LoCon trains in facelora (tests/test_lycoris.py)
    assert checked.network_args == ["conv_dim=16", "conv_alpha=8"]
    with pytest.raises(ConfigError, match="LoRA_type 'LyCORIS/GLoRA'"):
        c.import_kohya(json.dumps({"LoRA_type": "LyCORIS/GLoRA"}))


def test_dataset_config_is_read_for_its_folders_and_repeats(tmp_path):
    (tmp_path / "data.toml").write_text(
        '[general]\ncaption_extension = ".txt"\n[[datasets]]\nresolution = 768\nbatch_size = 2\n'
        '[[datasets.subsets]]\nimage_dir = "/photos/anna"\nnum_repeats = 15\n')
    main = tmp_path / "train.toml"
    main.write_text('dataset_config = "data.toml"\nnetwork_dim = 16\n')
    cfg, notes = c.import_kohya(main.read_text(), source=main)
    assert cfg.resolution == "768" and cfg.train_batch_size == 2 and cfg.caption_extension == ".txt"
    assert any("/photos/anna (15 repeats)" in n for n in notes)


def test_cli_import_prints_the_differences_and_a_refusal_changes_nothing(tmp_path):
    p = init_project(tmp_path / "p", "ohwx")
    before = p.config_path.read_bytes()
    refused = tmp_path / "loha-sd15.json"
    refused.write_text(json.dumps({**json.loads(sample("loha-sd15.json").read_text()), "bucket_reso_steps": 0}))
    res = runner.invoke(app, ["config", "import", str(p.root), str(refused)])
    assert res.exit_code == 2 and "bucket_reso_steps" in res.output and "Traceback" not in res.output
    assert p.config_path.read_bytes() == before
    res = runner.invoke(app, ["config", "import", str(p.root), str(tmp_path / "missing.json")])
    assert res.exit_code == 2 and "Could not read the Kohya config" in res.output and p.config_path.read_bytes() == before
    res = runner.invoke(app, ["config", "import", str(p.root), str(sample("sd15 - EDG_LoraOptiSettings.json"))])
    assert res.exit_code == 0, res.output
    assert "network_dim 64 (face default 128)" in res.output and "Imported" in res.output
    saved = p.settings().train
    assert saved.network_dim == 64 and saved.seed == 1234 and saved.train_data_dir == "image"


@pytest.mark.parametrize("name, text, said", [
    ("dataset.toml", '[general]\ncaption_extension = ".txt"\n[[datasets]]\nresolution = 512\n'
     '[[datasets.subsets]]\nimage_dir = "img/10_ohwx"\nnum_repeats = 10\n', "is a Kohya dataset config"),
    ("meta_lat.json", json.dumps({"img/10_ohwx/a.jpg": {"caption": "ohwx", "train_resolution": [512, 512]}}),
     "holds no training parameter"),
    ("leco_prompts.toml", '[[prompts]]\ntarget = "van gogh"\n', "holds no training parameter"),
])
def test_a_kohya_file_that_is_no_training_config_is_refused_and_changes_nothing(tmp_path, name, text, said):
    """kohya_ss's test/config holds dataset configs, caption metadata and LECO prompts beside its
    training configs: imported, they would reset every parameter to sd-scripts' defaults."""
    p = init_project(tmp_path / "p 项目", "ohwx")
    before = p.config_path.read_bytes()
    f = tmp_path / name
    f.write_text(text, encoding="utf-8")
    res = runner.invoke(app, ["config", "import", str(p.root), str(f)])
    assert res.exit_code == 2 and said in res.output and "Nothing was changed" in res.output, res.output
    assert "Traceback" not in res.output and p.config_path.read_bytes() == before
