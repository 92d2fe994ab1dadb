"""sd-scripts' three LoRA dropouts in networks.lora (network_dropout, network_args rank_dropout and
module_dropout): training only, as sd-scripts' LoRAModule.forward computes them; imported from the
kohya_ss GUI's "Kohya LoCon" files, exported and recorded in the file's metadata."""

from __future__ import annotations

import io
import json
from types import SimpleNamespace

import pytest
import torch
from rich.console import Console
from torch import nn
from torch.nn import functional as F
from typer.testing import CliRunner

from conftest import tiny_training_project
from facelora import config as c
from facelora.cli import app
from facelora.config import TrainConfig
from facelora.errors import FaceloraError
from facelora.gui.pages.tools import kohya_args
from facelora.lora_file import network_type, read_lora
from facelora.model.tiny import build_tiny
from facelora.networks import check_args, create_network, evaluating
from facelora.networks.lora import LoRAModule
from facelora.train.checkpoints import metadata
from facelora.train.loop import train
from facelora.train.resume import ResumeError, compare_config

DROPS = {"dropout": 0.5, "rank_dropout": 0.5, "module_dropout": 0.5}
# kohya_ss test/config/locon-AdamW.json's network keys (the file's other keys change nothing here)
GUI_LOCON = {"LoRA_type": "Kohya LoCon", "network_dim": 16, "network_alpha": 16, "conv_dim": 16, "conv_alpha": 8,
             "network_dropout": 0.1, "rank_dropout": 0.1, "module_dropout": 0.1, "rank_dropout_scale": False,
             "optimizer": "AdamW", "epoch": 1}


def _pair(org: nn.Module, **drops) -> tuple[LoRAModule, LoRAModule]:
    """Two LoRAs of equal weights over one module: one with `drops`, one without (neither applied)."""
    torch.manual_seed(0)
    plain = LoRAModule("m", org, 4, 2.0)
    nn.init.normal_(plain.lora_up.weight, 0, 0.3)
    dropped = LoRAModule("m", org, 4, 2.0, **drops)
    dropped.load_state_dict(plain.state_dict())
    return plain, dropped


@pytest.mark.parametrize("org, shape", [(nn.Linear(8, 6), (2, 5, 8)), (nn.Conv2d(8, 6, 3, padding=1), (2, 8, 5, 5)),
                                        (nn.Conv2d(8, 6, 1), (2, 8, 5, 5))])
def test_eval_mode_output_is_the_same_with_and_without_dropouts(org, shape):
    plain, dropped = _pair(org, **DROPS)
    x = torch.randn(shape)
    outs = []
    for lora in (plain, dropped):
        lora.apply_to()
        lora.eval()
        outs.append(org(x))
        lora.remove()
    assert not torch.equal(outs[0], org(x))  # the LoRA changes the output
    torch.testing.assert_close(outs[1], outs[0])
    dropped.train()
    dropped.apply_to()
    assert not torch.allclose(org(x), outs[0])  # train mode drops (a draw of 0.5 each)
    dropped.remove()


def test_module_dropout_near_one_gives_the_original_output_in_training():
    org = nn.Linear(8, 6)
    _, lora = _pair(org, module_dropout=0.95)
    x = torch.randn(3, 8)
    base = F.linear(x, org.weight, org.bias)
    lora.apply_to()
    torch.manual_seed(1)
    same = sum(torch.equal(org(x), base) for _ in range(200))
    assert 170 <= same < 200  # 95% of the calls, and the LoRA still acts in the others
    lora.eval()
    assert not torch.allclose(org(x), base)
    lora.remove()


@pytest.mark.parametrize("org, shape, unsqueeze", [
    (nn.Linear(8, 6), (3, 5, 8), lambda m: m[:, None, :]),  # the text encoder's [batch, tokens, features]
    (nn.Conv2d(8, 6, 3, padding=1), (3, 8, 4, 4), lambda m: m[:, :, None, None]),
])
def test_rank_dropout_masks_ranks_per_sample_and_scales_by_one_over_one_minus_p(org, shape, unsqueeze):
    p = 0.4
    _, lora = _pair(org, rank_dropout=p)
    x = torch.randn(shape)
    lora.apply_to()
    torch.manual_seed(7)
    got = org(x)
    lora.remove()
    torch.manual_seed(7)
    mask = unsqueeze((torch.rand(shape[0], 4) > p).float())
    assert 0 < mask.sum() < mask.numel()
    with torch.no_grad():
        hand = org(x) + lora.lora_up(lora.lora_down(x) * mask) * (2.0 / 4) / (1 - p)
    torch.testing.assert_close(got, hand)


def test_a_tiny_train_step_runs_with_all_three_and_the_saved_keys_are_unchanged():
    tiny = build_tiny()
    cfg = TrainConfig(network_dim=4, network_alpha=2.0, network_dropout=0.1,
                      network_args=["conv_dim=4", "conv_alpha=2", "rank_dropout=0.2", "module_dropout=0.1"])
    net = create_network(cfg, tiny)
    lora = next(iter(net.loras.values()))
    assert (lora.dropout, lora.rank_dropout, lora.module_dropout) == (0.1, 0.2, 0.1)
    plain = create_network(cfg.model_copy(update={"network_dropout": None, "network_args": cfg.network_args[:2]}), tiny)
    assert {k: v.shape for k, v in net.kohya_state_dict().items()} == \
        {k: v.shape for k, v in plain.kohya_state_dict().items()}
    torch.manual_seed(0)
    for m in net.loras.values():
        nn.init.normal_(m.lora_up.weight, 0, 0.01)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    net.apply_to()
    net.train()
    optim = torch.optim.AdamW(net.parameters(), lr=1e-3)
    unet = tiny.unet.config
    latents = torch.randn(2, unet.in_channels, unet.sample_size, unet.sample_size)
    text = tiny.text_encoder(torch.randint(0, 49408, (2, 77)))[0]
    pred = tiny.unet(latents, torch.tensor([10, 500]), text).sample
    loss = F.mse_loss(pred, torch.randn_like(pred))
    loss.backward()
    optim.step()
    net.remove()
    assert torch.isfinite(loss)
    after = net.state_dict()
    assert set(after) == set(before)
    assert any(not torch.equal(after[k], before[k]) for k in after if k.endswith("lora_down.weight"))
    assert all(torch.equal(after[k], before[k]) for k in after if k.endswith(".alpha"))


