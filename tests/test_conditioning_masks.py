"""Loss masks from a conditioning folder (Kohya's conditioning_data_dir with masked_loss): found
and read as sd-scripts reads them, weighting the loss exactly as the same mask in the alpha
channel does; prepare --head-mask --mask-dir writes them; the Kohya export names them in a
dataset config. Kohya's keys are from kohya-ss/sd-scripts library/config_util.py at commit
48d368fa557731ad0488c07304dfeba8c07910eb (ConfigSanitizer's ControlNet subset schema)."""

from __future__ import annotations

import io
import tomllib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from rich.console import Console
from safetensors.torch import load_file

from conftest import astronaut_rgb, tiny_training_project
from facelora import faces
from facelora.config import ConfigError, apply, check, export_kohya
from facelora.config.kohya_dataset import dataset_config_toml
from facelora.dataset import DatasetError, scan_for
from facelora.prepare.options import PrepareOptions
from facelora.prepare.pipeline import open_or_create, prepare
from facelora.train.data import TrainData, load_alpha_mask, load_conditioning_mask
from facelora.train.loop import train

BASE = dict(pretrained_model_name_or_path="tiny", resolution="64", max_train_epochs=1, network_dim=4, network_alpha=2,
            optimizer_type="AdamW", lr_scheduler="constant", unet_lr=1e-2, text_encoder_lr=1e-3,
            mixed_precision="no", save_precision="float", output_name="ohwx")
# sd-scripts' ControlNet (conditioning) subset: SUBSET_ASCENDABLE + CN_SUBSET_DISTINCT + CN_SUBSET_ASCENDABLE (+ dropout)
KOHYA_CN_SUBSET_KEYS = {
    "color_aug", "face_crop_aug_range", "flip_aug", "num_repeats", "random_crop", "shuffle_caption", "keep_tokens",
    "keep_tokens_separator", "secondary_separator", "caption_separator", "enable_wildcard", "token_warmup_min",
    "token_warmup_step", "caption_prefix", "caption_suffix", "custom_attributes", "resize_interpolation",
    "image_dir", "conditioning_data_dir", "caption_extension", "cache_info",
    "caption_dropout_every_n_epochs", "caption_dropout_rate", "caption_tag_dropout_rate",
}


def hand_mask(i: int) -> Image.Image:
    """A grey mask with a square of full weight, a soft band and a background weight."""
    mask = Image.new("L", (64, 64), 40 + 20 * i)
    mask.paste(255, (8 + 4 * i, 8, 40, 40))
    mask.paste(128, (40, 0, 64, 64))
    return mask


def masked_projects(tmp_path: Path):
    """The same photos twice: masks in the alpha channel, and the same masks as grey PNGs in a
    conditioning folder."""
    alpha = tiny_training_project(tmp_path / "alpha", images=2, repeats=2)
    cond = tiny_training_project(tmp_path / "cond", images=2, repeats=2)
    folder, _ = alpha.concept_dir()
    cfolder, _ = cond.concept_dir()
    masks = cond.root / "mask" / cfolder.name
    masks.mkdir(parents=True)
    for i in range(2):
        rgba = Image.open(folder / f"{i}.png").convert("RGB")
        rgba.putalpha(hand_mask(i))
        rgba.save(folder / f"{i}.png")
        hand_mask(i).save(masks / f"{i}.png")
    return ((alpha, apply(alpha.train_config(), {**BASE, "masked_loss": True, "alpha_mask": True})),
            (cond, apply(cond.train_config(), {**BASE, "masked_loss": True, "conditioning_data_dir": str(cond.root / "mask")})))


def run(project, cfg):
    return train(project, cfg, console=Console(file=io.StringIO(), width=200))


def test_a_conditioning_mask_weights_the_loss_exactly_as_the_same_alpha_mask(tmp_path):
    (alpha, acfg), (cond, ccfg) = masked_projects(tmp_path)
    a_masks, c_masks = TrainData(scan_for(acfg), acfg).masks, TrainData(scan_for(ccfg), ccfg).masks
    assert len(c_masks) == 2 and all(torch.equal(a, c) for a, c in zip(a_masks, c_masks))
    assert c_masks[0][20, 20] == 1.0 and c_masks[0][0, 0] == pytest.approx(40 / 255) and c_masks[1][0, 50] == pytest.approx(128 / 255)
    a, c = run(alpha, acfg), run(cond, ccfg)
    assert a.losses == c.losses  # the same weighted loss at every step
    fa, fc = load_file(str(a.final)), load_file(str(c.final))
    assert all(torch.equal(fa[k], fc[k]) for k in fa)
    plain_cfg = apply(ccfg, {"masked_loss": False, "conditioning_data_dir": None})
    assert run(cond, apply(plain_cfg, {"output_name": "plain"})).losses != c.losses  # the mask changed the loss


def test_the_red_channel_is_the_weight_as_kohya_reads_conditioning_images(tmp_path):
    rgb = Image.new("RGB", (64, 64), (51, 200, 0))
    rgb.save(tmp_path / "m.png")
    assert torch.all(load_conditioning_mask(tmp_path / "m.png", (64, 64)) == 51 / 255)
    Image.new("L", (64, 64), 102).save(tmp_path / "g.png")  # grey: the same value in R
    assert torch.all(load_conditioning_mask(tmp_path / "g.png", (64, 64)) == 102 / 255)


