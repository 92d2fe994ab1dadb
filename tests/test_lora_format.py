"""The Kohya LoRA file (DESIGN.md section 3): the 264 SD1.5 target names built independently, the
file's tensors, shapes, dtypes, metadata and hashes, and proof that diffusers' own Kohya loader
(the path A1111/ComfyUI-format files take into diffusers) gives the same model as our network."""

from __future__ import annotations

import errno
import hashlib
import json
import logging

import pytest
import torch
from diffusers.models.transformers.transformer_2d import Transformer2DModel
from diffusers.utils import logging as diffusers_logging
from safetensors import safe_open
from safetensors.torch import save as safetensors_bytes
from safetensors.torch import save_file

from facelora.fileio import DiskFullError
from facelora.lora_file import LoRAFileError, kohya_metadata, read_lora, save_lora
from facelora.model.sampling import make_pipeline
from facelora.model.sdmodel import SD15_DIR, empty_models
from facelora.model.text import encode_prompt, tokenize
from facelora.networks.lora import LoRANetwork
from facelora.networks.targets import target_modules
from facelora.model.tiny import build_tiny

# The per-block targets of the standard Kohya set, written out rather than walked.
BLOCK_TARGETS = [
    "proj_in", "proj_out",
    *(f"transformer_blocks_0_{a}_{p}" for a in ("attn1", "attn2") for p in ("to_q", "to_k", "to_v", "to_out_0")),
    "transformer_blocks_0_ff_net_0_proj", "transformer_blocks_0_ff_net_2",
]
TE_TARGETS = ["self_attn_q_proj", "self_attn_k_proj", "self_attn_v_proj", "self_attn_out_proj", "mlp_fc1", "mlp_fc2"]
DESIGN_METADATA = {
    "ss_network_module", "ss_network_dim", "ss_network_alpha", "ss_network_args", "ss_base_model_version", "ss_v2",
    "ss_output_name", "ss_sd_model_name", "ss_clip_skip", "ss_resolution", "ss_num_train_images", "ss_epoch",
    "ss_steps", "ss_training_started_at", "ss_tag_frequency", "ss_dataset_dirs", "ss_bucket_info",
    "ss_learning_rate", "ss_unet_lr", "ss_text_encoder_lr", "ss_optimizer", "ss_lr_scheduler", "ss_seed",
    "modelspec.sai_model_spec", "modelspec.architecture", "modelspec.implementation", "modelspec.title",
    "modelspec.resolution", "modelspec.date", "modelspec.prediction_type", "modelspec.trigger_phrase",
}


def expected_names(unet, layers: int) -> set[str]:
    names = {
        "lora_unet_" + path.replace(".", "_") + "_" + target
        for path, module in unet.named_modules() if isinstance(module, Transformer2DModel)
        for target in BLOCK_TARGETS
    }
    return names | {f"lora_te_text_model_encoder_layers_{i}_{t}" for i in range(layers) for t in TE_TARGETS}


def trained_network(model, rank=8, alpha=4.0, seed=0, **kwargs) -> LoRANetwork:
    """A network with random (non-zero) up weights, as after training."""
    torch.manual_seed(seed)
    net = LoRANetwork(model.unet, model.text_encoder, rank=rank, alpha=alpha, **kwargs)
    with torch.no_grad():
        for lora in net.loras.values():
            lora.lora_up.weight.normal_(0, 0.2)
    return net


def metadata(**kw) -> dict[str, str]:
    fields = dict(network_dim=8, network_alpha=4.0, output_name="ohwx", sd_model_name="tiny.safetensors", clip_skip=1,
                  resolution=512, num_train_images=40, epoch=2, steps=80, training_started_at=1700000000.5,
                  tag_frequency={"10_ohwx woman": {"ohwx woman": 4}},
                  dataset_dirs={"10_ohwx woman": {"n_repeats": 10, "img_count": 4}},
                  learning_rate=1e-4, unet_lr=1e-4, text_encoder_lr=5e-5, optimizer="torch.optim.adamw.AdamW",
                  lr_scheduler="cosine", seed=42, trigger_phrase="ohwx", max_train_steps=80)
    return kohya_metadata(**(fields | kw))


# --- target list -------------------------------------------------------------------------------


