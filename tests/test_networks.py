"""The network registry (networks/): Kohya's network_module names, a network built from a
config and from a file's weights (sd-scripts' create_network / create_network_from_weights),
and the one sampling module that training samples and the grid share."""

from __future__ import annotations

import subprocess
import sys
from contextlib import nullcontext

import numpy as np
import pytest
import torch
from PIL import Image

from facelora.config import TrainConfig
from facelora.errors import FaceloraError
from facelora.lora_file import LoRAFileError, kohya_metadata, read_metadata, save_lora
from facelora.model.sampling import embed, make_pipeline, render
from facelora.model.tiny import build_tiny
from facelora.networks import NETWORK_MODULES, UnknownNetworkError, create_network, create_network_from_weights
from facelora.networks import lora as lora_network
from facelora.networks import network_module
from facelora.networks.targets import target_modules
from facelora.train.samples import SamplePrompt, make_samples


@pytest.fixture(scope="module")
def tiny():
    return build_tiny()


def _trained(net, seed=0):
    torch.manual_seed(seed)
    with torch.no_grad():
        for lora in net.loras.values():
            lora.lora_up.weight.normal_(0, 0.2)
    return net


def test_the_registry_is_keyed_by_kohyas_network_module():
    assert network_module("networks.lora") is lora_network
    assert NETWORK_MODULES["networks.lora"] == "facelora.networks.lora"
    assert NETWORK_MODULES["lycoris.kohya"] == "facelora.networks.lycoris"
    with pytest.raises(UnknownNetworkError, match="network_module 'networks.dylora'.*networks.lora, lycoris.kohya"):
        network_module("networks.dylora")


def test_every_network_type_has_its_torch_free_args_check():
    from facelora.networks import check_args
    from facelora.networks.args import CHECKS

    assert set(CHECKS) == set(NETWORK_MODULES)
    assert network_module("networks.lora").check_args is CHECKS["networks.lora"]  # what create_network checks
    with pytest.raises(FaceloraError, match="networks.lora in facelora takes conv_dim"):
        check_args("networks.lora", {"algo": "loha"})
    check_args("lycoris.kohya", {"algo": "loha"})
    with pytest.raises(UnknownNetworkError, match="network_module 'networks.dylora'"):
        check_args("networks.dylora", {})


def test_create_network_from_a_config(tiny):
    cfg = TrainConfig(network_dim=4, network_alpha=2.0)
    net = create_network(cfg, tiny)
    assert list(net.loras) == list(target_modules(tiny.unet, tiny.text_encoder))
    assert net.rank == 4 and net.alpha == 2.0
    unet_only = create_network(TrainConfig(network_dim=4, network_alpha=2.0, network_train_unet_only=True), tiny)
    assert unet_only.loras and not unet_only.text_encoder_loras
    with pytest.raises(FaceloraError, match="network_dropout=1.0: a probability"):
        lora_network.create_network(1.0, 4, 2.0, tiny.vae, tiny.text_encoder, tiny.unet, neuron_dropout=1.0)
    dropped = lora_network.create_network(1.0, 4, 2.0, tiny.vae, tiny.text_encoder, tiny.unet, neuron_dropout=0.1)
    assert all(m.dropout == 0.1 for m in dropped.loras.values())


def test_create_network_from_a_files_weights(tiny, tmp_path):
    for unet_only in (False, True):
        net = _trained(lora_network.LoRANetwork(tiny.unet, tiny.text_encoder, rank=3, alpha=1.5,
                                                train_text_encoder=not unet_only))
        path = tmp_path / f"n{unet_only}.safetensors"
        save_lora(path, net.kohya_state_dict(), kohya_metadata(network_dim=3, network_alpha=1.5), dtype=torch.float32)
        assert read_metadata(path)["ss_network_module"] == "networks.lora"
        again, weights = create_network_from_weights(path, tiny)
        assert again.rank == 3 and again.alpha == 1.5 and list(again.loras) == list(net.loras)
        assert bool(again.text_encoder_loras) is not unet_only
        again.load_kohya_state_dict(weights)
        for key, tensor in net.state_dict().items():
            assert torch.equal(again.state_dict()[key], tensor), key


def test_a_file_with_several_ranks_is_refused(tiny):
    net = _trained(lora_network.LoRANetwork(tiny.unet, tiny.text_encoder, rank=2, alpha=1.0))
    weights = net.kohya_state_dict()
    first = next(k for k in weights if k.endswith(".lora_down.weight"))
    name = first.removesuffix(".lora_down.weight")
    weights[first] = torch.zeros(5, weights[first].shape[1])
    weights[f"{name}.lora_up.weight"] = torch.zeros(weights[f"{name}.lora_up.weight"].shape[0], 5)
    with pytest.raises(LoRAFileError, match=r"ranks \[2, 5\]"):
        lora_network.create_network_from_weights(1.0, None, tiny.vae, tiny.text_encoder, tiny.unet, weights_sd=weights)


def test_reading_lora_files_and_the_registry_needs_no_torch():
    code = ("import sys; import facelora.lora_file, facelora.networks, facelora.evaluate.loras, facelora.model.family; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_training_samples_and_the_grid_draw_the_same_image(tiny, tmp_path):
    prompt = SamplePrompt("a photo of ohwx woman", negative="blurry", width=64, height=64, seed=7, scale=6.0, steps=2)
    (sample,) = make_samples(tiny, [prompt], tmp_path, "ohwx", 1, sampler="euler_a", clip_skip=2, base_seed=0,
                             autocast=nullcontext)
    pipe = make_pipeline(tiny, "euler_a")
    image = render(pipe, embed(tiny, prompt.prompt, 2), embed(tiny, prompt.negative, 2), 7, 2, 6.0, 64, 64)
    with Image.open(sample) as saved:
        assert np.array_equal(np.asarray(saved.convert("RGB")), np.asarray(image.convert("RGB")))
