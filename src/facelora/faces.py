"""Faces with dlib: find them (HOG, then the CNN detector when HOG finds none), place their 68
landmarks, and describe them with dlib's 128-d ResNet identity descriptor after 5-point alignment.

Prepare uses this to frame and audit; evaluate uses it to score likeness (and the head's pose,
from `landmarks` and `head`). Descriptors are compared with Euclidean distance: the same person is
usually below 0.6.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

MATCH_THRESHOLD = 0.6
_DETECT_MAX_SIDE = 1024  # detection runs on a copy no larger than this; boxes are scaled back
_CNN_MAX_SIDE = 640  # the CNN detector is slow on the CPU; it sees a smaller copy
# HOG scores below this are mostly false alarms (the astronaut's suit patch scores 0.12, her
# face 1.16); they are kept only when nothing better is found.
WEAK_SCORE = 0.3
_HOG_WINDOW = 80  # dlib's HOG finds faces down to about 80 px at the scale it runs on
SMALL_FACE_PX = 60  # a photo too large for the first pass is searched for faces this small
_SMALL_PASS_PIXELS = 16e6  # the small-face pass looks at no more pixels than this


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
def _shape68():
    return _dlib().shape_predictor(str(models_dir() / "shape_predictor_68_face_landmarks.dat"))


@lru_cache(maxsize=None)
def _resnet():
    return _dlib().face_recognition_model_v1(str(models_dir() / "dlib_face_recognition_resnet_model_v1.dat"))


def _as_rgb8(image: np.ndarray) -> np.ndarray:
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError("faces expects an RGB uint8 array of shape (H, W, 3)")
    return np.ascontiguousarray(image)


def _resized(image: np.ndarray, width: int, height: int) -> np.ndarray:
    return np.asarray(Image.fromarray(image).resize((width, height), Image.Resampling.BILINEAR))


def _shrunk(image: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    h, w = image.shape[:2]
    s = max(h, w) / max_side
    if s <= 1:
        return image, 1.0
    return _resized(image, round(w / s), round(h / s)), s


def _grey(image: np.ndarray, scale: float) -> np.ndarray:
    """The luma of `image` resized by `scale`. dlib's HOG takes each pixel's strongest channel
    gradient, so on RGB it does three times the gradient work: on grey the same boxes for 20%
    less CPU on the demo photos (dlib's own face detection examples run on grey). Some scores
    move, though: on grey the first pass sees the 52 px face pasted beside the astronaut, which on
    RGB only the search in the crop finds; prepare, whose rules for other faces were set on RGB,
    stays on RGB."""
    h, w = image.shape[:2]
    grey = Image.fromarray(image).convert("L")
    if scale != 1:
        grey = grey.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.BILINEAR)
    return np.asarray(grey)


def _hog_pass(image: np.ndarray, scale: float, min_score: float, upsample: bool = True,
              grey: bool = False) -> list[Face]:
    """HOG on `image` resized by `scale` (upsampled once more when that copy is small and
    `upsample` allows it), on its luma when `grey`."""
    h, w = image.shape[:2]
    if grey:
        small = _grey(image, scale)
    else:
        small = image if scale == 1 else _resized(image, max(1, round(w * scale)), max(1, round(h * scale)))
    times = 1 if upsample and max(small.shape[:2]) < 800 else 0
    rects, scores, _ = _hog().run(small, times, 0.0)
    sx, sy = w / small.shape[1], h / small.shape[0]
    return [Face(r.left() * sx, r.top() * sy, r.right() * sx, r.bottom() * sy, "hog", float(sc))
            for r, sc in zip(rects, scores) if sc >= min_score]


def _confident(found: list[Face]) -> list[Face]:
    """Weak HOG detections are kept only when nothing better is found."""
    return [f for f in found if f.score >= WEAK_SCORE] or found


def detect(image: np.ndarray, cnn_fallback: bool = True, quick: bool = False) -> list[Face]:
    """All faces, largest first. HOG first (fast, upright faces) on a copy of at most 1024 px,
    upsampled once when that copy is under 800 px (faces from 40 px); on a larger photo where
    that finds nothing, HOG again at the scale that shows faces of SMALL_FACE_PX source pixels
    (a group seen from afar); dlib's CNN when HOG finds none. Weak HOG detections are kept only
    when nothing better is found.

    `quick` (scoring a generated image, where only the largest face counts): HOG on grey looks
    without upsampling first (faces from 80 px, a quarter of the work); the largest face it finds
    is then found again as the upsampled pass places it (see _placed), and only when it finds no
    confident face does the upsampled pass look at the whole image."""
    image = _as_rgb8(image)
    scale = min(1.0, _DETECT_MAX_SIDE / max(image.shape[:2]))
    upsampled = max(image.shape[:2]) * scale < 800
    if quick and upsampled:
        found = _confident(_hog_pass(image, scale, 0.0, upsample=False, grey=True))
        if found and found[0].score >= WEAK_SCORE:
            largest = max(found, key=lambda f: f.area)
            found = [_placed(image, largest, scale)] + [f for f in found if f is not largest]
        else:
            found = _confident(_hog_pass(image, scale, 0.0, grey=True)) or found
    else:
        found = _confident(_hog_pass(image, scale, 0.0))
    if not found and max(image.shape[:2]) > _DETECT_MAX_SIDE:
        found = find_small(image, SMALL_FACE_PX)
    if not found and cnn_fallback:
        small, s = _shrunk(image, _CNN_MAX_SIDE)
        found = [Face(d.rect.left() * s, d.rect.top() * s, d.rect.right() * s, d.rect.bottom() * s, "cnn",
                      float(d.confidence)) for d in _cnn()(small, 1 if max(small.shape[:2]) < 400 else 0)]
    return sorted(found, key=lambda f: f.area, reverse=True)


def _placed(image: np.ndarray, face: Face, scale: float) -> Face:
    """`face` as the upsampled grey pass over the whole image boxes it (the identity descriptor's
    alignment starts from the box): that pass run on the image cut a face height right of and
    below the face only. HOG's pyramid and cells are laid out from the top left corner, so
    cutting the right and the bottom leaves the windows around the face as they were."""
    h, w = image.shape[:2]
    r, b = min(w, int(face.right + face.height) + 1), min(h, int(face.bottom + face.height) + 1)
    cut = np.ascontiguousarray(image[:b, :r])
    again = [f for f in _hog_pass(cut, scale, WEAK_SCORE, grey=True) if _overlap(f, face) > 0.5]
    return max(again, key=lambda f: f.score) if again else face


def _overlap(a: Face, b: Face) -> float:
    """Intersection over union of two boxes."""
    w = max(0.0, min(a.right, b.right) - max(a.left, b.left))
    h = max(0.0, min(a.bottom, b.bottom) - max(a.top, b.top))
    return w * h / max(a.area + b.area - w * h, 1e-9)


def find_small(image: np.ndarray, min_px: float, box: tuple[float, float, float, float] | None = None) -> list[Face]:
    """Confident HOG faces down to `min_px` source pixels tall, in `box` (left, top, right, bottom;
    the whole photo by default): the region is scaled so such a face fills HOG's window, within a
    pixel budget. Boxes are in the photo's coordinates."""
    image = _as_rgb8(image)
    h, w = image.shape[:2]
    l, t, r, b = box or (0, 0, w, h)
    l, t, r, b = max(0, int(l)), max(0, int(t)), min(w, int(np.ceil(r))), min(h, int(np.ceil(b)))
    if r - l < 8 or b - t < 8:
        return []
    region = np.ascontiguousarray(image[t:b, l:r])
    scale = min(_HOG_WINDOW / max(min_px, 1.0), np.sqrt(_SMALL_PASS_PIXELS / region.shape[0] / region.shape[1]))
    # the pass upsamples once by itself when the copy is small: aim for half the window then
    if max(region.shape[:2]) * scale < 800:
        scale /= 2
    found = _hog_pass(region, scale, WEAK_SCORE)
    return [Face(f.left + l, f.top + t, f.right + l, f.bottom + t, f.detector, f.score) for f in found]


def landmarks(image: np.ndarray, face: Face) -> np.ndarray:
    """dlib's 68 landmarks of `face` as a (68, 2) float array of (x, y) pixels: 0-16 the jaw
    (ear to ear through the chin at 8), 17-26 the brows, 27-35 the nose, 36-47 the eyes (36-41 the
    one on the image's left), 48-67 the mouth."""
    image = _as_rgb8(image)
    rect = _dlib().rectangle(round(face.left), round(face.top), round(face.right), round(face.bottom))
    shape = _shape68()(image, rect)
    return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)


