import numpy as np
import pytest

from facelora import faces


def test_finds_the_package_faces(astronaut, grace_hopper):
    fa = faces.detect(astronaut)
    fg = faces.detect(grace_hopper)
    assert len(fa) == 1 and len(fg) == 1
    # the astronaut's face lies in the upper middle of the photo
    cx, cy = fa[0].center
    assert 150 < cx < 300 and 60 < cy < 180 and fa[0].height > 60


def test_identity_separates_people_and_survives_a_flip(astronaut, grace_hopper):
    _, a = faces.embed(astronaut)
    _, a_flip = faces.embed(np.ascontiguousarray(astronaut[:, ::-1]))
    _, g = faces.embed(grace_hopper)
    assert a.shape == (128,)
    assert faces.distance(a, a_flip) < 0.4 < faces.MATCH_THRESHOLD < faces.distance(a, g)


def test_no_face_is_none_not_an_error():
    from skimage import data

    assert faces.embed(data.coffee()) == (None, None)


def test_leave_one_out_flags_the_odd_one():
    rng = np.random.default_rng(0)
    base = rng.normal(size=128)
    vecs = [base + rng.normal(scale=0.01, size=128) for _ in range(4)] + [base + 1.0]
    d = faces.leave_one_out(vecs)
    assert int(np.argmax(d)) == 4 and max(d) > 3 * sorted(d)[-2]


def test_rejects_wrong_arrays():
    with pytest.raises(ValueError, match="RGB uint8"):
        faces.detect(np.zeros((10, 10), dtype=np.uint8))


def test_landmarks_and_head_geometry(astronaut):
    from PIL import Image

    face = faces.detect(astronaut)[0]
    points = faces.landmarks(astronaut, face)
    assert points.shape == (68, 2)
    head = faces.head(astronaut, face)
    assert abs(head.roll) < 6 and 70 < head.length < 110  # upright; brows to chin about the box's height
    assert head.crown[1] < head.brow[1] < head.eyes[1] < head.chin[1]
    assert head.crown[1] == pytest.approx(head.brow[1] - faces.CROWN_ABOVE_BROW * head.length, abs=2)
    l, t, r, b = head.head_box()
    assert l < face.left and r > face.right and t < face.top - 0.5 * head.length and b >= head.chin[1]
    # turned 10 degrees counter-clockwise on screen: the roll falls by 10
    turned = np.asarray(Image.fromarray(astronaut).rotate(10, resample=Image.Resampling.BICUBIC, center=(220, 125)))
    assert faces.head(turned, faces.detect(turned)[0]).roll == pytest.approx(head.roll - 10, abs=2)


def test_a_60_px_face_in_a_large_photo_is_found(astronaut):
    from PIL import Image

    small = Image.fromarray(astronaut).resize((360, 360), Image.Resampling.LANCZOS)  # a face of about 63 px
    canvas = Image.new("RGB", (2000, 1500), (120, 120, 120))
    canvas.paste(small, (1200, 700))
    found = faces.detect(np.asarray(canvas))
    assert len(found) == 1 and 50 < found[0].height < 80
    assert 1200 < found[0].left < found[0].right < 1560
