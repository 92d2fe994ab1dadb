"""The training loop's parts, without a model: captions, buckets, batch order, the plan they
feed, optimizers and schedulers by Kohya's names, prompts files, the loss, the state."""

from __future__ import annotations

import math
import random
from pathlib import Path

import pytest
import torch
from PIL import Image

from facelora.config import ConfigError, TrainConfig, apply, check
from facelora.dataset import bucket_resolutions, scan, select_bucket
from facelora.plan import plan_for
from facelora.train.captions import shuffle_caption
from facelora.train.data import TrainData, fit
from facelora.train.loss import diffusion_loss, sample_noise, snr_table
from facelora.train.optim import current_lrs, make_optimizer, make_scheduler
from facelora.train.samples import PromptsError, parse_prompt, read_prompts, sample_filename
from facelora.train.state import LoopState


# --- captions --------------------------------------------------------------------------------


def test_shuffle_caption_keeps_the_leading_tokens():
    caption = "ohwx, woman, smiling, outdoors, red shirt, blue sky, short hair"
    seen = set()
    for i in range(30):
        out = shuffle_caption(caption, 2, random.Random(i))
        tags = out.split(", ")
        assert tags[:2] == ["ohwx", "woman"]
        assert sorted(tags) == sorted(t.strip() for t in caption.split(","))
        seen.add(out)
    assert len(seen) > 5  # the rest really moves


def test_shuffle_caption_without_keep_tokens_moves_everything():
    firsts = {shuffle_caption("a, b, c, d", 0, random.Random(i)).split(", ")[0] for i in range(40)}
    assert firsts == {"a", "b", "c", "d"}


# --- buckets and batch order -----------------------------------------------------------------


def test_kohya_buckets():
    resos = bucket_resolutions((512, 512), 256, 1024, 64)
    assert (512, 512) in resos and (384, 640) in resos and (640, 384) in resos
    assert all(w * h <= 512 * 512 and w % 64 == 0 and h % 64 == 0 for w, h in resos)
    assert select_bucket((1000, 1000), resos) == (512, 512)
    assert select_bucket((600, 1000), resos) == (384, 640)  # 0.6 is 384/640 exactly


def test_fit_covers_and_crops_the_centre():
    im = Image.new("RGB", (300, 100), "white")
    im.paste((255, 0, 0), (0, 0, 100, 100))  # a red left third
    out = fit(im, (64, 64))
    assert out.size == (64, 64)
    assert out.getpixel((32, 32)) == (255, 255, 255)  # the centre, not the red edge


def _folder(tmp_path: Path, sizes: list[tuple[int, int]], repeats: int = 3) -> Path:
    root = tmp_path / "image"
    d = root / f"{repeats}_ohwx woman"
    d.mkdir(parents=True)
    for i, size in enumerate(sizes):
        Image.new("RGB", size, (i * 40, 100, 100)).save(d / f"{i}.png")
        (d / f"{i}.txt").write_text(f"ohwx woman, tag{i}, other{i}")
    return root


def test_epoch_order_follows_the_plan_and_the_seed(tmp_path):
    root = _folder(tmp_path, [(64, 64)] * 5)
    cfg = TrainConfig(train_data_dir=str(root), resolution="64", train_batch_size=2, max_train_epochs=2,
                      output_name="x", gradient_accumulation_steps=2)
    data = TrainData(scan(root), cfg)
    plan = plan_for(cfg, scan(root))
    steps = data.epoch_steps(1)
    assert len(steps) == plan.steps_per_epoch == 4  # 15 samples -> 8 batches -> 4 steps of 2
    flat = [i for step in steps for batch in step for i in batch]
    assert sorted(flat) == sorted(list(range(5)) * 3)  # every image, `repeats` times
    assert data.epoch_batches(1) == TrainData(scan(root), cfg).epoch_batches(1)  # a pure function of the seed
    assert data.epoch_batches(1) != data.epoch_batches(2)
    other = TrainData(scan(root), cfg.model_copy(update={"seed": 7}))
    assert other.epoch_batches(1) != data.epoch_batches(1)
    # two processes share the batches, the short one padded as accelerate does
    a, b = data.epoch_steps(1, 2, 0), data.epoch_steps(1, 2, 1)
    assert len(a) == len(b) == plan_for(cfg, scan(root), num_processes=2).steps_per_epoch


def test_buckets_batch_apart_and_the_plan_knows(tmp_path):
    root = _folder(tmp_path, [(64, 64), (64, 64), (64, 64), (60, 100), (60, 100)], repeats=1)
    cfg = TrainConfig(train_data_dir=str(root), resolution="128", enable_bucket=True, min_bucket_reso=64,
                      max_bucket_reso=256, bucket_reso_steps=64, train_batch_size=2, output_name="x")
    data = TrainData(scan(root), cfg)
    assert len(data.buckets()) == 2
    batches = data.epoch_batches(1)
    for batch in batches:  # a batch never mixes buckets
        assert len({data.images[i].bucket for i in batch}) == 1
    assert len(batches) == 2 + 1 == plan_for(cfg, scan(root)).steps_per_epoch  # ceil(3/2) + ceil(2/2), not ceil(5/2)
    info = data.bucket_info()
    assert sorted(b["count"] for b in info["buckets"].values()) == [2, 3]
    tall = [im.bucket for im in data.images if im.path.name == "3.png"][0]
    assert tall == (64, 192)  # the nearest aspect ratio (1/3) to 60/100 within 128 x 128 pixels


