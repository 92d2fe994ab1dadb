"""Which way a head faces and what its mouth does, from dlib's 68 landmarks (faces.landmarks).

Pose: fourteen points of a fixed anthropometric 3D face (brow ends, eye corners, nose wings,
mouth corners, lower lip, chin; the model lincolnhard/head-pose-estimation uses with OpenCV's
solvePnP) are fitted to their landmarks by a scaled orthographic camera, a linear least-squares
fit made a rotation by its SVD, then read as Euler angles. A portrait's head is small beside its
distance to the lens, so no focal length is needed.

Angles are in degrees, in the picture's terms:
- yaw: the face turns towards the picture's right (its nose points right) when positive;
  a mirrored photo has the opposite yaw; about 0 frontal, 20-45 three-quarter, beyond that profile;
- pitch: the face tilts up (chin out) when positive;
- roll: the head leans clockwise on screen when positive (faces.Head.roll's sense).

Expression: the mouth's opening (inner lips apart / mouth width) and width (corner to corner /
outer eye corner to corner), which a smile stretches.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# The 3D model with x to the picture's right, y down, z towards the camera (the source has x and
# y the other way, the same rotation turned half a turn about z).
_MODEL_INDEX = [17, 21, 22, 26, 36, 39, 42, 45, 31, 35, 48, 54, 57, 8]
_MODEL = np.array([
    [6.825897, 6.760612, 4.402142],  # 17 brow, outer end (picture's left)
    [1.330353, 7.122144, 6.903745],  # 21 brow, inner end
    [-1.330353, 7.122144, 6.903745],  # 22 brow, inner end (picture's right)
    [-6.825897, 6.760612, 4.402142],  # 26 brow, outer end
    [5.311432, 5.485328, 3.987654],  # 36 eye, outer corner
    [1.789930, 5.393625, 4.413414],  # 39 eye, inner corner
    [-1.789930, 5.393625, 4.413414],  # 42 eye, inner corner
    [-5.311432, 5.485328, 3.987654],  # 45 eye, outer corner
    [2.005628, 1.409845, 6.165652],  # 31 nose wing
    [-2.005628, 1.409845, 6.165652],  # 35 nose wing
    [2.774015, -2.080775, 5.048531],  # 48 mouth corner
    [-2.774015, -2.080775, 5.048531],  # 54 mouth corner
    [0.000000, -3.116408, 6.097667],  # 57 lower lip, middle
    [0.000000, -7.415691, 4.070434],  # 8 chin
]) * np.array([-1.0, -1.0, 1.0])

FRONTAL = 15.0  # |yaw| below this: facing the camera
PROFILE = 45.0  # |yaw| from this: a profile (dlib's landmarks hold up to about 60)
# Expression bounds, from few faces (the astronaut's toothy smile: opening 0.18, width 0.75; Grace
# Hopper's closed mouth: 0.01-0.03, 0.62-0.67): coarse classes for a set's spread, not a verdict
# on one photo.
OPEN_MOUTH = 0.35  # inner lips apart by a third of the mouth's width or more: jaw dropped
SMILE_WIDTH = 0.70  # mouth corners apart by this share of the outer eye corners' span or more
SMILE_OPENING = 0.12  # or the lips parted this much (teeth showing) without a dropped jaw


@dataclass(frozen=True)
class Pose:
    yaw: float
    pitch: float
    roll: float
    error: float  # RMS misfit of the model's points, as a share of the face's size

    @property
    def view(self) -> str:
        return view(self.yaw)


def view(yaw: float) -> str:
    """frontal, three-quarter or profile, by |yaw|."""
    a = abs(yaw)
    return "frontal" if a < FRONTAL else "three-quarter" if a < PROFILE else "profile"


def rotation(points: np.ndarray) -> tuple[np.ndarray, float]:
    """The 3 x 3 rotation (rows: the picture's x, y and depth axes in the model's frame) of the
    scaled orthographic camera that best maps the model onto `points` (68 x 2), and the fit's
    RMS error over the face's size."""
    image = np.asarray(points, dtype=np.float64)[_MODEL_INDEX]
    model = _MODEL - _MODEL.mean(axis=0)
    seen = image - image.mean(axis=0)
    # seen ~ model @ M.T for a 2 x 3 M = scale * (the first two rows of a rotation)
    m_t, *_ = np.linalg.lstsq(model, seen, rcond=None)
    u, s, vt = np.linalg.svd(m_t.T, full_matrices=False)
    rows = u @ vt  # the nearest pair of orthonormal rows
    scale = float(s.mean())
    r = np.vstack([rows, np.cross(rows[0], rows[1])])
    misfit = seen - scale * model @ rows.T
    size = float(np.sqrt(np.mean(np.sum(seen ** 2, axis=1))))
    return r, float(np.sqrt(np.mean(np.sum(misfit ** 2, axis=1)))) / max(size, 1e-9)


def euler(r: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees of r = Rz(roll) @ Ry(yaw) @ Rx(pitch) in the picture's axes
    (x right, y down, z towards the camera)."""
    yaw = np.degrees(np.arcsin(np.clip(-r[2, 0], -1.0, 1.0)))
    pitch = np.degrees(np.arctan2(r[2, 1], r[2, 2]))
    roll = np.degrees(np.arctan2(r[1, 0], r[0, 0]))
    return float(yaw), float(pitch), float(roll)


def estimate(points: np.ndarray) -> Pose:
    """The head pose of one face's 68 landmarks (x, y pixels)."""
    r, error = rotation(points)
    yaw, pitch, roll = euler(r)
    return Pose(round(yaw, 1), round(pitch, 1), round(roll, 1), round(error, 4))


@dataclass(frozen=True)
class Mouth:
    opening: float  # inner lips apart / mouth width
    width: float  # mouth corners apart / outer eye corners apart

    @property
    def expression(self) -> str:
        """open mouth, smile or neutral."""
        if self.opening >= OPEN_MOUTH:
            return "open mouth"
        return "smile" if self.width >= SMILE_WIDTH or self.opening >= SMILE_OPENING else "neutral"


def mouth(points: np.ndarray) -> Mouth:
    """The mouth's opening and width ratios from the 68 landmarks (60-67 the inner lips)."""
    p = np.asarray(points, dtype=np.float64)
    across = float(np.linalg.norm(p[64] - p[60]))
    apart = float(np.mean([np.linalg.norm(p[a] - p[b]) for a, b in ((61, 67), (62, 66), (63, 65))]))
    corners = float(np.linalg.norm(p[54] - p[48]))
    eyes = float(np.linalg.norm(p[45] - p[36]))
    return Mouth(round(apart / max(across, 1e-9), 3), round(corners / max(eyes, 1e-9), 3))