def test_sd15_targets_are_the_264_kohya_modules():
    """SD1.5's real configs on the meta device (no memory): 192 UNet + 72 text-encoder modules,
    589,824 parameters per unit of rank."""
    unet, text_encoder, _ = empty_models(SD15_DIR)
    targets = target_modules(unet, text_encoder)
    assert set(targets) == expected_names(unet, 12)
    assert len(targets) == 264
    assert sum(n.startswith("lora_unet_") for n in targets) == 192
    assert sum(n.startswith("lora_te_text_model_encoder_layers_") for n in targets) == 72
    assert not any(n.startswith(("lora_te1_", "lora_te_encoder_")) for n in targets)
    assert "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q" in targets
    assert "lora_unet_mid_block_attentions_0_proj_out" in targets
    assert "lora_te_text_model_encoder_layers_11_mlp_fc2" in targets
    # The names point at the modules they say.
    assert targets["lora_te_text_model_encoder_layers_3_self_attn_k_proj"] is text_encoder.encoder.layers[3].self_attn.k_proj
    assert targets["lora_unet_up_blocks_3_attentions_2_proj_in"] is unet.up_blocks[3].attentions[2].proj_in
    per_rank = sum(_in_out(m) for m in targets.values())
    assert per_rank == 589_824
    net = LoRANetwork(unet, text_encoder, rank=4, alpha=2)
    assert net.num_parameters() == 589_824 * 4
    assert len(net.unet_parameters()) == 2 * 192 and len(net.text_encoder_parameters()) == 2 * 72
    unet_only = LoRANetwork(unet, text_encoder, rank=4, alpha=2, train_text_encoder=False)
    assert len(unet_only.loras) == 192 and not unet_only.text_encoder_parameters()


def _in_out(module) -> int:
    if isinstance(module, torch.nn.Conv2d):
        return module.in_channels + module.out_channels
    return module.in_features + module.out_features


# --- the file ----------------------------------------------------------------------------------


def test_tiny_lora_file_is_kohya_format(tmp_path):
    model = build_tiny()
    rank = 128  # big enough that the file passes 1 MiB + 64 KiB, so the legacy hash covers real bytes
    net = trained_network(model, rank=rank, alpha=64.0)
    path = tmp_path / "ohwx.safetensors"
    save_lora(path, net.kohya_state_dict(), metadata(network_dim=rank, network_alpha=64.0))
    names = set(target_modules(model.unet, model.text_encoder))
    assert len(names) == 60  # 4 transformer blocks x 12 + 2 layers x 6

    with safe_open(str(path), framework="pt") as f:
        keys = set(f.keys())
        meta = f.metadata()
        tensors = {k: f.get_tensor(k) for k in keys}
    assert keys == {n + s for n in names for s in (".lora_down.weight", ".lora_up.weight", ".alpha")}
    assert len(keys) == 3 * len(names)
    for name in names:
        down, up, alpha = (tensors[name + s] for s in (".lora_down.weight", ".lora_up.weight", ".alpha"))
        assert down.dtype == up.dtype == alpha.dtype == torch.float16
        assert alpha.shape == () and float(alpha) == 64.0
        module = target_modules(model.unet, model.text_encoder)[name]
        if name.endswith(("proj_in", "proj_out")):
            assert down.shape == (rank, module.in_channels, 1, 1) and up.shape == (module.out_channels, rank, 1, 1)
        else:
            assert down.shape == (rank, module.in_features) and up.shape == (module.out_features, rank)
    assert meta.keys() == DESIGN_METADATA | {"ss_max_train_steps", "sshs_model_hash", "sshs_legacy_hash"}
    assert meta["ss_network_module"] == "networks.lora" and meta["ss_base_model_version"] == "sd_v1"
    assert meta["ss_v2"] == "False" and meta["ss_network_dim"] == "128" and meta["ss_network_alpha"] == "64.0"
    assert meta["ss_resolution"] == "(512, 512)" and meta["modelspec.resolution"] == "512x512"
    assert meta["modelspec.architecture"] == "stable-diffusion-v1/lora" and meta["modelspec.sai_model_spec"] == "1.0.1"
    assert json.loads(meta["ss_dataset_dirs"]) == {"10_ohwx woman": {"n_repeats": 10, "img_count": 4}}

    # Hashes, recomputed here from their definitions.
    data = path.read_bytes()
    assert len(data) > 0x110000
    header_len = int.from_bytes(data[:8], "little")
    assert meta["sshs_model_hash"] == hashlib.sha256(data[8 + header_len:]).hexdigest()
    training_only = safetensors_bytes(tensors, metadata={k: v for k, v in meta.items() if k.startswith("ss_")})
    assert meta["sshs_legacy_hash"] == hashlib.sha256(training_only[0x100000:0x110000]).hexdigest()[:8]
    assert meta["sshs_legacy_hash"] != hashlib.sha256(data[0x100000:0x110000]).hexdigest()[:8]

    # read_lora gives back what was saved.
    read, read_meta = read_lora(path)
    assert read_meta == meta and read.keys() == tensors.keys()
    assert all(torch.equal(read[k], tensors[k]) for k in read)