def test_missing_extra_and_wrongly_sized_masks_are_refused_as_kohya_refuses_them(tmp_path):
    _, (cond, cfg) = masked_projects(tmp_path)
    folder = Path(cfg.conditioning_data_dir) / cond.concept_dir()[0].name
    (folder / "1.png").rename(folder / "7.png")
    with pytest.raises(DatasetError, match=r"1 photo\(s\) have no mask .*1\.png"):
        scan_for(cfg)
    Image.new("L", (64, 64)).save(folder / "1.png")
    with pytest.raises(DatasetError, match=r"1 mask\(s\) of no photo .*7\.png"):
        scan_for(cfg)
    (folder / "7.png").unlink()
    Image.new("L", (32, 32)).save(folder / "1.png")
    with pytest.raises(DatasetError, match="not the size of their photo"):
        scan_for(cfg)
    with pytest.raises(DatasetError, match="does not exist"):
        scan_for(apply(cfg, {"conditioning_data_dir": str(tmp_path / "nowhere")}))
    Image.new("L", (64, 64)).save(folder / "1.png")
    scan_for(cfg)
    (cond.concept_dir()[0] / "1.txt").unlink()  # no folder words to fall back to in Kohya's conditioning dataset
    with pytest.raises(DatasetError, match=r"needs its caption file.*1\.png"):
        scan_for(cfg)


@pytest.mark.parametrize("updates, words", [
    ({"masked_loss": True}, "alpha_mask .* or conditioning_data_dir"),
    ({"conditioning_data_dir": "mask"}, "only masked_loss reads"),
    ({"masked_loss": True, "conditioning_data_dir": "mask", "alpha_mask": True}, "keep one of them"),
    ({"masked_loss": True, "conditioning_data_dir": "mask", "reg_data_dir": "reg"}, "class images"),
    ({"masked_loss": True, "conditioning_data_dir": "mask", "validation_split": 0.2}, "validation_data_dir instead"),
])
def test_what_kohyas_conditioning_dataset_cannot_train_is_refused(updates, words):
    from facelora.config import TrainConfig

    with pytest.raises(ConfigError, match=words):
        check(apply(TrainConfig(), {**BASE, **updates}), cuda=False)


def test_prepare_writes_the_head_mask_to_a_conditioning_folder(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(astronaut_rgb()).save(photos / "astronaut.png")
    with_alpha = open_or_create(tmp_path / "a", "ohwx", "woman")
    prepare(photos, with_alpha, PrepareOptions(head_mask=True, unmasked_weight=0.2))
    project = open_or_create(tmp_path / "p", "ohwx", "woman")
    report = prepare(photos, project, PrepareOptions(head_mask=True, unmasked_weight=0.2, mask_dir="mask"))
    out = project.root / report.accepted[0].output
    mask_file = project.root / "mask" / out.parent.name / f"{out.stem}.png"
    with Image.open(out) as im:
        assert im.mode == "RGB"  # the photo itself carries no alpha
    with Image.open(mask_file) as im:
        assert im.mode == "L" and im.size == (512, 512)
    alpha_out = with_alpha.root / report.accepted[0].output  # the same crop, its mask as alpha
    assert torch.equal(load_conditioning_mask(mask_file, (512, 512)), load_alpha_mask(alpha_out, (512, 512)))
    face = faces.detect(np.asarray(Image.open(out)))[0]
    mask = load_conditioning_mask(mask_file, (512, 512))
    assert mask[int(face.center[1]), int(face.center[0])] == 1.0 and abs(float(mask[5, 5]) - 51 / 255) < 0.01
    settings = project.settings()
    settings.train = apply(settings.train, {"masked_loss": True, "conditioning_data_dir": "mask"})
    project.save_settings(settings)
    assert TrainData(scan_for(project.train_config()), project.train_config()).images[0].mask == mask_file
    out.unlink()  # the photo withdrawn by a second run: its mask goes with it (Kohya refuses extra masks)
    report = prepare(photos, project, PrepareOptions(head_mask=True, unmasked_weight=0.2, mask_dir="mask"))
    assert mask_file.is_file() and (project.root / report.accepted[0].output).is_file()


def test_the_kohya_export_names_the_masks_in_a_dataset_config(tmp_path):
    _, (cond, cfg) = masked_projects(tmp_path)
    folder = cond.concept_dir()[0]
    data = tomllib.loads(dataset_config_toml(cfg, cond.root))
    (subset,) = data["datasets"][0]["subsets"]
    assert subset == {"image_dir": str(folder.resolve()), "num_repeats": 2,
                      "conditioning_data_dir": str((cond.root / "mask" / folder.name).resolve())}
    assert set(subset) <= KOHYA_CN_SUBSET_KEYS and len(data["datasets"]) == 1
    training = {k: v for t in tomllib.loads(export_kohya(cfg, cond.root, tmp_path / "d.toml")).values() for k, v in t.items()}
    assert training["dataset_config"] == str((tmp_path / "d.toml").resolve()) and training["masked_loss"] is True
    assert "train_data_dir" not in training and training["alpha_mask"] is False
    from test_objective import sd_scripts_arguments

    assert set(training) <= sd_scripts_arguments()
