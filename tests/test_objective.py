"""The objective options, each tested against its definition (sd-scripts' code, OneTrainer's EMA),
and Kohya's TOML: every key facelora exports is an argument sd-scripts' train_network.py parser
has (tests/fixtures/sd_scripts_args.txt, collected from its source at the commit it names)."""

from __future__ import annotations

import dataclasses
import io
import random
import tomllib
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from rich.console import Console

from conftest import tiny_training_project
from facelora import config as c
from facelora.config import ConfigError, TrainConfig
from facelora.config.fields import config_fields
from facelora.filenames import ema_filename, parse_lora_filename
from facelora.lora_file import read_lora
from facelora.model.tiny import build_tiny
from facelora.networks import create_network
from facelora.networks.blocks import block_index, block_lr_weights
from facelora.train.captions import process_caption
from facelora.train.data import Batch
from facelora.train.ema import WeightsEMA
from facelora.train.loop import train
from facelora.train.loss import snr_table
from facelora.train.noise import perturbed, pyramid_noise
from facelora.train.optim import make_optimizer
from facelora.train.resume import ResumeError, compare_config
from facelora.train.state import LoopState
from facelora.train.step import batch_loss

FIXTURE = Path(__file__).parent / "fixtures" / "sd_scripts_args.txt"
OPTIONS = dict(caption_dropout_rate=0.05, caption_dropout_every_n_epochs=3, caption_tag_dropout_rate=0.1,
               multires_noise_iterations=6, multires_noise_discount=0.3, ip_noise_gamma=0.1,
               debiased_estimation_loss=True, scale_weight_norms=1.0)


def sd_scripts_arguments() -> set[str]:
    lines = FIXTURE.read_text().splitlines()
    assert lines[0].startswith("# sd-scripts train_network.py argument names, kohya-ss/sd-scripts commit ")
    return {line for line in lines if line and not line.startswith("#")}


# --- Kohya's TOML --------------------------------------------------------------------------------


@pytest.mark.parametrize("network", [
    dict(network_module="networks.lora", network_args=["conv_dim=8", "conv_alpha=4", "down_lr_weight=sine"]),
    dict(network_module="lycoris.kohya", network_args=["algo=locon", "conv_dim=8", "conv_alpha=4"]),
    dict(network_module="lycoris.kohya", network_args=["algo=lora", "dora_wd=True"]),
])
def test_every_exported_key_is_an_sd_scripts_argument(tmp_path, network):
    known = sd_scripts_arguments()
    assert {"network_args", "caption_dropout_rate", "scale_weight_norms", "masked_loss"} <= known
    everything = {**OPTIONS, **network, "output_name": "ohwx", "min_snr_gamma": 5.0, "noise_offset": 0.05,
                  "sample_every_n_epochs": 1, "sample_prompts": "p.txt", "network_weights": "w.safetensors",
                  "save_every_n_steps": 100, "save_last_n_epochs": 3, "cache_latents_to_disk": True,
                  # face's options (masked loss, validation, class images) in the same file
                  "masked_loss": True, "alpha_mask": True, "validation_split": 0.1, "validation_seed": 7,
                  "reg_data_dir": "reg", "prior_loss_weight": 0.5}
    cfg = c.apply(TrainConfig(), everything)
    flat = {k: v for section in tomllib.loads(c.export_kohya(cfg, tmp_path)).values() for k, v in section.items()}
    assert set(OPTIONS) <= set(flat) and flat["network_args"] == network["network_args"]
    assert {"masked_loss", "validation_split", "reg_data_dir", "prior_loss_weight"} <= set(flat)
    assert not set(flat) - known, sorted(set(flat) - known)
    assert "ema_decay" not in flat  # OneTrainer's, not Kohya's
    back, notes = c.import_kohya(c.export_kohya(cfg, tmp_path))
    assert notes == [] and {k: getattr(back, k) for k in OPTIONS} == OPTIONS
    assert (back.network_module, back.network_args) == (network["network_module"], network["network_args"])