def test_save_lora_checks_keys_and_strings(tmp_path):
    model = build_tiny()
    sd = trained_network(model, rank=2).kohya_state_dict()
    with pytest.raises(TypeError, match="must be strings"):
        save_lora(tmp_path / "a.safetensors", sd, {"ss_epoch": 1})
    del sd[next(k for k in sd if k.endswith(".lora_up.weight"))]
    with pytest.raises(LoRAFileError, match="incomplete"):
        save_lora(tmp_path / "a.safetensors", sd, {})
    assert not list(tmp_path.iterdir())


def test_disk_full_keeps_earlier_lora(tmp_path, monkeypatch):
    import facelora.fileio

    model = build_tiny()
    path = tmp_path / "ohwx.safetensors"
    save_lora(path, trained_network(model, rank=2).kohya_state_dict(), metadata())
    before = path.read_bytes()

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(facelora.fileio.os, "fsync", full)
    with pytest.raises(DiskFullError, match="disk is full.*ohwx.safetensors.*intact"):
        save_lora(path, trained_network(model, rank=2, seed=1).kohya_state_dict(), metadata())
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["ohwx.safetensors"]


def test_read_lora_errors(tmp_path):
    model = build_tiny()
    good = tmp_path / "good.safetensors"
    save_lora(good, trained_network(model, rank=2).kohya_state_dict(), metadata())
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(good.read_bytes()[:-100])
    with pytest.raises(LoRAFileError, match="truncated or corrupt"):
        read_lora(cut)
    with pytest.raises(LoRAFileError, match="No LoRA file"):
        read_lora(tmp_path / "missing.safetensors")
    save_file({"model.diffusion_model.out.2.weight": torch.zeros(2)}, tmp_path / "base.safetensors")
    with pytest.raises(LoRAFileError, match="base model checkpoint, not a LoRA"):
        read_lora(tmp_path / "base.safetensors")
    save_file({"lora_te1_text_model_encoder_layers_0_mlp_fc1.lora_down.weight": torch.zeros(2, 2)}, tmp_path / "xl.safetensors")
    with pytest.raises(LoRAFileError, match="SDXL LoRA"):
        read_lora(tmp_path / "xl.safetensors")


# --- the network -------------------------------------------------------------------------------


def test_new_network_changes_nothing_and_remove_restores(tmp_path):
    model = build_tiny()
    ids = tokenize(model, ["ohwx"])
    x = torch.randn(1, 4, 8, 8)
    with torch.no_grad():
        base_te = encode_prompt(model, ids)
        base_unet = model.unet(x, 10, base_te).sample
        net = LoRANetwork(model.unet, model.text_encoder, rank=4, alpha=1.0)
        down = net.loras["lora_unet_down_blocks_0_attentions_0_proj_in"].lora_down.weight
        assert down.abs().sum() > 0 and down.abs().max() <= 1 / 32 ** 0.5 + 1e-6  # kaiming a=sqrt5: U(+-1/sqrt(fan_in))
        net.apply_to()
        assert torch.equal(encode_prompt(model, ids), base_te)  # up starts at zero
        with torch.no_grad():
            for lora in net.loras.values():
                lora.lora_up.weight.normal_()
        assert not torch.allclose(model.unet(x, 10, base_te).sample, base_unet)
        net.remove()
        assert torch.equal(model.unet(x, 10, base_te).sample, base_unet)
    assert all("forward" not in m.__dict__ for m in target_modules(model.unet, model.text_encoder).values())


def test_update_is_up_down_times_alpha_over_rank_times_multiplier():
    model = build_tiny()
    net = trained_network(model, rank=4, alpha=2.0)
    name = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k"
    module = net.loras[name].org_module
    lora = net.loras[name]
    expected_delta = lora.lora_up.weight @ lora.lora_down.weight * (2.0 / 4)
    assert torch.allclose(net.merged_delta(name), expected_delta)
    x = torch.randn(3, module.in_features)
    net.apply_to()
    net.set_multiplier(0.7)
    with torch.no_grad():
        got = module(x)
        want = torch.nn.functional.linear(x, module.weight + 0.7 * expected_delta, module.bias)
    net.remove()
    assert torch.allclose(got, want, atol=1e-5)
    conv_name = "lora_unet_mid_block_attentions_0_proj_in"
    assert net.merged_delta(conv_name).shape == net.loras[conv_name].org_module.weight.shape