# --- config checks the loop relies on ------------------------------------------------------------


@pytest.mark.parametrize("update, words", [
    ({"network_args": ["dora_wd=True"]}, "network_args.*dora_wd.*lycoris.kohya"),
    ({"network_args": ["conv_alpha=4"]}, "conv_alpha needs conv_dim"),
    ({"network_args": ["conv_dim=0"]}, "conv_dim=0: must be above 0"),
    ({"network_args": ["up_lr_weight=fast"]}, "up_lr_weight=fast: 12 comma-separated numbers or one of cosine"),
    ({"network_module": "lycoris.kohya", "network_args": ["algo=glora"]}, "algo=glora.*lora, locon, loha, lokr"),
    ({"network_module": "lycoris.kohya", "network_args": ["rank_dropout=1.5"]}, "rank_dropout=1.5: a probability"),
    ({"network_module": "networks.dylora"}, "networks.lora"),
    ({"max_token_length": 150}, "75"),
])
def test_unsupported_kohya_options_are_refused(update, words):
    with pytest.raises(ConfigError, match=words):
        check(apply(TrainConfig(), update), cuda=False)


# --- optimizers and schedulers ---------------------------------------------------------------


def _params():
    torch.manual_seed(0)
    unet = [torch.nn.Parameter(torch.randn(4, 4)) for _ in range(2)]
    te = [torch.nn.Parameter(torch.randn(4, 4))]
    return unet, te


def _step(optim, scheduler, params):
    loss = sum((p ** 2).sum() for p in params)
    loss.backward()
    optim.optimizer.step()
    scheduler.step()
    optim.optimizer.zero_grad()


@pytest.mark.parametrize("name, args", [
    ("AdamW", []), ("Lion", []), ("SGDNesterov", []), ("DAdaptAdam", ["decouple=True", "weight_decay=0.01"]),
    ("Prodigy", ["weight_decay=0.01"]), ("Adafactor", ["relative_step=False", "scale_parameter=False"]),
])
def test_optimizers_move_the_weights(name, args):
    lr = 1.0 if name in ("DAdaptAdam", "Prodigy") else 1e-2
    cfg = TrainConfig(optimizer_type=name, optimizer_args=args, learning_rate=lr, unet_lr=lr, text_encoder_lr=lr,
                      lr_scheduler="constant")
    unet, te = _params()
    before = [p.detach().clone() for p in unet + te]
    optim = make_optimizer(cfg, unet, te)
    sched = make_scheduler(cfg, optim, 10)
    for _ in range(3):
        _step(optim, sched, unet + te)
    assert all(not torch.equal(a, b) for a, b in zip(before, unet + te))
    assert optim.groups == ["textencoder", "unet"]
    assert name.replace("SGDNesterov", "SGD").lower() in optim.description.lower()
    lrs = current_lrs(optim, sched)
    assert set(lrs) >= {"lr/unet", "lr/textencoder"}
    assert ("lr/d*lr" in lrs) == (name in ("DAdaptAdam", "Prodigy"))


def test_adafactor_relative_step_runs_on_its_own_rate():
    cfg = TrainConfig(optimizer_type="Adafactor", optimizer_args=["relative_step=True", "warmup_init=True"],
                      lr_scheduler="cosine", learning_rate=1.0)
    unet, te = _params()
    optim = make_optimizer(cfg, unet, te)
    assert optim.relative_step and all(g["lr"] is None for g in optim.optimizer.param_groups)
    sched = make_scheduler(cfg, optim, 10)
    assert any("replaced by 'adafactor'" in n.text for n in optim.notes)
    _step(optim, sched, unet + te)
    lr = current_lrs(optim, sched)["lr/unet"]
    assert 0 < lr < 1e-3  # warmup_init: 1e-6 x step, not the 1.0 given


def test_groups_skip_an_untrained_part_or_a_zero_rate():
    unet, te = _params()
    optim = make_optimizer(TrainConfig(optimizer_type="AdamW", text_encoder_lr=0), unet, te)
    assert optim.groups == ["unet"] and any("stays as it starts" in n.text for n in optim.notes)
    optim = make_optimizer(TrainConfig(optimizer_type="AdamW"), unet, [])
    assert optim.groups == ["unet"]
    groups = make_optimizer(TrainConfig(optimizer_type="AdamW", unet_lr=3e-4, text_encoder_lr=1e-5), unet, te).optimizer.param_groups
    assert [g["lr"] for g in groups] == [1e-5, 3e-4]
    with pytest.raises(ConfigError, match="Nothing to train"):
        make_optimizer(TrainConfig(optimizer_type="AdamW", unet_lr=0, text_encoder_lr=0), unet, te)