@pytest.mark.parametrize("update, words", [
    ({"caption_dropout_rate": 1.5}, "caption_dropout_rate"),
    ({"caption_tag_dropout_rate": -0.1}, "caption_tag_dropout_rate"),
    ({"caption_dropout_every_n_epochs": -1}, "caption_dropout_every_n_epochs"),
    ({"multires_noise_iterations": 0}, "multires_noise_iterations"),
    ({"multires_noise_discount": 0}, "multires_noise_discount"),
    ({"ip_noise_gamma": -1}, "ip_noise_gamma"),
    ({"scale_weight_norms": 0}, "scale_weight_norms"),
    ({"ema_decay": 1.0}, "ema_decay"),
])
def test_impossible_values_are_refused_by_name(update, words):
    with pytest.raises(ConfigError, match=words):
        c.apply(TrainConfig(), update)


def test_the_options_are_in_the_guis_advanced_section():
    advanced = config_fields("advanced")
    for name in [*OPTIONS, "ema_decay"]:
        assert name in advanced and advanced[name][1], name


# --- captions ----------------------------------------------------------------------------------


def test_caption_dropout_rate_every_n_epochs_and_tag_dropout():
    cfg = TrainConfig(keep_tokens=1)
    caption = "ohwx, smiling, red hair, outdoors"
    assert process_caption(caption, cfg, 1, random.Random(0)) == caption
    half = cfg.model_copy(update={"caption_dropout_rate": 0.5})
    dropped = sum(process_caption(caption, half, 1, random.Random(i)) == "" for i in range(400))
    assert 160 < dropped < 240  # about half of them, the others whole
    assert process_caption(caption, cfg.model_copy(update={"caption_dropout_rate": 1.0}), 1, random.Random(0)) == ""
    every2 = cfg.model_copy(update={"caption_dropout_every_n_epochs": 2})  # epochs count from 1, as Kohya's
    assert [process_caption(caption, every2, e, random.Random(0)) == "" for e in (1, 2, 3, 4)] == [False, True, False, True]
    all_tags = cfg.model_copy(update={"caption_tag_dropout_rate": 1.0})
    assert process_caption(caption, all_tags, 1, random.Random(0)) == "ohwx"  # the kept token stays
    some = cfg.model_copy(update={"caption_tag_dropout_rate": 0.5})
    kept = [process_caption(caption, some, 1, random.Random(i)).split(", ") for i in range(300)]
    assert all(k[0] == "ohwx" for k in kept)
    assert 0.4 < sum(len(k) - 1 for k in kept) / (3 * 300) < 0.6
    assert all(k[1:] == [t for t in ["smiling", "red hair", "outdoors"] if t in k] for k in kept)  # order kept


# --- noise and loss: batch_loss with a UNet that predicts zeros --------------------------------


class ZeroUNet(torch.nn.Module):
    """Predicts zero noise and records what it was given."""

    def forward(self, noisy, timesteps, text):
        self.noisy, self.timesteps = noisy, timesteps
        return SimpleNamespace(sample=torch.zeros_like(noisy))


def loss_of(cfg: TrainConfig, latents: torch.Tensor):
    model = dataclasses.replace(build_tiny(), unet=ZeroUNet())
    batch = Batch(list(range(len(latents))), ["ohwx"] * len(latents), latents=latents)
    cfg = cfg.model_copy(update={"train_batch_size": len(latents)})
    loss = batch_loss(model, batch, LoopState(seed=3), 0, 0, cfg, snr_table(model.noise_scheduler), torch.device("cpu"))
    return loss, model


def test_ip_noise_gamma_perturbs_the_input_but_not_the_target():
    latents = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(1))
    plain, m0 = loss_of(TrainConfig(), latents)
    ip, m1 = loss_of(TrainConfig(ip_noise_gamma=0.5), latents)
    assert torch.equal(m0.unet.timesteps, m1.unet.timesteps)
    assert not torch.allclose(m0.unet.noisy, m1.unet.noisy)  # the UNet sees noise + 0.5 x more noise
    assert torch.allclose(plain, ip)  # and is still asked for the first noise alone
    g = torch.Generator().manual_seed(7)
    noise = torch.randn(1, 4, 8, 8)
    extra = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(7))
    assert torch.allclose(perturbed(noise, g, 0.5), noise + 0.5 * extra)


