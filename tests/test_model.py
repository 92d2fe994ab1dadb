"""The base model: loading and saving both layouts (round trips on the tiny model), SD1.5's
single-file key layout (on the meta device, no memory), the errors for files that are not SD1.5,
text encoding with clip_skip, and the sampler table."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
import torch
from diffusers import StableDiffusionPipeline
from diffusers.loaders.single_file_utils import (
    convert_ldm_clip_checkpoint,
    convert_ldm_unet_checkpoint,
    convert_ldm_vae_checkpoint,
)
from safetensors.torch import load_file, save_file

from facelora.model import ldm
from facelora.model.base import load_base
from facelora.model.family import UnknownSamplerError, sampler_key
from facelora.model.sampling import SAMPLERS, make_pipeline
from facelora.model.save import save_diffusers, save_single_file, single_file_state_dict
from facelora.model.sdmodel import SD15_DIR, BaseModelError, SDModel, empty_models, read_config
from facelora.model.text import encode_prompt, tokenize
from facelora.fileio import DiskFullError
from facelora.model.tiny import build_tiny, tiny_diffusers_path, tiny_path


@pytest.fixture(scope="module")
def tiny() -> SDModel:
    return build_tiny()


@pytest.fixture(scope="module")
def tiny_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("tiny") / "tiny.safetensors"
    save_single_file(build_tiny(), path)
    return path


def assert_same_weights(a: SDModel, b: SDModel) -> None:
    for part in ("unet", "vae", "text_encoder"):
        sa, sb = getattr(a, part).state_dict(), getattr(b, part).state_dict()
        assert sa.keys() == sb.keys(), part
        for k in sa:
            assert sa[k].dtype == sb[k].dtype and torch.equal(sa[k], sb[k]), f"{part}.{k}"


def outputs(model: SDModel) -> list[torch.Tensor]:
    """UNet noise prediction, VAE latents and decode, text embeddings at clip_skip 1 and 2."""
    g = torch.Generator().manual_seed(0)
    ids = tokenize(model, ["a photo of ohwx woman", "a portrait"])
    latents = torch.randn(2, 4, 8, 8, generator=g)
    image = torch.rand(1, 3, 64, 64, generator=g) * 2 - 1
    with torch.no_grad():
        cond = encode_prompt(model, ids, 1)
        return [
            cond, encode_prompt(model, ids, 2),
            model.unet(latents, torch.tensor([10, 500]), cond).sample,
            model.vae.encode(image).latent_dist.mean, model.vae.decode(latents[:1]).sample,
        ]


# --- round trips -------------------------------------------------------------------------------


def test_tiny_is_deterministic_and_leaves_the_random_state_alone(tiny):
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    again = build_tiny()
    assert torch.equal(torch.rand(1), before)  # build_tiny did not consume the caller's RNG
    assert_same_weights(tiny, again)
    other = build_tiny(seed=1)
    assert not torch.equal(other.unet.conv_in.weight, tiny.unet.conv_in.weight)
    assert tiny.is_tiny and list(tiny.unet.config.block_out_channels) == [32, 64]
    assert tiny.text_encoder.config.vocab_size == 49408 and tiny.text_encoder.config.max_position_embeddings == 77
    with torch.no_grad():  # latents are 1/8 of the image, as in SD1.5
        assert tiny.vae.encode(torch.zeros(1, 3, 64, 64)).latent_dist.mean.shape == (1, 4, 8, 8)


def test_single_file_round_trip(tiny, tiny_file):
    loaded = load_base(str(tiny_file))
    assert loaded.name == "tiny.safetensors" and loaded.path == str(tiny_file.resolve()) and loaded.is_tiny
    assert_same_weights(tiny, loaded)
    for a, b in zip(outputs(tiny), outputs(loaded)):
        assert torch.equal(a, b)
    # The file holds the LDM names A1111/ComfyUI read, with 1x1-conv VAE attention.
    keys = load_file(tiny_file)
    assert "model.diffusion_model.input_blocks.1.1.proj_in.weight" in keys
    assert keys["first_stage_model.encoder.mid.attn_1.q.weight"].ndim == 4
    assert keys["cond_stage_model.transformer.text_model.embeddings.position_ids"].tolist() == [list(range(77))]
    assert all(k.startswith((ldm.UNET_PREFIX, ldm.VAE_PREFIX, ldm.CLIP_PREFIX)) for k in keys)
    # Saved again, the same bytes of weights: saving and loading are symmetric.
    again = tiny_file.with_name("again.safetensors")
    save_single_file(loaded, again)
    second = load_file(again)
    assert keys.keys() == second.keys() and all(torch.equal(keys[k], second[k]) for k in keys)


def test_single_file_saves_in_fp16_and_loads_back_in_fp32(tiny, tmp_path):
    path = tmp_path / "half.safetensors"
    save_single_file(tiny, path, dtype=torch.float16)
    assert load_file(path)["model.diffusion_model.out.2.weight"].dtype == torch.float16
    loaded = load_base(str(path))
    w = loaded.unet.conv_out.weight
    assert w.dtype == torch.float32 and torch.equal(w, tiny.unet.conv_out.weight.half().float())


def test_diffusers_folder_round_trip(tiny, tmp_path):
    folder = tmp_path / "my model"
    save_diffusers(tiny, folder)
    index = json.loads((folder / "model_index.json").read_text())
    assert index["_class_name"] == "StableDiffusionPipeline" and index["safety_checker"] == [None, None]
    loaded = load_base(str(folder))
    assert loaded.name == "my model" and loaded.is_tiny
    assert_same_weights(tiny, loaded)
    for a, b in zip(outputs(tiny), outputs(loaded)):
        assert torch.equal(a, b)
    # diffusers reads it as its own, and model_index.json itself is accepted as the path.
    pipe = StableDiffusionPipeline.from_pretrained(folder, safety_checker=None)
    assert torch.equal(pipe.unet.conv_in.weight, tiny.unet.conv_in.weight)
    assert load_base(str(folder / "model_index.json")).name == "my model"
    # Saving over it replaces it; a tokenizer-less folder falls back to the shipped tokenizer.
    save_diffusers(loaded, folder)
    import shutil

    shutil.rmtree(folder / "tokenizer")
    no_tok = load_base(str(folder))
    assert torch.equal(tokenize(no_tok, ["ohwx"]), tokenize(tiny, ["ohwx"]))


def test_save_diffusers_never_replaces_a_foreign_folder(tiny, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "me.jpg").write_bytes(b"not a model")
    with pytest.raises(BaseModelError, match="not a diffusers model"):
        save_diffusers(tiny, folder)
    assert (folder / "me.jpg").read_bytes() == b"not a model"


def test_tiny_path_builds_both_layouts_once(tmp_path, monkeypatch):
    monkeypatch.setenv("FACELORA_CACHE", str(tmp_path / "cache"))
    path = tiny_path()
    assert path == tmp_path / "cache" / "tiny" / "tiny.safetensors"
    assert (tiny_diffusers_path() / "unet" / "config.json").is_file()
    stamp = path.stat().st_mtime_ns
    assert tiny_path() == path and path.stat().st_mtime_ns == stamp  # cached, not rebuilt
    model = load_base("tiny")
    assert model.name == "tiny.safetensors" and model.is_tiny
    assert_same_weights(model, load_base(str(tiny_diffusers_path())))
    # A stale cache (other configs) is rebuilt.
    (path.parent / "tiny.json").write_text('{"fingerprint": "old"}')
    tiny_path()
    assert json.loads((path.parent / "tiny.json").read_text())["fingerprint"] != "old"


def test_sd15_single_file_layout_round_trips_through_diffusers_converters():
    """On the meta device (no memory): the real SD1.5 configs give the 1131 keys of
    v1-5-pruned-emaonly.safetensors under their LDM names, and diffusers' own converters take
    them back to exactly the model's state dicts."""
    unet, text_encoder, vae = empty_models(SD15_DIR)
    u, v, t = unet.state_dict(), vae.state_dict(), text_encoder.state_dict()
    ucfg, vcfg = read_config(SD15_DIR, "unet"), read_config(SD15_DIR, "vae")
    single = ldm.to_single_file(u, v, t, ucfg, vcfg, 77)
    count = lambda p: sum(k.startswith(p) for k in single)  # noqa: E731
    assert (len(single), count(ldm.UNET_PREFIX), count(ldm.VAE_PREFIX), count(ldm.CLIP_PREFIX)) == (1131, 686, 248, 197)
    known = {
        "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn1.to_q.weight": (320, 320),
        "model.diffusion_model.input_blocks.3.0.op.weight": (320, 320, 3, 3),
        "model.diffusion_model.middle_block.1.proj_in.weight": (1280, 1280, 1, 1),
        "model.diffusion_model.output_blocks.2.1.conv.weight": (1280, 1280, 3, 3),
        "model.diffusion_model.output_blocks.5.2.conv.weight": (1280, 1280, 3, 3),
        "model.diffusion_model.output_blocks.11.1.proj_out.weight": (320, 320, 1, 1),
        "model.diffusion_model.time_embed.0.weight": (1280, 320),
        "model.diffusion_model.out.2.weight": (4, 320, 3, 3),
        "first_stage_model.encoder.mid.attn_1.q.weight": (512, 512, 1, 1),
        "first_stage_model.decoder.up.0.block.0.nin_shortcut.weight": (128, 256, 1, 1),
        "first_stage_model.decoder.up.3.upsample.conv.weight": (512, 512, 3, 3),
        "first_stage_model.quant_conv.weight": (8, 8, 1, 1),
        "cond_stage_model.transformer.text_model.encoder.layers.11.mlp.fc2.weight": (768, 3072),
        "cond_stage_model.transformer.text_model.final_layer_norm.weight": (768,),
    }
    for key, shape in known.items():
        assert tuple(single[key].shape) == shape, key
    back = {
        "unet": (convert_ldm_unet_checkpoint(single, ucfg), u),
        "vae": (convert_ldm_vae_checkpoint(single, vcfg), v),
        "te": (ldm.text_encoder_keys(convert_ldm_clip_checkpoint(single), text_encoder), t),
    }
    for part, (converted, original) in back.items():
        converted = {k: x for k, x in converted.items() if not k.endswith("position_ids")}
        assert converted.keys() == original.keys(), part
        assert all(converted[k].shape == original[k].shape for k in original), part