# The top of an upright adult skull sits about 0.8-0.9 brow-to-chin lengths above the brow line;
# the upper value, since hair adds to it. The skull is wider than the jaw at the ears.
CROWN_ABOVE_BROW = 0.9
HEAD_WIDTH = 1.2  # the head across (skull, ears, close hair), in jaw widths (landmark 0 to 16)


@dataclass(frozen=True, eq=False)
class Head:
    """Where a head is, from its 68 landmarks, in the pixels of the image they were found in.

    The face's own axes: `across` runs along the eye line (from the eye on the image's left to the
    other), `down` at right angles to it, from brow to chin. Lengths are in pixels."""

    points: np.ndarray  # (68, 2)

    @property
    def eyes(self) -> np.ndarray:
        """The midpoint between the two eyes' centres."""
        return (self.points[36:42].mean(axis=0) + self.points[42:48].mean(axis=0)) / 2

    @property
    def roll(self) -> float:
        """Degrees the eye line turns from horizontal, clockwise on screen (0 = level)."""
        dx, dy = self.points[42:48].mean(axis=0) - self.points[36:42].mean(axis=0)
        return float(np.degrees(np.arctan2(dy, dx)))

    @property
    def across(self) -> np.ndarray:
        r = np.radians(self.roll)
        return np.array([np.cos(r), np.sin(r)])

    @property
    def down(self) -> np.ndarray:
        r = np.radians(self.roll)
        return np.array([-np.sin(r), np.cos(r)])

    @property
    def brow(self) -> np.ndarray:
        """The middle of the brow line (the mean of the ten brow points)."""
        return self.points[17:27].mean(axis=0)

    @property
    def chin(self) -> np.ndarray:
        return self.points[8]

    @property
    def length(self) -> float:
        """Brow line to chin along the face's axis: the unit every framing is measured in."""
        return float(np.dot(self.chin - self.brow, self.down))

    @property
    def crown(self) -> np.ndarray:
        """The estimated top of the skull, CROWN_ABOVE_BROW lengths above the brow line."""
        return self.brow - CROWN_ABOVE_BROW * self.length * self.down

    @property
    def centre(self) -> np.ndarray:
        """The head's middle across, at eye height: halfway between the jaw's ends (the ears)."""
        mid = (self.points[0] + self.points[16]) / 2
        return self.eyes + np.dot(mid - self.eyes, self.across) * self.across

    def head_box(self, margin: float = 0.0) -> tuple[float, float, float, float]:
        """(left, top, right, bottom) around the whole head, upright on screen: the box of the oval
        from crown to chin and ear to ear (turned with the head when it is tilted), widened by
        `margin` lengths on every side."""
        across = HEAD_WIDTH * float(np.linalg.norm(self.points[16] - self.points[0])) / 2
        along = (1 + CROWN_ABOVE_BROW) * self.length / 2
        middle = self.brow + np.dot(self.centre - self.brow, self.across) * self.across \
            + (self.length - along) * self.down
        c, s = abs(self.across[0]), abs(self.across[1])  # |cos|, |sin| of the roll
        half_w = float(np.hypot(across * c, along * s)) + margin * self.length
        half_h = float(np.hypot(across * s, along * c)) + margin * self.length
        return float(middle[0]) - half_w, float(middle[1]) - half_h, float(middle[0]) + half_w, float(middle[1]) + half_h

    def face_box(self) -> tuple[float, float, float, float]:
        """(left, top, right, bottom) of all 68 landmarks: brows, jaw and chin."""
        return _bounds(self.points)

    def features_box(self) -> tuple[float, float, float, float]:
        """(left, top, right, bottom) of the brows, eyes, nose and mouth: what a face is without."""
        return _bounds(self.points[17:])

    def moved(self, matrix: np.ndarray) -> "Head":
        """The same head after the 2 x 3 affine `matrix` (x' = A @ (x, y, 1)) moved its image."""
        return Head(self.points @ matrix[:, :2].T + matrix[:, 2])


def _bounds(points: np.ndarray) -> tuple[float, float, float, float]:
    (l, t), (r, b) = points.min(axis=0), points.max(axis=0)
    return float(l), float(t), float(r), float(b)


def head(image: np.ndarray, face: Face) -> Head:
    """The head geometry of `face` (see Head), from its 68 landmarks."""
    return Head(landmarks(image, face))


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