def test_debiased_estimation_weights_each_sample_by_one_over_root_snr():
    latents = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(1))
    plain, m0 = loss_of(TrainConfig(), latents)
    debiased, m1 = loss_of(TrainConfig(debiased_estimation_loss=True), latents)
    t = m1.unet.timesteps
    noise = m1.unet.noisy  # at zero prediction the per-sample loss is mean(noise^2); rebuild it:
    alphas = m1.noise_scheduler.alphas_cumprod[t].view(-1, 1, 1, 1)
    eps = (noise - alphas.sqrt() * latents) / (1 - alphas).sqrt()
    per_sample = eps.pow(2).mean(dim=(1, 2, 3))
    snr = torch.clamp(snr_table(m1.noise_scheduler)[t], max=1000)
    assert torch.allclose(plain, per_sample.mean(), rtol=1e-4)
    assert torch.allclose(debiased, (per_sample / snr.sqrt()).mean(), rtol=1e-4)


def test_multires_noise_adds_coarse_noise_at_unit_variance():
    g = torch.Generator().manual_seed(0)
    white = torch.randn(1, 4, 64, 64, generator=g)
    pyramid = pyramid_noise(white, torch.Generator().manual_seed(1), iterations=6, discount=0.8)
    assert abs(float(pyramid.std()) - 1.0) < 1e-5
    coarse = lambda x: torch.nn.functional.avg_pool2d(x, 8).std()  # noqa: E731  low frequencies
    assert coarse(pyramid) > 2 * coarse(white)
    assert torch.equal(pyramid_noise(white, torch.Generator().manual_seed(1), 6, 0.8), pyramid)  # seeded
    latents = torch.randn(1, 4, 8, 8)
    _, plain = loss_of(TrainConfig(), latents)
    _, multires = loss_of(TrainConfig(multires_noise_iterations=4), latents)
    assert not torch.allclose(plain.unet.noisy, multires.unet.noisy)


# --- the update --------------------------------------------------------------------------------


@pytest.mark.parametrize("module, args", [("networks.lora", ["conv_dim=4"]), ("lycoris.kohya", ["algo=locon"])])
def test_scale_weight_norms_clamps_each_module_norm(module, args):
    tiny = build_tiny()
    network = create_network(TrainConfig(network_module=module, network_args=args, network_dim=4,
                                         network_alpha=4), tiny)
    torch.manual_seed(0)
    for i, (name, module) in enumerate(network.loras.items()):  # every other module far above 1
        for p in module.parameters():
            p.data.normal_(std=0.3 if i % 2 else 0.01)
    big = {n for n in network.loras if float(network.merged_delta(n).norm()) > 1.0}
    small = {n: network.merged_delta(n).clone() for n in network.loras if n not in big}
    assert big and small
    keys, mean, largest = network.apply_max_norm_regularization(1.0, torch.device("cpu"))
    assert keys == len(big) and largest == pytest.approx(1.0, rel=1e-3)
    for n in network.loras:
        norm = float(network.merged_delta(n).norm())
        assert norm <= 1.0 + 1e-4
        if n in small:
            assert torch.equal(network.merged_delta(n), small[n])  # below the limit: untouched


def test_block_lr_weights_as_sd_scripts_reads_them():
    weights = block_lr_weights({"down_lr_weight": "0,0,0,0,0,0,1,1,1,1,1,1", "mid_lr_weight": "0.5",
                                "up_lr_weight": "sine"})
    assert len(weights) == 25 and weights[:12] == [0.0] * 6 + [1.0] * 6 and weights[12] == 0.5
    assert weights[13] == 0.0 and weights[24] == pytest.approx(1.0)  # sine rises from 0 to 1
    assert block_lr_weights({"up_lr_weight": "1,1", "block_lr_zero_threshold": "0.5", "down_lr_weight": "0.4,1"})[:2] \
        == [0.0, 1.0]
    assert block_lr_weights({}) is None
    assert block_index("lora_unet_down_blocks_0_attentions_1_proj_in") == 2
    assert block_index("lora_unet_mid_block_attentions_0_proj_in") == 12
    assert block_index("lora_unet_up_blocks_1_attentions_2_proj_out") == 13 + 5


