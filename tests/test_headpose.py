"""Head pose and mouth from the 68 landmarks (facelora.headpose): the fit on known rotations of its
own model, then on real photos and their mirrored, rotated and turned versions."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from facelora import faces, headpose


def _rot(yaw: float, pitch: float, roll: float) -> np.ndarray:
    y, p, r = np.radians([yaw, pitch, roll])
    rz = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    rx = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
    return rz @ ry @ rx


def _seen(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """The model turned and seen by a camera (scale 20, shifted), spread into 68 points."""
    pts = np.zeros((68, 2))
    pts[headpose._MODEL_INDEX] = 20 * headpose._MODEL @ _rot(yaw, pitch, roll)[:2].T + [300, 200]
    return pts


@pytest.mark.parametrize("angles", [(0, 0, 0), (30, 0, 0), (-50, 10, 0), (20, -15, 25), (0, 0, -15)])
def test_the_fit_recovers_known_rotations_of_its_model(angles):
    pose = headpose.estimate(_seen(*angles))
    assert (pose.yaw, pose.pitch, pose.roll) == pytest.approx(angles, abs=0.2)
    assert pose.error < 1e-6


def test_the_signs_read_in_the_pictures_terms():
    # 31 a nose wing, in front of 39, an inner eye corner
    x_gap = lambda pts: pts[31][0] - pts[39][0]  # noqa: E731
    assert x_gap(_seen(30, 0, 0)) > x_gap(_seen(0, 0, 0))  # yaw > 0: the nose moves to the right
    y_gap = lambda pts: pts[31][1] - pts[39][1]  # noqa: E731
    assert y_gap(_seen(0, 20, 0)) < y_gap(_seen(0, 0, 0))  # pitch > 0: the nose rises (chin up)
    right_eye = _seen(0, 0, 10)[45]
    left_eye = _seen(0, 0, 10)[36]
    assert right_eye[1] > left_eye[1]  # roll > 0: clockwise on screen, the right end goes down


def _pose(image: np.ndarray) -> headpose.Pose:
    found = faces.detect(np.ascontiguousarray(image))
    assert found, "no face found"
    return headpose.estimate(faces.landmarks(image, found[0]))


def _turned(image: np.ndarray, shift: float, centre=(222, 120), sigma=28.0) -> np.ndarray:
    """The astronaut's nose and mouth pushed `shift` px right while her outline stays: a face
    turned towards the picture's right, as the landmarks see it."""
    h, w = image.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(float)
    d = shift * np.exp(-((xx - centre[0]) ** 2 + (yy - centre[1]) ** 2) / (2 * sigma ** 2))
    return np.stack([ndimage.map_coordinates(image[..., c], [yy, xx - d], order=1, mode="nearest")
                     for c in range(3)], -1).astype(np.uint8)


def test_the_astronaut_faces_the_camera(astronaut):
    pose = _pose(astronaut)
    assert abs(pose.yaw) < 10 and abs(pose.pitch) < 10 and abs(pose.roll) < 10, pose
    assert pose.view == "frontal"


def test_a_mirrored_photo_turns_the_other_way(astronaut):
    turned = _turned(astronaut, 14)
    right, left = _pose(turned), _pose(turned[:, ::-1])
    assert right.yaw > 8 and left.yaw < -8, (right, left)
    assert right.yaw + left.yaw == pytest.approx(0, abs=4)
    plain, mirrored = _pose(astronaut), _pose(astronaut[:, ::-1])
    assert np.sign(plain.yaw) == -np.sign(mirrored.yaw) != 0
    assert plain.roll * mirrored.roll < 0  # her lean mirrors too


@pytest.mark.parametrize("degrees", [15, -15])
def test_a_photo_turned_15_degrees_reads_15_more_roll(astronaut, degrees):
    """Roll is measured against the unrotated photo: the astronaut leans about 3 degrees herself.
    `degrees` > 0 turns the photo clockwise on screen (PIL's rotate turns anticlockwise)."""
    base = _pose(astronaut).roll
    rotated = np.asarray(Image.fromarray(astronaut).rotate(-degrees, resample=Image.Resampling.BICUBIC,
                                                          center=(220, 125)))
    assert _pose(rotated).roll - base == pytest.approx(degrees, abs=3)


def test_mouth_expression(astronaut, grace_hopper):
    assert headpose.mouth(faces.landmarks(astronaut, faces.detect(astronaut)[0])).expression == "smile"
    assert headpose.mouth(faces.landmarks(grace_hopper, faces.detect(grace_hopper)[0])).expression == "neutral"
    pts = _seen(0, 0, 0)
    pts[48:68] = [[290 + 20 * np.cos(a), 260 + 14 * np.sin(a)] for a in np.linspace(0, 2 * np.pi, 20, endpoint=False)]
    pts[60:68] = [[290 + 12 * np.cos(a), 260 + 9 * np.sin(a)] for a in np.linspace(np.pi, 3 * np.pi, 8, endpoint=False)]
    assert headpose.mouth(pts).expression == "open mouth"