def test_load_kohya_state_dict_round_trip_and_mismatches(tmp_path):
    model = build_tiny()
    net = trained_network(model, rank=4, alpha=2.0)
    path = tmp_path / "a.safetensors"
    save_lora(path, net.kohya_state_dict(), metadata(), dtype=torch.float32)
    tensors, _ = read_lora(path)
    again = LoRANetwork(model.unet, model.text_encoder, rank=4, alpha=2.0)
    again.load_kohya_state_dict(tensors)
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), again.state_dict().values()))
    with pytest.raises(LoRAFileError, match="has 36 tensors of 12 modules this network does not.*text encoder"):
        LoRANetwork(model.unet, model.text_encoder, rank=4, alpha=2.0, train_text_encoder=False).load_kohya_state_dict(tensors)
    with pytest.raises(LoRAFileError, match="set network_dim to 4"):
        LoRANetwork(model.unet, model.text_encoder, rank=8, alpha=2.0).load_kohya_state_dict(tensors)
    with pytest.raises(LoRAFileError, match="set network_alpha to 2"):
        LoRANetwork(model.unet, model.text_encoder, rank=4, alpha=1.0).load_kohya_state_dict(tensors)


def test_kohya_metadata_values_are_strings():
    meta = metadata(network_args=["conv_dim=4"], bucket_info=None, noise_offset=0.05, ss_custom="x")
    assert all(isinstance(v, str) for v in meta.values())
    assert DESIGN_METADATA <= set(meta)
    assert json.loads(meta["ss_network_args"]) == {"conv_dim": "4"}
    assert json.loads(meta["ss_tag_frequency"]) == {"10_ohwx woman": {"ohwx woman": 4}}
    assert meta["ss_bucket_info"] == "null" and meta["ss_noise_offset"] == "0.05" and meta["ss_custom"] == "x"
    assert meta["ss_learning_rate"] == "0.0001" and meta["ss_training_started_at"] == "1700000000.5"
    assert meta["modelspec.title"] == "ohwx" and meta["modelspec.trigger_phrase"] == "ohwx"
    assert meta["modelspec.prediction_type"] == "epsilon" and meta["modelspec.implementation"] == "diffusers"
    assert kohya_metadata(network_dim=4, network_alpha=2, resolution="768,512")["ss_resolution"] == "(768, 512)"


# --- what other tools see ----------------------------------------------------------------------


def test_diffusers_loads_the_file_as_our_network(tmp_path, caplog):
    """diffusers' load_lora_weights (its Kohya/A1111 converter, then peft) on a fresh copy of the
    model gives the same UNet and text-encoder outputs as our network, at weight 1 and 0.5; it
    adapts every module and warns about nothing."""
    ours, theirs = build_tiny(), build_tiny()
    net = trained_network(ours, rank=4, alpha=2.0)
    path = tmp_path / "ohwx.safetensors"
    save_lora(path, net.kohya_state_dict(), metadata(network_dim=4, network_alpha=2.0), dtype=torch.float32)
    net.apply_to()

    pipe = make_pipeline(theirs)
    diffusers_logging.enable_propagation()
    try:
        with caplog.at_level(logging.WARNING):
            pipe.load_lora_weights(str(path), adapter_name="face")
    finally:
        diffusers_logging.disable_propagation()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text
    from peft.tuners.lora import LoraLayer

    assert sum(isinstance(m, LoraLayer) for m in pipe.text_encoder.modules()) == len(net.text_encoder_loras) == 12
    assert sum(isinstance(m, LoraLayer) for m in pipe.unet.modules()) == len(net.unet_loras) == 48

    ids = tokenize(ours, ["a photo of ohwx woman", "ohwx"])
    x = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    t = torch.tensor([10, 700])
    for weight in (1.0, 0.5):
        net.set_multiplier(weight)
        pipe.set_adapters(["face"], adapter_weights=[weight])
        with torch.no_grad():
            te_ours, te_theirs = encode_prompt(ours, ids), encode_prompt(theirs, ids)
            unet_ours = ours.unet(x, t, te_ours).sample
            unet_theirs = theirs.unet(x, t, te_ours).sample
        assert torch.allclose(te_ours, te_theirs, atol=1e-5, rtol=1e-5), weight
        assert torch.allclose(unet_ours, unet_theirs, atol=1e-5, rtol=1e-5), weight
    # And the LoRA really changes the model (so the comparison above is not trivially true).
    with torch.no_grad():
        assert not torch.allclose(encode_prompt(build_tiny(), ids), te_ours, atol=1e-3)