def test_block_lr_drops_zero_blocks_and_groups_the_rest_by_rate():
    tiny = build_tiny()
    cfg = TrainConfig(network_dim=4, network_alpha=2, optimizer_type="AdamW", unet_lr=1e-3,
                      network_args=["down_lr_weight=0,0,0,0,0,0,0,0,0,0,0,0", "up_lr_weight=zeros+0.5"])
    network = create_network(cfg, tiny)
    assert network.unet_loras and not any("down_blocks" in m.lora_name for m in network.unet_loras)
    optim = make_optimizer(cfg, network.unet_parameters(), network.text_encoder_parameters(),
                           network.unet_parameter_blocks())
    by_lr = {g["lr"]: len(g["params"]) for g in optim.optimizer.param_groups}
    halves = sum(2 for m in network.unet_loras if block_index(m.lora_name) >= 13)
    assert by_lr[5e-4] == halves and 1e-3 in by_lr


def test_ema_is_decay_times_ema_plus_the_rest_of_the_weight():
    net = torch.nn.Linear(2, 2)
    start = net.weight.detach().clone()
    ema = WeightsEMA(net, 0.9)
    with torch.no_grad():
        net.weight.add_(1.0)
    ema.update()
    assert torch.allclose(ema.shadow["weight"], 0.9 * start + 0.1 * (start + 1.0))


def test_ema_files_are_saved_beside_each_epochs_file(tmp_path):
    project = tiny_training_project(tmp_path, images=1, repeats=2)
    cfg = c.apply(project.train_config(), dict(
        pretrained_model_name_or_path="tiny", resolution="64", max_train_epochs=2, network_dim=4, network_alpha=2,
        optimizer_type="AdamW", lr_scheduler="constant", unet_lr=1e-2, ema_decay=0.5, save_precision="float",
        output_name="ohwx"))
    result = train(project, cfg, console=Console(file=io.StringIO()))
    names = sorted(p.name for p in result.files)
    assert names == ["ohwx-000001-ema.safetensors", "ohwx-000001.safetensors", "ohwx-ema.safetensors",
                     "ohwx.safetensors"]
    trained, _ = read_lora(Path(cfg.output_dir) / "ohwx.safetensors")
    averaged, meta = read_lora(Path(cfg.output_dir) / "ohwx-ema.safetensors")
    assert meta["ss_ema_decay"] == "0.5"
    assert any(not torch.equal(trained[k], averaged[k]) for k in trained)
    ema = parse_lora_filename("ohwx-000001-ema.safetensors", "ohwx")
    assert (ema.kind, ema.epoch, ema.ema) == ("epoch", 1, True) and ema.filename == "ohwx-000001-ema.safetensors"
    assert ema_filename("ohwx.safetensors") == "ohwx-ema.safetensors"
    assert parse_lora_filename("ohwx-ema", "ohwx-ema").ema is False  # a run named like that keeps its name
    # the grid's "all": each EMA file right after the file it averages, with its own label
    from facelora.evaluate.loras import list_loras

    listed = list_loras(Path(cfg.output_dir), "ohwx")
    assert [lf.label for lf in listed] == ["ohwx-000001", "ohwx-000001-ema", "ohwx", "ohwx-ema"]
    assert [lf.epoch for lf in listed] == [1, 1, 2, 2]


def test_resume_refuses_a_state_of_another_network_type():
    saved = TrainConfig(network_module="networks.lora").model_dump(mode="json")
    with pytest.raises(ResumeError, match="another network type: networks.lora .*this run trains lycoris.kohya"):
        compare_config(saved, TrainConfig(network_module="lycoris.kohya", network_args=["algo=loha"]), 1, 1)
    with pytest.raises(ResumeError, match="another network type"):
        compare_config(saved, TrainConfig(network_args=["conv_dim=4"]), 1, 1)
