"""The resolution flows from prepare to training (the tutorial: "my crops are 768, so I set the
max resolution to 768"): prepare --resolution 768 makes the project train at 768, and a training
resolution that differs from the images' size is said before the steps start."""

from __future__ import annotations

import io

from PIL import Image, ImageOps
from rich.console import Console

from conftest import astronaut_rgb
from facelora.config import apply
from facelora.lora_file import read_metadata
from facelora.prepare.pipeline import PrepareOptions, open_or_create, prepare
from facelora.train.loop import train

TINY = dict(pretrained_model_name_or_path="tiny", max_train_epochs=None, max_train_steps=1, network_dim=4, network_alpha=2,
            optimizer_type="AdamW", lr_scheduler="constant", sample_every_n_epochs=None)


def test_prepare_at_768_trains_at_768_and_another_size_is_said(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    astro = Image.fromarray(astronaut_rgb())
    astro.save(photos / "a.png")
    ImageOps.mirror(astro).save(photos / "b.png")
    project = open_or_create(tmp_path / "project", "ohwx", "woman")
    assert project.settings().train.resolution == "512"

    report = prepare(photos, project, PrepareOptions(resolution=768))
    assert len(report.accepted) == 2
    assert project.settings().train.resolution == "768"
    assert "now trains at 768" in report.resolution_note and "was 512" in report.resolution_note
    assert prepare(photos, project, PrepareOptions(resolution=768)).resolution_note is None  # unchanged

    out = io.StringIO()
    result = train(project, apply(project.train_config(), TINY), console=Console(file=out, width=200))
    meta = read_metadata(result.final)
    assert meta["ss_resolution"] == "(768, 768)" and meta["modelspec.resolution"] == "768x768"
    assert "not that size" not in out.getvalue()

    # Trained at 64 on the 768 crops (an override for one run): said before the first step.
    out = io.StringIO()
    cfg = apply(project.train_config(), {**TINY, "resolution": "64", "output_name": "at64"})
    train(project, cfg, console=Console(file=out, width=200))
    text = " ".join(out.getvalue().split())
    assert "Training at 64 x 64, but 2 of 2 images are not that size (2 at 768 x 768)" in text
    assert text.index("not that size") < text.index("model saved")
