"""Faces with dlib: find them (HOG, then the CNN detector when HOG finds none) and describe
them with dlib's 128-d ResNet identity descriptor after 5-point alignment.

Prepare uses this to crop and audit; evaluate uses it to score likeness. Descriptors are compared
with Euclidean distance: the same person is usually below 0.6.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

MATCH_THRESHOLD = 0.6
_DETECT_MAX_SIDE = 1024  # detection runs on a copy no larger than this; boxes are scaled back
_CNN_MAX_SIDE = 640  # the CNN detector is slow on the CPU; it sees a smaller copy
# HOG scores below this are mostly false alarms (the astronaut's suit patch scores 0.12, her
# face 1.16); they are kept only when nothing better is found.
_HOG_MIN_SCORE = 0.3


class FaceModelsMissing(RuntimeError):
    pass


@dataclass(frozen=True)
class Face:
    """A face box in the coordinates of the image it was found in."""

    left: float
    top: float
    right: float
    bottom: float
    detector: str  # "hog" or "cnn"
    score: float = 0.0

    @property
    def width(self) -> float:
        return self.right - self.left

    @property
    def height(self) -> float:
        return self.bottom - self.top

    @property
    def center(self) -> tuple[float, float]:
        return (self.left + self.right) / 2, (self.top + self.bottom) / 2

    @property
    def area(self) -> float:
        return self.width * self.height

    def as_list(self) -> list[int]:
        return [round(self.left), round(self.top), round(self.right), round(self.bottom)]


def models_dir() -> Path:
    """The weights folder of `face_recognition_models`, found without importing the package
    (its __init__ needs pkg_resources, which current setuptools no longer has)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise FaceModelsMissing(
            "dlib's face models are missing: pip install face-recognition-models (the weights), "
            "and dlib-bin (the library)."
        )
    return Path(list(spec.submodule_search_locations)[0]) / "models"


@lru_cache(maxsize=None)
def _dlib():
    try:
        import dlib
    except ImportError as e:  # pragma: no cover - dlib-bin is a dependency
        raise FaceModelsMissing("dlib is not installed: pip install dlib-bin") from e
    return dlib


@lru_cache(maxsize=None)
def _hog():
    return _dlib().get_frontal_face_detector()


@lru_cache(maxsize=None)
def _cnn():
    return _dlib().cnn_face_detection_model_v1(str(models_dir() / "mmod_human_face_detector.dat"))


@lru_cache(maxsize=None)
def _shape5():
    return _dlib().shape_predictor(str(models_dir() / "shape_predictor_5_face_landmarks.dat"))


@lru_cache(maxsize=None)
def _resnet():
    return _dlib().face_recognition_model_v1(str(models_dir() / "dlib_face_recognition_resnet_model_v1.dat"))


def _as_rgb8(image: np.ndarray) -> np.ndarray:
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError("faces expects an RGB uint8 array of shape (H, W, 3)")
    return np.ascontiguousarray(image)


def _shrunk(image: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    h, w = image.shape[:2]
    s = max(h, w) / max_side
    if s <= 1:
        return image, 1.0
    from PIL import Image

    small = Image.fromarray(image).resize((round(w / s), round(h / s)), Image.Resampling.BILINEAR)
    return np.asarray(small), s


def detect(image: np.ndarray, cnn_fallback: bool = True) -> list[Face]:
    """All faces, largest first. HOG first (fast, upright faces); dlib's CNN when HOG finds none."""
    image = _as_rgb8(image)
    small, s = _shrunk(image, _DETECT_MAX_SIDE)
    upsample = 1 if max(small.shape[:2]) < 800 else 0
    rects, scores, _ = _hog().run(small, upsample, 0.0)
    found = [(r, "hog", sc) for r, sc in zip(rects, scores)]
    if any(sc >= _HOG_MIN_SCORE for _, _, sc in found):
        found = [f for f in found if f[2] >= _HOG_MIN_SCORE]
    if not found and cnn_fallback:
        small, s = _shrunk(image, _CNN_MAX_SIDE)
        found = [(d.rect, "cnn", d.confidence) for d in _cnn()(small, 1 if max(small.shape[:2]) < 400 else 0)]
    faces = [Face(r.left() * s, r.top() * s, r.right() * s, r.bottom() * s, name, float(sc)) for r, name, sc in found]
    return sorted(faces, key=lambda f: f.area, reverse=True)


def descriptor(image: np.ndarray, face: Face) -> np.ndarray:
    """dlib's 128-d identity vector for `face`, after 5-point alignment."""
    dlib = _dlib()
    image = _as_rgb8(image)
    rect = dlib.rectangle(round(face.left), round(face.top), round(face.right), round(face.bottom))
    shape = _shape5()(image, rect)
    return np.asarray(_resnet().compute_face_descriptor(image, shape), dtype=np.float64)


def embed(image: np.ndarray) -> tuple[Face | None, np.ndarray | None]:
    """The largest face and its descriptor, or (None, None) when there is no face."""
    faces = detect(image)
    if not faces:
        return None, None
    return faces[0], descriptor(image, faces[0])


def distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(np.asarray(a) - np.asarray(b)))


def leave_one_out(vectors: list[np.ndarray]) -> list[float]:
    """Each vector's distance to the centroid of the others: how far each photo is from the rest."""
    if len(vectors) < 2:
        return [0.0] * len(vectors)
    arr = np.stack(vectors)
    total = arr.sum(axis=0)
    n = len(arr)
    return [distance(v, (total - v) / (n - 1)) for v in arr]
