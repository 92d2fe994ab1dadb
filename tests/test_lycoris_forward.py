"""lycoris' modules in facelora's cheaper forms (networks/lycoris_forward.py) compute what
lycoris' own rebuild forward computes, outputs and gradients, on the tiny model, without the
weight-sized tensor per module that the rebuild form keeps for the backward pass."""

from __future__ import annotations

import pytest
import torch

from facelora.errors import FaceloraError
from facelora.model.tiny import build_tiny
from facelora.networks import lycoris

TYPES = {
    "locon": ["algo=locon", "conv_dim=4", "conv_alpha=2"],
    "loha": ["algo=loha", "conv_dim=4", "conv_alpha=2"],
    "lokr": ["algo=lokr", "conv_dim=4", "conv_alpha=2"],
    "dora": ["algo=lora", "dora_wd=True"],
    "dora-locon": ["algo=locon", "dora_wd=True", "conv_dim=4", "conv_alpha=2"],
}
# 12 x 12 latents: 144 tokens, so no activation has the shape of one of the tiny model's weights
LATENTS = (1, 4, 12, 12)


def _network(args: list[str], multiplier: float = 1.0, **extra):
    """The tiny model with a lycoris network whose weights are all away from their start (up
    at zero would make every form give the base output)."""
    model = build_tiny()
    for part in (model.unet, model.text_encoder):
        part.requires_grad_(False)
    torch.manual_seed(0)
    kwargs = dict(a.split("=", 1) for a in args) | extra
    net = lycoris.create_network(multiplier, 4, 2, model.vae, model.text_encoder, model.unet, **kwargs)
    net.apply_to()
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in sorted(net.named_parameters()):
            if name.endswith("dora_scale"):  # the magnitudes: the weight's norms, moved
                p.mul_(1 + 0.3 * torch.rand(p.shape, generator=generator))
            else:
                p.copy_(torch.randn(p.shape, generator=generator) * 0.1)
    return model, net


def _step(model, net, saved: list | None = None):
    """UNet output on the text encoder's output, and each parameter's gradient of a loss on it."""
    ids = model.tokenizer(["photo of ohwx man"], padding="max_length", max_length=77, return_tensors="pt").input_ids
    generator = torch.Generator().manual_seed(2)
    latents = torch.randn(LATENTS, generator=generator)
    hooks = torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t)
    if saved is None:
        hooks = torch.autograd.graph.saved_tensors_hooks(lambda t: t, lambda t: t)
    with hooks:
        text = model.text_encoder(ids)[0]
        out = model.unet(latents, torch.tensor([500]), text).sample
    out.pow(2).mean().backward()
    return out.detach(), {n: p.grad.clone() for n, p in net.named_parameters()}


@pytest.mark.parametrize("kind", TYPES)
def test_the_cheap_forward_equals_lycoris_rebuild_forward(kind):
    model, cheap = _network(TYPES[kind])
    assert set(cheap.forms) == {"dora" if kind.startswith("dora") else "bypass"}, cheap.forms
    ref_model, rebuild = _network(TYPES[kind], cheap_forwards=False)  # lycoris' own forward
    assert not rebuild.forms and not any(m.bypass_mode for m in rebuild.loras.values())
    out, grads = _step(model, cheap)
    ref_out, ref_grads = _step(ref_model, rebuild)
    assert ref_out.abs().max() > 0 and (ref_out - _base_output()).abs().max() > 1e-3  # the network acts
    torch.testing.assert_close(out, ref_out, rtol=1e-4, atol=1e-5)
    assert grads.keys() == ref_grads.keys()
    for name in grads:
        torch.testing.assert_close(grads[name], ref_grads[name], rtol=1e-3, atol=1e-6, msg=name)


def test_dora_at_another_multiplier_equals_lycoris():
    model, cheap = _network(TYPES["dora"], multiplier=0.5)
    ref_model, rebuild = _network(TYPES["dora"], multiplier=0.5, cheap_forwards=False)
    out, grads = _step(model, cheap)
    ref_out, ref_grads = _step(ref_model, rebuild)
    torch.testing.assert_close(out, ref_out, rtol=1e-4, atol=1e-5)
    for name in grads:
        torch.testing.assert_close(grads[name], ref_grads[name], rtol=1e-3, atol=1e-6, msg=name)


def test_dora_on_a_layer_another_network_adapts_equals_lycoris():
    """Two networks on one model (the second's base is the first's output), as lycoris stacks them."""
    outputs = []
    for extra in ({}, {"cheap_forwards": False}):
        model, first = _network(TYPES["locon"], **extra)
        torch.manual_seed(3)
        second = lycoris.create_network(1.0, 4, 2, None, model.text_encoder, model.unet, algo="lora",
                                        dora_wd="True", **extra)
        with torch.no_grad():
            for p in second.parameters():
                p.mul_(1.2) if p.dim() > 1 and p.shape[1] == 1 else p.normal_(0, 0.1)
        second.apply_to()
        outputs.append(_step(model, first)[0])
    torch.testing.assert_close(outputs[0], outputs[1], rtol=1e-4, atol=1e-5)


def _base_output():
    model = build_tiny()
    ids = model.tokenizer(["photo of ohwx man"], padding="max_length", max_length=77, return_tensors="pt").input_ids
    latents = torch.randn(LATENTS, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        return model.unet(latents, torch.tensor([500]), model.text_encoder(ids)[0]).sample


@pytest.mark.parametrize("kind", ["locon", "dora"])
def test_no_weight_sized_tensor_is_kept_for_the_backward(kind):
    """What made lycoris' default cost about the UNet's size again: each module's W' - W."""
    def weight_sized(model, net):
        saved: list[torch.Tensor] = []
        _step(model, net, saved)
        shapes = {tuple(m.org_module[0].weight.shape) for m in net.loras.values()}
        return sum(t.numel() for t in saved if t.grad_fn is not None and tuple(t.shape) in shapes)

    assert weight_sized(*_network(TYPES[kind], cheap_forwards=False)) > 0
    assert weight_sized(*_network(TYPES[kind])) == 0


def test_dropout_keeps_lycoris_own_forward():
    """lycoris drops other things in its two forms, so training with dropout stays as in Kohya."""
    _, net = _network(TYPES["locon"], rank_dropout="0.1")
    assert net.forms == {"rebuild": len(net.loras)}
    _, net = _network(TYPES["locon"], dropout="0.1")
    assert net.forms == {"rebuild": len(net.loras)}


def test_kohya_ss_bypass_mode_false_gets_the_cheap_forms_and_true_lycoris_bypass():
    """kohya_ss writes bypass_mode=False into every LyCORIS network_args (its checkbox's default)."""
    _, net = _network(TYPES["dora"], bypass_mode="False")
    assert net.forms == {"dora": len(net.loras)}
    _, net = _network(TYPES["locon"], bypass_mode="True")
    assert not net.forms and all(m.bypass_mode for m in net.loras.values())


def test_bypass_mode_with_dora_is_refused():
    with pytest.raises(FaceloraError, match="bypass_mode=True with dora_wd=True.*plain LoRA"):
        lycoris.check_args({"algo": "lora", "dora_wd": "True", "bypass_mode": "True"})
    lycoris.check_args({"algo": "locon", "bypass_mode": "True"})
    lycoris.check_args({"algo": "lora", "dora_wd": "True", "bypass_mode": "False"})
