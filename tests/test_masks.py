"""The head mask prepare writes as each PNG's alpha channel (prepare/masks.py), and training
reading it back as the loss weight."""

from __future__ import annotations

import numpy as np
from PIL import Image

from conftest import astronaut_rgb
from facelora import faces
from facelora.prepare.masks import head_mask, with_mask
from facelora.prepare.options import PrepareOptions
from facelora.prepare.pipeline import open_or_create, prepare
from facelora.train.data import load_alpha_mask, load_pixels


def test_head_mask_weights_head_then_hair_and_shoulders_then_background():
    mask = np.asarray(head_mask((512, 512), (180, 100, 330, 300), unmasked_weight=0.25, soft_weight=0.6))
    assert mask[200, 255] == 255  # inside the head
    assert 100 < mask[85, 255] < 230  # the hair above the crown: between, feathered
    assert abs(int(mask[480, 100]) - 153) <= 3  # a shoulder
    assert mask[10, 10] == 64 and mask[300, 10] == 64  # background: 0.25
    assert mask[140, 255] >= mask[95, 255] >= mask[10, 255]  # weights fall off outwards


def test_with_mask_keeps_the_colours(tmp_path):
    image = Image.fromarray(astronaut_rgb()[:64, :64])
    out = with_mask(image, Image.new("L", (64, 64), 10))
    out.save(tmp_path / "m.png")
    assert np.array_equal(np.asarray(Image.open(tmp_path / "m.png").convert("RGB")), np.asarray(image))


def test_prepare_writes_a_head_mask_that_training_reads(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(astronaut_rgb()).save(photos / "astronaut.png")
    project = open_or_create(tmp_path / "p", "ohwx", "woman")
    report = prepare(photos, project, PrepareOptions(head_mask=True, unmasked_weight=0.2))
    out = project.root / report.accepted[0].output
    with Image.open(out) as im:
        assert im.mode == "RGBA"
        rgb = np.asarray(im.convert("RGB"))
    face = faces.detect(rgb)[0]
    mask = load_alpha_mask(out, (512, 512))
    cx, cy = int(face.center[0]), int(face.center[1])
    assert mask[cy, cx] == 1.0  # the face weighs fully
    assert abs(float(mask[5, 5]) - 51 / 255) < 0.01  # a corner is background: unmasked_weight
    assert load_pixels(out, (512, 512)).shape == (3, 512, 512)  # the VAE gets RGB only
