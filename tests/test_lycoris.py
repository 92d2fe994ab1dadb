"""Every network type facelora trains (LoRA, Kohya's LoCon, LyCORIS' LoCon, LoHa, LoKr, DoRA) on
the tiny model: it trains, its file carries the keys A1111 and ComfyUI read, and loaded back (by
facelora, by diffusers where diffusers can, by the grid) it acts exactly as the file's weights
merged by hand into the base weights, with the formulas of A1111's network_*.py."""

from __future__ import annotations

import io

import pytest
import torch
from rich.console import Console
from torch.nn import functional as F

from conftest import tiny_training_project
from facelora.config import apply
from facelora.errors import FaceloraError
from facelora.lora_file import LoRAFileError, check_keys, network_type, read_lora
from facelora.model.tiny import build_tiny
from facelora.networks import create_network_from_weights
from facelora.train.loop import train

TYPES = {  # id: (network_module, network_args, the file's module type)
    "lora": ("networks.lora", [], "LoRA"),
    "kohya-locon": ("networks.lora", ["conv_dim=4", "conv_alpha=2"], "LoRA"),
    "locon": ("lycoris.kohya", ["algo=locon", "conv_dim=4", "conv_alpha=2"], "LoRA"),
    "loha": ("lycoris.kohya", ["algo=loha", "conv_dim=4", "conv_alpha=2"], "LoHa"),
    "lokr": ("lycoris.kohya", ["algo=lokr", "conv_dim=4", "conv_alpha=2"], "LoKr"),
    "dora": ("lycoris.kohya", ["algo=lora", "dora_wd=True"], "LoRA+DoRA"),
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The final file of a 2-step run of each type."""
    files = {}
    for kind, (module, args, _) in TYPES.items():
        project = tiny_training_project(tmp_path_factory.mktemp(kind), images=1, repeats=2)
        cfg = apply(project.train_config(), dict(
            pretrained_model_name_or_path="tiny", resolution="64", max_train_epochs=1, network_dim=4,
            network_alpha=2, optimizer_type="AdamW", lr_scheduler="constant", unet_lr=1e-2, text_encoder_lr=1e-2,
            network_module=module, network_args=args, save_precision="float"))
        result = train(project, cfg, console=Console(file=io.StringIO()))
        files[kind] = result.final
    return files


# --- the hand merge ----------------------------------------------------------------------------


def _lora_delta(t: dict, shape) -> torch.Tensor:
    down, up = t["lora_down.weight"], t["lora_up.weight"]
    if down.dim() == 4 and down.shape[2:] != (1, 1):  # A1111: the 3x3 down's kernels mixed by up
        delta = F.conv2d(down.permute(1, 0, 2, 3), up).permute(1, 0, 2, 3)
    else:
        delta = (up.flatten(1) @ down.flatten(1)).reshape(shape)
    return delta * (t["alpha"] / down.shape[0])


def _loha_delta(t: dict, shape) -> torch.Tensor:
    w1 = t["hada_w1_a"] @ t["hada_w1_b"]
    w2 = t["hada_w2_a"] @ t["hada_w2_b"]
    return (w1 * w2).reshape(shape) * (t["alpha"] / t["hada_w1_b"].shape[0])


def _lokr_delta(t: dict, shape) -> torch.Tensor:
    w1 = t["lokr_w1"] if "lokr_w1" in t else t["lokr_w1_a"] @ t["lokr_w1_b"]
    w2 = t["lokr_w2"] if "lokr_w2" in t else t["lokr_w2_a"] @ t["lokr_w2_b"].flatten(1)
    dim = t["lokr_w2_b"].shape[0] if "lokr_w2_b" in t else (t["lokr_w1_b"].shape[0] if "lokr_w1_b" in t else None)
    scale = t["alpha"] / dim if dim else 1.0
    out1, in1 = w1.shape
    w2 = w2.reshape(shape[0] // out1, shape[1] // in1, *shape[2:])
    return torch.kron(w1.reshape(out1, in1, *[1] * (len(shape) - 2)), w2) * scale


def merged_by_hand(file) -> torch.nn.Module:
    """A fresh tiny model with each module's weight W replaced by the file's merge of it."""
    model = build_tiny()
    tensors, _ = read_lora(file)
    modules = {}
    for key, value in tensors.items():
        name, _, suffix = key.partition(".")
        modules.setdefault(name, {})[suffix] = value.float()
    by_name = {}
    for part, prefix in ((model.unet, "lora_unet_"), (model.text_encoder, "lora_te_text_model_")):
        for path, module in part.named_modules():
            by_name[prefix + path.replace(".", "_")] = module
    for name, t in modules.items():
        weight = by_name[name].weight
        if "hada_w1_a" in t:
            delta = _loha_delta(t, weight.shape)
        elif any(k.startswith("lokr_") for k in t):
            delta = _lokr_delta(t, weight.shape)
        else:
            delta = _lora_delta(t, weight.shape)
        new = weight + delta
        if "dora_scale" in t:  # DoRA: W' = m (W + dW) / |W + dW|, the norm over dora_scale's 1-sized dims
            dims = [d for d, n in enumerate(t["dora_scale"].shape) if n == 1]
            new = t["dora_scale"].reshape(*[s if d not in dims else 1 for d, s in enumerate(weight.shape)]) * new / \
                new.pow(2).sum(dim=dims, keepdim=True).sqrt()
        with torch.no_grad():
            weight.copy_(new)
    return model


def outputs(unet, text_encoder) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 1000, (1, 77), generator=g)
    with torch.no_grad():
        text = text_encoder(ids)[0]
        return text, unet(torch.randn(1, 4, 8, 8, generator=g), torch.tensor([500]), text).sample


def assert_same(a, b):
    for x, y in zip(a, b):
        assert torch.allclose(x, y, atol=2e-5, rtol=1e-4), (x - y).abs().max()


# --- tests -------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", TYPES)
def test_each_type_trains_and_loads_back_as_its_hand_merge(trained, kind):
    file = trained[kind]
    tensors, metadata = read_lora(file)
    assert metadata["ss_network_module"] == TYPES[kind][0]
    assert network_type(list(tensors)) == TYPES[kind][2]
    if kind in ("kohya-locon", "locon"):  # 3x3 convolutions are adapted too
        assert any(v.dim() == 4 and v.shape[-1] == 3 for k, v in tensors.items() if k.endswith("lora_down.weight"))
    base = outputs(build_tiny().unet, build_tiny().text_encoder)
    by_hand = merged_by_hand(file)
    expected = outputs(by_hand.unet, by_hand.text_encoder)
    assert not torch.allclose(base[1], expected[1])  # training changed something
    model = build_tiny()
    network, weights = create_network_from_weights(file, model)
    network.load_kohya_state_dict(weights)
    network.apply_to()
    assert_same(outputs(model.unet, model.text_encoder), expected)


@pytest.mark.parametrize("kind", ["lora", "kohya-locon", "locon"])
def test_diffusers_loads_the_types_it_reads_as_their_hand_merge(trained, kind):
    from diffusers import DDIMScheduler

    from facelora.model.sdmodel import build_pipeline

    model = build_tiny()
    pipe = build_pipeline(model, DDIMScheduler.from_config(model.noise_scheduler.config))
    pipe.load_lora_weights(str(trained[kind]), adapter_name="x")
    by_hand = merged_by_hand(trained[kind])
    assert_same(outputs(pipe.unet, pipe.text_encoder), outputs(by_hand.unet, by_hand.text_encoder))


def test_diffusers_reads_a_dora_file_otherwise_so_the_grid_applies_it_itself(trained):
    """diffusers 0.3x converts lycoris' dora_scale into peft's magnitude, but its outputs are not
    the file's merge: facelora's grid therefore puts DoRA on with its own adapter."""
    from diffusers import DDIMScheduler

    from facelora.evaluate.adapter import diffusers_reads
    from facelora.model.sdmodel import build_pipeline

    model = build_tiny()
    pipe = build_pipeline(model, DDIMScheduler.from_config(model.noise_scheduler.config))
    pipe.load_lora_weights(str(trained["dora"]), adapter_name="x")
    by_hand = merged_by_hand(trained["dora"])
    got, want = outputs(pipe.unet, pipe.text_encoder), outputs(by_hand.unet, by_hand.text_encoder)
    assert not all(torch.allclose(x, y, atol=2e-5, rtol=1e-4) for x, y in zip(got, want))
    assert not diffusers_reads(list(read_lora(trained["dora"])[0]))


@pytest.mark.parametrize("kind", ["loha", "lokr", "dora", "locon"])
def test_the_grid_applies_every_type(trained, kind):
    from diffusers import DDIMScheduler

    from facelora.evaluate.grid import LoraSlot
    from facelora.evaluate.infotext import LoraTag
    from facelora.model.sdmodel import build_pipeline

    model = build_tiny()
    pipe = build_pipeline(model, DDIMScheduler.from_config(model.noise_scheduler.config))
    base = outputs(pipe.unet, pipe.text_encoder)
    slot = LoraSlot(pipe)
    slot.use(trained[kind])
    slot.weigh(LoraTag(trained[kind].stem, 1.0))
    by_hand = merged_by_hand(trained[kind])
    assert_same(outputs(pipe.unet, pipe.text_encoder), outputs(by_hand.unet, by_hand.text_encoder))
    slot.use(None)  # unloaded: the base model again
    assert_same(outputs(pipe.unet, pipe.text_encoder), base)


def test_lycoris_keys_are_checked_per_type():
    check_keys(["lora_unet_a.hada_w1_a", "lora_unet_a.hada_w1_b", "lora_unet_a.hada_w2_a",
                "lora_unet_a.hada_w2_b", "lora_unet_a.alpha"], "LoHa")
    check_keys(["lora_unet_a.lokr_w1", "lora_unet_a.lokr_w2_a", "lora_unet_a.lokr_w2_b", "lora_unet_a.alpha"], "LoKr")
    check_keys(["lora_unet_a.lora_down.weight", "lora_unet_a.lora_up.weight", "lora_unet_a.dora_scale"], "DoRA")
    with pytest.raises(LoRAFileError, match="incomplete: lora_unet_a has"):
        check_keys(["lora_unet_a.hada_w1_a", "lora_unet_a.hada_w1_b", "lora_unet_a.alpha"], "half a LoHa")
    with pytest.raises(LoRAFileError, match="incomplete"):
        check_keys(["lora_unet_a.lokr_w1", "lora_unet_a.lora_up.weight"], "a mix within one module")


def test_a_loha_file_claiming_to_be_networks_lora_is_refused_by_the_grid(trained, tmp_path):
    from diffusers import DDIMScheduler

    from facelora.evaluate.grid import LoraSlot
    from facelora.lora_file import save_lora
    from facelora.model.sdmodel import build_pipeline

    tensors, metadata = read_lora(trained["loha"])
    wrong = tmp_path / "wrong.safetensors"
    save_lora(wrong, tensors, dict(metadata, ss_network_module="networks.lora"))
    model = build_tiny()
    slot = LoraSlot(build_pipeline(model, DDIMScheduler.from_config(model.noise_scheduler.config)))
    with pytest.raises(FaceloraError, match="holds LoHa modules but says it is networks.lora"):
        slot.use(wrong)
