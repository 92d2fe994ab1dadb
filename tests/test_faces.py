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