# --- errors ------------------------------------------------------------------------------------


def fake(path: Path, tensors: dict[str, tuple[int, ...]]) -> Path:
    save_file({k: torch.zeros(s) for k, s in tensors.items()}, path)
    return path


def test_missing_path_and_hub_names(tmp_path):
    with pytest.raises(BaseModelError, match="No base model at .*never downloads.*SD1.5"):
        load_base(str(tmp_path / "nope.safetensors"))
    with pytest.raises(BaseModelError, match="never downloads"):
        load_base("runwayml/stable-diffusion-v1-5")


def test_truncated_safetensors(tiny_file, tmp_path):
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(tiny_file.read_bytes()[: tiny_file.stat().st_size // 2])
    with pytest.raises(BaseModelError, match="truncated or corrupt.*again"):
        load_base(str(cut))
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 3)
    with pytest.raises(BaseModelError, match="truncated or corrupt"):
        load_base(str(tmp_path / "junk.safetensors"))


@pytest.mark.parametrize(
    ("tensors", "says"),
    [
        ({"conditioner.embedders.0.transformer.text_model.embeddings.token_embedding.weight": (4, 4),
          "model.diffusion_model.input_blocks.0.0.weight": (320, 4, 3, 3)}, "SDXL checkpoint"),
        ({"model.diffusion_model.label_emb.0.0.weight": (4, 4)}, "SDXL checkpoint"),
        ({"lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight": (4, 320, 1, 1)}, "LoRA file, not a base model"),
        ({"lora_te_text_model_encoder_layers_0_mlp_fc1.alpha": ()}, "LoRA file, not a base model"),
        ({"encoder.conv_in.weight": (128, 3, 3, 3), "decoder.conv_out.weight": (3, 128, 3, 3)}, "VAE on its own"),
        ({"cond_stage_model.model.token_embedding.weight": (4, 4),
          "model.diffusion_model.input_blocks.0.0.weight": (320, 4, 3, 3)}, "SD2.x or SD3 checkpoint"),
        ({"model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight": (320, 1024),
          "cond_stage_model.transformer.text_model.final_layer_norm.weight": (4,)}, "SD2.x checkpoint.*1024"),
        ({"down_blocks.0.resnets.0.conv1.weight": (4, 4)}, "diffusers UNet weights file"),
        ({"something.else": (2,)}, "not a Stable Diffusion checkpoint"),
        ({"model.diffusion_model.input_blocks.0.0.weight": (320, 4, 3, 3),
          "first_stage_model.encoder.conv_in.weight": (2,)}, "no text encoder"),
        ({"model.diffusion_model.input_blocks.0.0.weight": (320, 9, 3, 3),
          "first_stage_model.encoder.conv_in.weight": (2,),
          "cond_stage_model.transformer.text_model.final_layer_norm.weight": (2,)}, "inpainting"),
    ],
)
def test_files_that_are_not_sd15_say_what_they_are(tmp_path, tensors, says):
    path = fake(tmp_path / "model.safetensors", tensors)
    with pytest.raises(BaseModelError, match=says) as info:
        load_base(str(path))
    assert "model.safetensors" in str(info.value) and "Stable Diffusion 1.5 base model" in str(info.value)


def test_incomplete_checkpoint(tiny_file, tmp_path):
    sd = load_file(tiny_file)
    del sd["model.diffusion_model.out.2.weight"]
    save_file(sd, tmp_path / "partial.safetensors")
    with pytest.raises(BaseModelError, match="incomplete.*missing.*conv_out.weight"):
        load_base(str(tmp_path / "partial.safetensors"))


def test_diffusers_folders_that_are_not_sd15(tiny, tmp_path):
    folder = tmp_path / "m"
    save_diffusers(tiny, folder)
    config = folder / "unet" / "config.json"
    original = config.read_text()
    config.write_text(json.dumps(dict(json.loads(original), cross_attention_dim=1024)))
    with pytest.raises(BaseModelError, match="SD2.x diffusers model"):
        load_base(str(folder))
    config.write_text(json.dumps(dict(json.loads(original), addition_embed_type="text_time")))
    with pytest.raises(BaseModelError, match="SDXL"):
        load_base(str(folder))
    config.write_text(original)
    for weights in (folder / "unet").glob("*.safetensors"):
        torch.save(load_file(weights), weights.with_suffix(".bin"))
        weights.unlink()
    with pytest.raises(BaseModelError, match="pickle.*--allow-pickle"):
        load_base(str(folder))
    assert_same_weights(tiny, load_base(str(folder), allow_pickle=True))
    (tmp_path / "empty").mkdir()
    with pytest.raises(BaseModelError, match="no model_index.json"):
        load_base(str(tmp_path / "empty"))


class _Boom:
    """Unpickled, it would create a file: proof that code ran."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_ckpt_needs_allow_pickle_and_loads_weights_only(tiny, tiny_file, tmp_path):
    ckpt = tmp_path / "model.ckpt"
    torch.save({"state_dict": load_file(tiny_file), "global_step": 1}, ckpt)
    with pytest.raises(BaseModelError, match="--allow-pickle"):
        load_base(str(ckpt))
    loaded = load_base(str(ckpt), allow_pickle=True)
    assert loaded.name == "model.ckpt"
    assert_same_weights(tiny, loaded)
    evil = tmp_path / "evil.ckpt"
    with open(evil, "wb") as f:
        pickle.dump({"state_dict": {}, "payload": _Boom(tmp_path / "ran")}, f)
    with pytest.raises(BaseModelError, match="weights_only"):
        load_base(str(evil), allow_pickle=True)
    assert not (tmp_path / "ran").exists()


def test_disk_full_keeps_the_earlier_checkpoint(tiny, tmp_path, monkeypatch):
    import errno

    import safetensors.torch as files

    path = tmp_path / "model.safetensors"
    save_single_file(tiny, path)
    before = path.read_bytes()

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(files, "save_file", full)
    with pytest.raises(DiskFullError, match="disk is full.*intact"):
        save_single_file(tiny, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.safetensors"]  # no temporary left


# --- text and sampling -------------------------------------------------------------------------


def test_tokenize_pads_to_77_with_end_tokens(tiny):
    ids = tokenize(tiny, ["a photo of ohwx woman", "x " * 200])
    assert ids.shape == (2, 77)
    assert ids[0, 0] == 49406 and ids[0, -1] == 49407 and (ids[0] == 49407).sum() > 60
    assert ids[1, -1] == 49407  # truncated, still ends with EOS


def test_clip_skip_2_is_the_penultimate_layer_then_the_final_norm(tiny):
    ids = tokenize(tiny, ["a photo of ohwx woman"])
    with torch.no_grad():
        skip2 = encode_prompt(tiny, ids, clip_skip=2)
        last = encode_prompt(tiny, ids, clip_skip=1)
        # Independently: the same encoder without its last layer, read at its output.
        shorter = build_tiny()
        del getattr(shorter.text_encoder, "text_model", shorter.text_encoder).encoder.layers[-1]
        expected = shorter.text_encoder(ids)[0]
    assert torch.allclose(skip2, expected, atol=1e-6)
    assert not torch.allclose(skip2, last)
    with pytest.raises(Exception, match="clip_skip 5 is out of range"):
        encode_prompt(tiny, ids, clip_skip=5)


@pytest.mark.parametrize(
    ("name", "key", "scheduler"),
    [
        ("euler_a", "euler_a", "EulerAncestralDiscreteScheduler"),
        ("Euler a", "euler_a", "EulerAncestralDiscreteScheduler"),
        ("Euler", "euler", "EulerDiscreteScheduler"),
        ("DPM++ 2M Karras", "dpmpp_2m_karras", "DPMSolverMultistepScheduler"),
        ("dpmpp_2m", "dpmpp_2m", "DPMSolverMultistepScheduler"),
        ("DDIM", "ddim", "DDIMScheduler"),
    ],
)
def test_samplers_by_a1111_names(tiny, name, key, scheduler):
    assert sampler_key(name) == key
    pipe = make_pipeline(tiny, name)
    assert type(pipe.scheduler).__name__ == scheduler
    assert pipe.scheduler.config.num_train_timesteps == 1000 and pipe.scheduler.config.beta_schedule == "scaled_linear"
    if key == "dpmpp_2m_karras":
        assert pipe.scheduler.config.use_karras_sigmas and pipe.scheduler.config.algorithm_type == "dpmsolver++"
    assert pipe.unet is tiny.unet and pipe.text_encoder is tiny.text_encoder and pipe.safety_checker is None


def test_pipeline_samples_and_unknown_sampler_is_clear(tiny):
    pipe = make_pipeline(tiny, "DPM++ 2M Karras")
    image = pipe("a photo of ohwx woman", num_inference_steps=2, guidance_scale=7.0, output_type="np",
                 generator=torch.Generator().manual_seed(0)).images  # noise: the tiny model has random weights
    assert image.shape == (1, 64, 64, 3)
    with pytest.raises(UnknownSamplerError, match="Unknown sampler 'LMS'.*DPM\\+\\+ 2M Karras"):
        make_pipeline(tiny, "LMS")
    assert set(SAMPLERS) == {"euler_a", "euler", "dpmpp_2m_karras", "ddim", "dpmpp_2m"}


def test_single_file_state_dict_is_independent_of_an_applied_lora(tiny):
    from facelora.networks.lora import LoRANetwork

    before = single_file_state_dict(tiny)
    net = LoRANetwork(tiny.unet, tiny.text_encoder, rank=2, alpha=1)
    net.apply_to()
    try:
        after = single_file_state_dict(tiny)
    finally:
        net.remove()
    assert before.keys() == after.keys()  # the LoRA's weights never leak into the base model


def test_the_family_names_the_text_module_every_encoder_uses(tiny, monkeypatch):
    import dataclasses
    import sys
    import types

    from facelora.config import TrainConfig
    from facelora.model import family, text
    from facelora.model.sampling import embed
    from facelora.train.step import caption_embeddings

    assert family.SD15.text() is text and family.SD15.key_map() is ldm
    calls = []
    other = types.ModuleType("other_text")
    other.tokenize = lambda model, captions: calls.append(("tokenize", list(captions))) or torch.zeros(len(captions), 77)
    other.encode_prompt = lambda model, ids, clip_skip=1: calls.append(("encode", clip_skip)) or torch.ones(len(ids), 77, 8)
    other.prompt_embeds = lambda model, prompts, clip_skip=1: calls.append(("embeds", list(prompts))) or torch.ones(1, 77, 8)
    monkeypatch.setitem(sys.modules, "other_text", other)
    model = dataclasses.replace(tiny, family=dataclasses.replace(family.SD15, text_module="other_text"))
    caption_embeddings(model, ["a photo of ohwx"], TrainConfig(clip_skip=2), torch.device("cpu"))
    embed(model, "a photo of ohwx", 1)
    assert calls == [("tokenize", ["a photo of ohwx"]), ("encode", 2), ("embeds", ["a photo of ohwx"])]