def test_8bit_optimizer_runs_on_the_cpu_without_a_note():
    cfg, notes = check(TrainConfig(optimizer_type="AdamW8bit"), cuda=False)
    assert cfg.optimizer_type == "AdamW8bit" and not any("needs the bitsandbytes package" in n.text for n in notes)


def _lrs(name: str, total: int = 20, **kw) -> list[float]:
    cfg = TrainConfig(optimizer_type="AdamW", lr_scheduler=name, learning_rate=1.0, unet_lr=1.0, text_encoder_lr=1.0, **kw)
    unet, te = _params()
    optim = make_optimizer(cfg, unet, te)
    sched = make_scheduler(cfg, optim, total)
    out = []
    for _ in range(total):
        out.append(sched.get_last_lr()[0])
        optim.optimizer.step()
        sched.step()
    return out


def test_schedulers_by_kohya_names():
    assert set(_lrs("constant")) == {1.0}
    warm = _lrs("constant_with_warmup", lr_warmup_steps=0.25)  # a fraction of the 20 steps: 5
    assert warm[0] == 0 and warm[4] < 1.0 and set(warm[5:]) == {1.0}
    lin = _lrs("linear")
    assert lin[0] == 1.0 and all(a > b for a, b in zip(lin, lin[1:]))
    cos = _lrs("cosine", lr_warmup_steps=4)
    assert cos[:4] == [0, 0.25, 0.5, 0.75] and cos[4] == 1.0 and cos[-1] < 0.05
    restarts = _lrs("cosine_with_restarts", lr_scheduler_num_cycles=2)
    assert restarts[0] == 1.0 and restarts[10] == 1.0 and restarts[9] < 0.1  # restarts halfway
    poly1, poly2 = _lrs("polynomial"), _lrs("polynomial", lr_scheduler_power=2.0)
    assert poly2[10] < poly1[10]  # a higher power decays faster


# --- prompts ---------------------------------------------------------------------------------


def test_kohya_prompt_syntax(tmp_path):
    p = parse_prompt("a photo of ohwx woman, smiling --n blurry, lowres --w 512 --h 770 --d 42 --l 6.5 --s 20")
    assert (p.prompt, p.negative, p.width, p.height, p.seed, p.scale, p.steps) == (
        "a photo of ohwx woman, smiling", "blurry, lowres", 512, 768, 42, 6.5, 20)
    assert parse_prompt("just a prompt").seed is None
    with pytest.raises(PromptsError, match="--x"):
        parse_prompt("a --x 3")
    with pytest.raises(PromptsError, match="number"):
        parse_prompt("a --w wide")
    f = tmp_path / "prompts.txt"
    f.write_text("# comment\n\nfirst --d 1\nsecond\n")
    assert [p.prompt for p in read_prompts(f)] == ["first", "second"]
    assert sample_filename("ohwx", 3, 1, 42) == "ohwx_e000003_01_42.png"
    with pytest.raises(PromptsError):
        read_prompts(tmp_path / "missing.txt")


# --- loss and state --------------------------------------------------------------------------


def test_min_snr_weighting_and_noise_offset():
    from diffusers import DDPMScheduler

    sched = DDPMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012)
    snr = snr_table(sched)
    pred, noise = torch.zeros(2, 4, 8, 8), torch.ones(2, 4, 8, 8)
    t = torch.tensor([0, 999])
    plain = diffusion_loss(pred, noise, t)
    weighted = diffusion_loss(pred, noise, t, snr, 5.0)
    # t=0 has a huge SNR, weighted by 5/SNR; t=999 has SNR << 5, weight 1
    assert plain == 1.0 and math.isclose(float(weighted), (5.0 / float(snr[0]) + 1.0) / 2, rel_tol=1e-5)
    lat = torch.zeros(2, 4, 8, 8)
    n0 = sample_noise(lat, torch.Generator().manual_seed(0), 0.0)
    n1 = sample_noise(lat, torch.Generator().manual_seed(0), 0.1)
    offset = (n1 - n0)
    assert offset.abs().max() > 0 and torch.allclose(offset, offset[:, :, :1, :1].expand_as(offset), atol=1e-6)


def test_loop_state_round_trip(tmp_path):
    s = LoopState(seed=5, global_step=7, epoch=2, step_in_epoch=3)
    for v in (1.0, 2.0, 3.0):
        s.record(v, window=2)
    assert s.average_loss == 2.5
    s.save(tmp_path / "state.json")
    back = LoopState.load(tmp_path / "state.json")
    assert back == s
    g1, g2 = s.generator("noise").initial_seed(), back.generator("noise").initial_seed()
    assert g1 == g2 != s.generator("timesteps").initial_seed()
