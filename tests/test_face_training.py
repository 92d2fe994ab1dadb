"""Training for the face (issue 16): the masked loss, class (regularisation) images and the
validation loss, on the tiny model (random weights: a test device)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import torch
from PIL import Image
from rich.console import Console

from conftest import tiny_training_project
from facelora.config import ConfigError, apply, check
from facelora.dataset import class_image_repeats, scan_for, split_validation
from facelora.events import Validation, read_events
from facelora.lora_file import read_metadata
from facelora.model.base import load_base
from facelora.plan import plan_for
from facelora.train.data import TrainData, load_alpha_mask
from facelora.train.loop import train
from facelora.train.loss import apply_masked_loss, diffusion_loss
from facelora.train.state import LoopState
from facelora.train.step import batch_loss
from facelora.train.validation import validation_timesteps

BASE = dict(pretrained_model_name_or_path="tiny", resolution="64", max_train_epochs=1, network_dim=4, network_alpha=2,
            optimizer_type="AdamW", lr_scheduler="constant", unet_lr=1e-3, text_encoder_lr=1e-4, mixed_precision="no")


def project_with(root: Path, images: int = 2, repeats: int = 2, reg: int = 0, **updates):
    project = tiny_training_project(root, images, repeats)
    if reg:
        folder = project.reg_dir / "1_woman"
        folder.mkdir(parents=True)
        for i in range(reg):
            Image.new("RGB", (64, 64), (40 * i, 90, 200 - 30 * i)).save(folder / f"r{i}.png")
            (folder / f"r{i}.txt").write_text("photo of a woman")
        updates.setdefault("reg_data_dir", str(project.reg_dir))
    return project, apply(project.train_config(), {**BASE, **updates})


def run(project, cfg):
    return train(project, cfg, console=Console(file=io.StringIO(), width=200))


# --- masked loss ---------------------------------------------------------------------------------


def test_masked_loss_is_the_hand_computed_weighted_mse():
    g = torch.Generator().manual_seed(0)
    pred, noise = torch.randn(2, 4, 8, 8, generator=g), torch.randn(2, 4, 8, 8, generator=g)
    mask = torch.full((2, 64, 64), 0.25)  # image-sized, as the alpha channel: 8 x 8 pixels per latent pixel
    mask[0, :32, :] = 1.0  # image 0: top half weighted 1
    mask[1, :, :4] = 0.0  # image 1: half of each leftmost latent pixel's 8 columns at 0 -> area mean 0.125
    latent_mask = torch.full((2, 8, 8), 0.25)
    latent_mask[0, :4, :] = 1.0
    latent_mask[1, :, 0] = 0.125
    weights = torch.tensor([1.0, 0.5])  # prior_loss_weight on image 1
    timesteps = torch.tensor([10, 900])
    snr = torch.linspace(0.01, 20, 1000)
    per_image = ((pred - noise) ** 2 * latent_mask[:, None]).mean(dim=(1, 2, 3)) * weights
    s = snr[timesteps]
    hand = (per_image * torch.clamp(s, max=5.0) / s).mean()
    got = diffusion_loss(pred, noise, timesteps, snr, 5.0, mask=mask, loss_weights=weights)
    assert torch.allclose(got, hand, rtol=1e-6)
    assert torch.allclose(apply_masked_loss((pred - noise) ** 2, mask), (pred - noise) ** 2 * latent_mask[:, None])
    assert torch.equal(apply_masked_loss(pred, None), pred)


def test_zero_mask_outside_a_region_leaves_those_latent_pixels_without_gradient():
    """Through the tiny UNet: the gradient of the loss with respect to the predicted latents is
    zero wherever the mask is zero, and not zero inside the region."""
    model = load_base("tiny")
    g = torch.Generator().manual_seed(1)
    latents, noise = torch.randn(1, 4, 8, 8, generator=g), torch.randn(1, 4, 8, 8, generator=g)
    text = torch.randn(1, 77, model.text_encoder.config.hidden_size, generator=g)
    t = torch.tensor([500])
    mask = torch.zeros(1, 64, 64)
    mask[:, 16:40, 8:48] = 1.0  # latent rows 2..4, columns 1..5
    pred = model.unet(model.noise_scheduler.add_noise(latents, noise, t), t, text).sample
    pred.retain_grad()
    diffusion_loss(pred, noise, t, mask=mask).backward()
    inside = torch.zeros(8, 8, dtype=torch.bool)
    inside[2:5, 1:6] = True
    grad = pred.grad[0].abs().sum(dim=0)
    assert torch.all(grad[~inside] == 0) and torch.all(grad[inside] > 0)


def test_alpha_mask_is_the_loss_mask_and_never_reaches_the_vae(tmp_path):
    rgba = Image.new("RGBA", (64, 64), (200, 100, 50, 64))
    rgba.paste((200, 100, 50, 255), (16, 16, 48, 48))
    rgba.save(tmp_path / "a.png")
    mask = load_alpha_mask(tmp_path / "a.png", (64, 64))
    assert mask.shape == (64, 64) and mask[32, 32] == 1.0 and abs(mask[0, 0] - 64 / 255) < 1e-6
    Image.new("RGB", (64, 64), (1, 2, 3)).save(tmp_path / "b.png")  # no alpha: weight 1 everywhere, as Kohya
    assert torch.all(load_alpha_mask(tmp_path / "b.png", (64, 64)) == 1.0)
    from facelora.train.data import load_pixels

    pixels = load_pixels(tmp_path / "a.png", (64, 64))  # RGB only, the colours untouched by the low alpha
    assert pixels.shape == (3, 64, 64) and abs(pixels[0, 0, 0] - (200 / 127.5 - 1)) < 1e-6


def test_masked_loss_needs_alpha_mask():
    with pytest.raises(ConfigError, match="alpha_mask"):
        check(apply(apply_base(), {"masked_loss": True}), cuda=False)


def apply_base():
    from facelora.config import TrainConfig

    return apply(TrainConfig(), BASE)


# --- class images --------------------------------------------------------------------------------


def test_class_images_are_cycled_as_kohya_counts_them():
    a, b, c = Path("a"), Path("b"), Path("c")
    assert class_image_repeats(4, [(a, 1), (b, 1), (c, 1)]) == {a: 2, b: 1, c: 1}  # cycled to 4
    assert class_image_repeats(2, [(a, 1), (b, 1), (c, 1)]) == {a: 1, b: 1}  # c never reached
    assert class_image_repeats(7, [(a, 3), (b, 3)]) == {a: 4, b: 3}  # folder repeats, then +1 in turn
    assert class_image_repeats(5, []) == {}


def test_class_images_in_the_plan_and_interleaved(tmp_path):
    project, cfg = project_with(tmp_path / "p", images=2, repeats=2, reg=3)
    dataset = scan_for(cfg)
    plan = plan_for(cfg, dataset)
    # 2 photos x 2 repeats = 4 samples; the 3 class images are cycled to 4 more: 8 a epoch
    assert (plan.images, plan.reg_images, plan.reg_samples, plan.samples_per_epoch, plan.steps_per_epoch) == (2, 3, 4, 8, 8)
    assert any("cycled" in n for n in plan.notes)
    from facelora.tables import plan_table

    out = io.StringIO()
    Console(file=out, width=200).print(plan_table(plan))
    assert "class images (reg)" in out.getvalue() and "3, cycled to 4 per epoch" in out.getvalue()
    data = TrainData(dataset, cfg)
    order = [i for batch in data.epoch_batches(1) for i in batch]
    reg = [data.images[i].is_reg for i in order]
    assert sorted(order) == [0, 0, 1, 1, 2, 2, 3, 4] and reg.count(True) == 4
    # shuffled together in one bucket, as Kohya's bucket manager does: neither kind comes in one block
    assert reg != sorted(reg) and reg != sorted(reg, reverse=True)
    assert data.loss_weights([0, 2]).tolist() == [1.0, 1.0]


def test_prior_loss_weight_scales_the_class_images_loss(tmp_path):
    model = load_base("tiny")
    losses = {}
    for w in (1.0, 0.3):
        project, cfg = project_with(tmp_path / f"p{w}", images=1, repeats=1, reg=1, prior_loss_weight=w)
        data = TrainData(scan_for(cfg), cfg)
        reg = next(i for i, im in enumerate(data.images) if im.is_reg)
        batch = data.batch([reg], [data.images[reg].caption], [torch.randn(4, 8, 8, generator=torch.Generator().manual_seed(3))] * 2)
        losses[w] = batch_loss(model, batch, LoopState(7), 0, 0, cfg, None, torch.device("cpu"))
    assert torch.allclose(losses[0.3], 0.3 * losses[1.0], rtol=1e-5) and losses[1.0] > 0


# --- validation ----------------------------------------------------------------------------------


def test_split_is_kohyas():
    images = [Path(f"{i}.png") for i in range(10)]
    train, held = split_validation(images, 0.2, 5)
    assert len(train) == 8 and len(held) == 2 and not set(train) & set(held)
    assert split_validation(images, 0.2, 5) == (train, held)  # the validation seed fixes the choice
    assert validation_timesteps(1000) == [200, 400, 600, 800]


def test_validation_loss_is_repeatable_and_kept_with_each_file(tmp_path, monkeypatch):
    import facelora.train.validation as validation

    seen: list[list[int]] = []
    real = validation.diffusion_loss

    def spy(pred, noise, timesteps, *args):
        seen.append(timesteps.tolist())
        return real(pred, noise, timesteps, *args)

    monkeypatch.setattr(validation, "diffusion_loss", spy)
    results = []
    for name in ("a", "b"):
        seen.clear()
        project, cfg = project_with(tmp_path / name, images=4, repeats=1, validation_split=0.25, max_train_epochs=2)
        assert plan_for(cfg, scan_for(cfg)).validation_images == 1
        result = run(project, cfg)
        vals = [e for e in read_events(project.events_path) if isinstance(e, Validation)]
        assert [(v.epoch, v.at, v.images) for v in vals] == [(1, "epoch", 1), (2, "epoch", 1)]
        # one held-out photo x Kohya's 4 timesteps, the same at every validation
        assert seen == [[200], [400], [600], [800]] * 2
        meta = read_metadata(result.final)
        assert float(meta["ss_validation_loss"]) == pytest.approx(vals[-1].loss, abs=1e-6)
        assert meta["ss_num_validation_images"] == "1" and meta["ss_validation_split"] == "0.25"
        results.append([v.loss for v in vals])
    assert results[0] == results[1]  # same seed: identical validation losses


def test_validation_options_need_a_split():
    with pytest.raises(ConfigError, match="validation_split"):
        check(apply(apply_base(), {"validate_every_n_epochs": 2}), cuda=False)


def test_reg_generate_renders_class_images_that_train(tmp_path):
    from typer.testing import CliRunner

    from facelora.cli import app

    project, _ = project_with(tmp_path / "p", images=2, repeats=1)
    settings = project.settings()
    settings.train = apply(settings.train, {**BASE, "resolution": "64"})
    project.save_settings(settings)
    r = CliRunner().invoke(app, ["reg", "generate", str(project.root), "-n", "3", "--steps", "2", "--device", "cpu"])
    assert r.exit_code == 0, r.output
    folder = project.reg_dir / "1_woman"
    assert sorted(p.name for p in folder.iterdir()) == ["0000.png", "0000.txt", "0001.png", "0001.txt", "0002.png", "0002.txt"]
    assert (folder / "0000.txt").read_text().strip() == "photo of a woman"
    assert (folder / "0001.txt").read_text().strip() == "portrait photo of a woman, natural light"
    assert Image.open(folder / "0002.png").size == (64, 64)
    before = (folder / "0000.png").read_bytes()
    r = CliRunner().invoke(app, ["reg", "generate", str(project.root), "-n", "4", "--steps", "2", "--device", "cpu"])
    assert r.exit_code == 0 and (folder / "0003.png").is_file() and (folder / "0000.png").read_bytes() == before
    cfg = project.train_config()
    assert cfg.reg_data_dir == str(project.root / "reg")
    result = run(project, cfg)
    assert result.state.global_step == 4  # 2 photos + 2 class images cycled to match
    meta = read_metadata(result.final)
    assert meta["ss_num_reg_images"] == "4" and "1_woman" in meta["ss_reg_dataset_dirs"]


def test_face_preset_switches_on_the_mask_validation_and_min_snr(tmp_path):
    from facelora.config import preset

    face = preset("face")
    assert (face["masked_loss"], face["alpha_mask"], face["validation_split"], face["min_snr_gamma"]) == (True, True, 0.1, 5.0)
    assert face["optimizer_type"] == preset("static")["optimizer_type"]
    project, cfg = project_with(tmp_path / "p", images=4, repeats=1, **{**face, "optimizer_type": "AdamW"})
    result = run(project, cfg)  # the photos have no alpha channel: trained unmasked, with a note saying so
    assert any("--head-mask" in n.text for n in result.notes)
    assert plan_for(cfg, scan_for(cfg)).validation_images == 0  # round(4 x 0.1) = 0: Kohya holds none out


def test_report_charts_training_and_validation_loss_per_epoch(tmp_path):
    from facelora.report import write_report

    project, cfg = project_with(tmp_path / "p", images=4, repeats=1, validation_split=0.25, max_train_epochs=3)
    run(project, cfg)
    page = write_report(project, plan_for(cfg, scan_for(cfg)).to_dict(), ["facelora train p"]).read_text()
    assert "loss-per-epoch.png" in page and "validation images" in page
    with Image.open(project.epoch_loss_chart) as im:
        assert im.size == (700, 320)


def test_face_options_go_to_kohyas_toml_and_back(tmp_path):
    import tomllib

    from facelora.config import export_kohya, import_kohya

    cfg = apply(apply_base(), {"output_name": "ohwx", "masked_loss": True, "alpha_mask": True, "reg_data_dir": "reg",
                               "prior_loss_weight": 0.5, "validation_split": 0.1, "validation_seed": 3,
                               "validate_every_n_epochs": 2, "max_validation_steps": 4})
    text = export_kohya(cfg, tmp_path)
    flat = {k: v for table in tomllib.loads(text).values() for k, v in table.items()}
    assert flat["masked_loss"] is True and flat["alpha_mask"] is True and flat["prior_loss_weight"] == 0.5
    assert flat["reg_data_dir"] == str((tmp_path / "reg").resolve())
    assert (flat["validation_split"], flat["validation_seed"], flat["validate_every_n_epochs"],
            flat["max_validation_steps"]) == (0.1, 3, 2, 4)
    back, notes = import_kohya(text)
    assert not notes
    assert (back.masked_loss, back.alpha_mask, back.prior_loss_weight, back.validation_split) == (True, True, 0.5, 0.1)


def test_validation_is_due_every_epoch_unless_told_and_every_n_steps_when_told():
    from facelora.train.validation import due

    cfg = apply(apply_base(), {"validation_split": 0.2})
    assert [due(cfg, epoch=e) for e in (1, 2, 3)] == [True, True, True] and not due(cfg, step=4)
    cfg = apply(cfg, {"validate_every_n_epochs": 2, "validate_every_n_steps": 3})
    assert [due(cfg, epoch=e) for e in (1, 2, 3, 4)] == [False, True, False, True]
    assert [due(cfg, step=s) for s in (1, 3, 6, 7)] == [False, True, True, False]
    assert not due(apply(apply_base(), {}), epoch=1)  # no split: no validation