def test_dropouts_are_probabilities():
    check_args("networks.lora", {"rank_dropout": "0", "module_dropout": "0.99"})
    for key in ("rank_dropout", "module_dropout"):
        with pytest.raises(FaceloraError, match=f"{key}=1: a probability"):
            check_args("networks.lora", {key: "1"})
    with pytest.raises(ValueError, match="network_dropout"):
        TrainConfig(network_dropout=1.0)


def test_gui_kohya_locon_with_dropouts_imports_and_the_export_keeps_them(tmp_path):
    cfg, notes = c.import_kohya(json.dumps(GUI_LOCON))
    assert cfg.network_module == "networks.lora" and cfg.network_dropout == 0.1
    assert cfg.network_args == ["conv_dim=16", "conv_alpha=8", "rank_dropout=0.1", "module_dropout=0.1"]
    assert not any("dropout" in n for n in notes if "does not use" in n)
    c.check(cfg, cuda=False)
    cfg = cfg.model_copy(update={"output_name": "ohwx"})
    text = c.export_kohya(cfg, tmp_path)
    assert "network_dropout = 0.1" in text
    assert "--network_dropout=0.1" in kohya_args(cfg, tmp_path)  # the GUI's sd-scripts command line
    back, _ = c.import_kohya(text)
    assert (back.network_dropout, back.network_args) == (cfg.network_dropout, cfg.network_args)
    off, _ = c.import_kohya(json.dumps({**GUI_LOCON, "network_dropout": 0}))
    assert off.network_dropout is None  # the GUI's 0 is sd-scripts' unset


def test_the_metadata_records_network_dropout_as_sd_scripts_does():
    dataset = SimpleNamespace(train_subsets=[], reg_subsets=[], num_train_samples=0, tag_frequency=dict)
    plan = SimpleNamespace(total_steps=10, epochs=1, steps_per_epoch=10, num_processes=1, validation_images=0)
    for value, text in ((0.1, "0.1"), (None, "None")):  # sd-scripts writes str(args.network_dropout)
        info = SimpleNamespace(cfg=TrainConfig(network_dropout=value, output_name="ohwx"), plan=plan,
                               data=SimpleNamespace(dataset=dataset, bucket_info=lambda: None),
                               base_model_name="tiny", optimizer="AdamW", started_at=0.0, trigger="ohwx")
        assert metadata(info, 1, 10)["ss_network_dropout"] == text


def test_evaluating_turns_the_dropouts_off_for_a_while():
    org = nn.Linear(8, 6)
    plain, lora = _pair(org, module_dropout=0.9)
    holder = nn.ModuleDict({"m": lora})
    x = torch.randn(3, 8)
    lora.apply_to()
    with evaluating(holder):
        got = org(x)
    assert holder.training and lora.training
    lora.remove()
    plain.apply_to()
    plain.eval()
    torch.testing.assert_close(got, org(x))
    plain.remove()


def test_resume_notes_a_changed_network_dropout_and_refuses_changed_network_args():
    saved = TrainConfig(output_name="ohwx").model_dump(mode="json")
    notes = compare_config(saved, TrainConfig(output_name="ohwx", network_dropout=0.1), 1, 1)
    assert "network_dropout None -> 0.1" in " ".join(str(n) for n in notes)
    with pytest.raises(ResumeError, match="another network type"):
        compare_config(saved, TrainConfig(output_name="ohwx", network_args=["rank_dropout=0.1"]), 1, 1)


def test_a_gui_kohya_locon_file_with_dropouts_trains_the_tiny_model(tmp_path):
    project = tiny_training_project(tmp_path / "p", images=2, repeats=2)
    gui = tmp_path / "locon.json"
    gui.write_text(json.dumps(GUI_LOCON), encoding="utf-8")
    res = CliRunner().invoke(app, ["config", "import", str(project.root), str(gui)])
    assert res.exit_code == 0, res.output
    cfg = c.apply(project.train_config(), dict(pretrained_model_name_or_path="tiny", resolution="64",
                                               max_train_steps=2, max_train_epochs=None, sample_every_n_epochs=None))
    tensors, meta = read_lora(train(project, cfg, console=Console(file=io.StringIO())).final)
    assert meta["ss_network_dropout"] == "0.1"
    assert json.loads(meta["ss_network_args"]) == {"conv_dim": "16", "conv_alpha": "8", "rank_dropout": "0.1",
                                                    "module_dropout": "0.1"}
    assert network_type(list(tensors)) == "LoRA" and all(torch.isfinite(t).all() for t in tensors.values())
    assert any(k.endswith("conv1.lora_down.weight") for k in tensors)  # LoCon: the 3x3 convolutions too
