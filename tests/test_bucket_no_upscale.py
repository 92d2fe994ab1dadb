"""Kohya's bucket_no_upscale: with enable_bucket, an image smaller than the training resolution
is not enlarged; its bucket is its own size rounded down to bucket_reso_steps (sd-scripts'
BucketManager.select_bucket), and the plan counts those buckets as training batches them."""

import io
from pathlib import Path

import pytest
import torch
from PIL import Image
from rich.console import Console

from facelora.buckets import Bucketing, TrainDataError, no_upscale_bucket, steps_multiples
from facelora.config import apply
from facelora.config.kohya import export_kohya, import_kohya
from facelora.dataset import scan_for
from facelora.plan import plan_for
from facelora.train.loop import train

from conftest import astronaut_rgb
from test_plan_matches_training import assert_plan_was_trained, make_project


def image(path: Path, size: tuple[int, int]) -> Path:
    Image.fromarray(astronaut_rgb()).resize(size).save(path)
    return path


def test_a_small_image_keeps_its_size_only_with_bucket_no_upscale(tmp_path):
    small = image(tmp_path / "small.png", (300, 200))
    upscaled = Bucketing((512, 512), enable_bucket=True).assign([small])[small]
    kept = Bucketing((512, 512), enable_bucket=True, bucket_no_upscale=True).assign([small])[small]
    assert upscaled == (640, 384)  # the bucket nearest 3:2 in Kohya's list for 512 x 512: enlarged
    assert kept == (256, 192)  # 300 x 200 rounded down to 64: cropped, not enlarged
    # off without enable_bucket, as in sd-scripts
    assert Bucketing((512, 512), bucket_no_upscale=True).assign([small])[small] == (512, 512)


def test_a_large_image_is_scaled_to_the_training_area_then_rounded_as_sd_scripts_does():
    # 1200 x 800 -> 627 x 418 at 512 x 512's area; width rounded to 576 keeps 3:2 best -> 576 x 384
    assert no_upscale_bucket((1200, 800), 512 * 512, 64) == (576, 384)
    assert no_upscale_bucket((100, 300), 128 * 128, 64) == (64, 192)
    assert no_upscale_bucket((512, 512), 512 * 512, 64) == (512, 512)


def test_bucket_limits_are_taken_as_multiples_of_the_steps(tmp_path):
    assert steps_multiples(250, 1000, 64) == (192, 1024)  # min down, max up (sd-scripts)
    assert steps_multiples(256, 1024, 64) == (256, 1024)
    # max_bucket_reso 1000 trains a 1:4 image at 256 x 1024 as sd-scripts does, not at 256 x 1000
    # (a side that is no multiple of the steps)
    thin = image(tmp_path / "thin.png", (100, 400))
    assert Bucketing((512, 512), True, 256, 1000, 64).assign([thin])[thin] == (256, 1024)


def test_a_tiny_image_with_bucket_no_upscale_is_refused_by_name(tmp_path):
    tiny = image(tmp_path / "tiny.png", (40, 200))
    with pytest.raises(TrainDataError, match="tiny.png.*bucket_no_upscale"):
        Bucketing((512, 512), True, bucket_no_upscale=True).assign([tiny])


def test_kohya_toml_round_trip_keeps_bucket_no_upscale():
    cfg = apply(import_kohya("enable_bucket = true\nbucket_no_upscale = true\n")[0], {"output_name": "x"})
    assert cfg.bucket_no_upscale
    toml = export_kohya(cfg, Path("p"))
    assert "bucket_no_upscale = true" in toml and import_kohya(toml)[0].bucket_no_upscale


def test_the_plan_counts_the_no_upscale_buckets_training_runs(tmp_path):
    """2 crops of 64 px and one of 128 px at resolution 128, batch 3: enlarged, all three share the
    128 x 128 bucket (1 batch an epoch); with bucket_no_upscale the 64 px crops keep a 64 x 64
    bucket of their own (2 batches an epoch, 4 steps in 2 epochs)."""
    settings = dict(enable_bucket=True, resolution="128", min_bucket_reso=64, max_bucket_reso=256,
                    train_batch_size=3, max_train_epochs=2, save_every_n_epochs=None)
    for no_upscale, steps in ((False, 2), (True, 4)):
        project, cfg = make_project(tmp_path / str(no_upscale), 2, 1, bucket_no_upscale=no_upscale, **settings)
        image(project.concept_dir()[0] / "big.png", (128, 128))
        (project.concept_dir()[0] / "big.txt").write_text("ohwx woman, big")
        plan = plan_for(cfg, scan_for(cfg)).to_dict()
        assert plan["steps_per_epoch"] == steps // 2
        train(project, cfg, console=Console(file=io.StringIO()))
        assert_plan_was_trained(plan, project, steps, 2, ["x.safetensors"])


def test_a_kept_image_is_cropped_to_its_bucket_not_resized(tmp_path):
    """sd-scripts trims an image it does not upscale (trim_and_resize_if_required): the pixels
    trained are the centre of the photo at its own scale; without bucket_no_upscale it is resized."""
    import numpy as np

    from facelora.train.data import TrainData, load_pixels

    for no_upscale in (True, False):
        project, cfg = make_project(tmp_path / str(no_upscale), 1, 1, enable_bucket=True, resolution="128",
                                    min_bucket_reso=64, max_bucket_reso=256, bucket_no_upscale=no_upscale)
        photo = image(project.concept_dir()[0] / "odd.png", (100, 70))
        data = TrainData(scan_for(cfg), cfg)
        odd = next(im for im in data.images if im.path == photo)
        assert (odd.bucket, odd.crop_only) == (((64, 64), True) if no_upscale else ((128, 128), False))
        pixels = load_pixels(odd.path, odd.bucket, odd.crop_only)
        centre = np.asarray(Image.open(photo).convert("RGB"))[3:67, 18:82]  # (70-64)//2, (100-64)//2
        expected = torch.from_numpy(centre.copy()).permute(2, 0, 1).float() / 127.5 - 1
        assert torch.equal(pixels, expected) == no_upscale
