"""How alike generated faces are to the person: dlib's 128-d identity descriptor of each image's
largest face, compared with the centroid of the training photos' descriptors, and whether the
face copies one training photo (copies.py).

- Reference: the prepared training crops. Their leave-one-out distances (each photo to the
  centroid of the others) are the baseline: how alike the real photos are to each other.
- Per image: face found or not, distance to the centroid, match (distance below the threshold,
  0.6 by default: dlib's "same person" line), distance to the nearest single training photo,
  and the training photo it copies, if any.
- A file that cannot be read as an image (broken, truncated, empty, not an image) is skipped
  with a one-line reason; board.py sums the images up per LoRA file and weight.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from .. import faces
from ..errors import FaceloraError
from ..fileio import atomic_write_json, read_json
from . import copies

Progress = Callable[[int, int, str], None]  # (done, total, what)

MATCH_THRESHOLD = faces.MATCH_THRESHOLD
# When HOG finds no face, dlib's CNN looks at a copy no larger than this (never enlarged): it
# still finds the large faces HOG misses (profiles, tilted heads) in a fraction of the time
# (512 px: 2.6 s idle, 256 px: 0.63 s; faces from ~80 px there, ~160 px in a 512 px cell); HOG,
# upsampled once, finds frontal faces from ~40 px.
CNN_MAX_SIDE = 256


class LikenessError(FaceloraError, ValueError):
    """Nothing to compare with (no reference face) or nothing to score."""


def read_image(path: Path) -> tuple[np.ndarray | None, str | None]:
    """The image as RGB, or (None, why not) for a file that is not a readable image."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return np.asarray(ImageOps.exif_transpose(im).convert("RGB")), None
    except UnidentifiedImageError:
        return None, "not an image PIL can read" if Path(path).stat().st_size else "empty file"
    except (OSError, ValueError, SyntaxError) as e:  # truncated or corrupt data
        return None, f"broken image ({str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__})"


def load_rgb(path: Path) -> np.ndarray:
    image, why = read_image(path)
    if image is None:
        raise LikenessError("{path}: {why}", path=str(path), why=why)
    return image


@dataclass
class Skipped:
    path: str
    reason: str

    def line(self) -> str:
        return f"skipped {Path(self.path).name}: {self.reason}"


# --- finding and describing a face -----------------------------------------------------------


@lru_cache(maxsize=None)
def _cnn():
    import dlib

    return dlib.cnn_face_detection_model_v1(str(faces.models_dir() / "mmod_human_face_detector.dat"))


def find_face(image: np.ndarray) -> faces.Face | None:
    """The largest face: HOG as faces.detect runs it quick (a generated face is large; the copy
    check's framing comes from the landmarks, not the box); when it finds none, the CNN on a
    small copy."""
    found = faces.detect(image, cnn_fallback=False, quick=True)
    if found:
        return found[0]
    small, s = faces._shrunk(image, CNN_MAX_SIDE)
    boxes = [d.rect for d in _cnn()(small, 0)]
    if not boxes:
        return None
    r = max(boxes, key=lambda b: b.area())
    return faces.Face(r.left() * s, r.top() * s, r.right() * s, r.bottom() * s, "cnn")


@dataclass
class Described:
    face: faces.Face
    vector: np.ndarray
    look: copies.FaceLook


def describe(image: np.ndarray) -> Described | None:
    face = find_face(image)
    if face is None:
        return None
    return Described(face, faces.descriptor(image, face), copies.look(image, face))


def describe_file(path: Path) -> tuple[Described | None, str | None]:
    """(the image's face or None, None) for a readable image; (None, why not) for one that is not.
    The unit of work parallel.ordered hands to a worker: a path in, small results out."""
    image, why = read_image(path)
    return (None, why) if image is None else (describe(image), None)


# --- the reference ---------------------------------------------------------------------------


@dataclass
class Reference:
    """The training photos' descriptors, their centroid, and the leave-one-out baseline."""

    paths: list[Path]  # photos with a face, in the order of `vectors`
    vectors: list[np.ndarray]
    looks: list[copies.FaceLook] = field(default_factory=list)
    no_face: list[Path] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)

    @property
    def centroid(self) -> np.ndarray:
        return np.mean(np.stack(self.vectors), axis=0)

    def baseline(self) -> dict[str, Any]:
        loo = faces.leave_one_out(self.vectors) if len(self.vectors) >= 2 else []
        return {
            "photos": len(self.paths) + len(self.no_face),
            "faces": len(self.vectors),
            "mean": float(np.mean(loo)) if loo else None,
            "max": float(np.max(loo)) if loo else None,
            "per_photo": [{"path": str(p), "distance": round(d, 4)} for p, d in zip(self.paths, loo)],
            "no_face": [str(p) for p in self.no_face],
            "skipped": [asdict(s) for s in self.skipped],
            "about": "each training photo's distance to the centroid of the others (leave-one-out)",
        }


def _cache_key(path: Path) -> str:
    st = path.stat()
    return f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"


def _cached(entry: Any) -> tuple[np.ndarray, copies.FaceLook] | None:
    """A cache entry written by this version (older ones held the vector only, or a look measured
    another way: embed again)."""
    if not isinstance(entry, dict) or "vector" not in entry or entry.get("look") != copies.LOOK_VERSION:
        return None
    import imagehash

    look = copies.FaceLook(np.asarray(entry["shape"]), tuple(entry["frame"]), imagehash.hex_to_hash(entry["phash"]))
    return np.asarray(entry["vector"], dtype=np.float64), look


def _entry(d: Described | None) -> dict[str, Any]:
    if d is None:
        return {"face": False}
    return {"look": copies.LOOK_VERSION, "vector": [float(x) for x in d.vector], "shape": np.round(d.look.shape, 5).tolist(),
            "frame": [round(x, 5) for x in d.look.frame], "phash": str(d.look.phash)}


def build_reference(paths: list[Path], cache: Path | None = None, progress: Progress | None = None) -> Reference:
    """Embed the reference photos. With `cache`, descriptors of unchanged files are reused."""
    paths = [Path(p) for p in paths]
    if not paths:
        raise LikenessError("No reference photos: the project's image/<repeats>_<trigger>/ folder is empty; run facelora prepare first.")
    stored: dict[str, Any] = read_json(cache, {}) if cache else {}
    ref = Reference([], [])
    fresh: dict[str, Any] = {}
    for i, p in enumerate(paths):
        key = _cache_key(p)
        entry = stored.get(key)
        if not isinstance(entry, dict) or (entry.get("face", True) and _cached(entry) is None):
            image, why = read_image(p)
            if image is None:
                ref.skipped.append(Skipped(str(p), why))
                continue
            entry = _entry(describe(image))
        fresh[key] = entry
        found = _cached(entry)
        if found is None:
            ref.no_face.append(p)
        else:
            ref.paths.append(p)
            ref.vectors.append(found[0])
            ref.looks.append(found[1])
        if progress:
            progress(i + 1, len(paths), f"reference {p.name}")
    if cache and fresh != stored:
        atomic_write_json(cache, fresh)
    if not fresh:
        raise LikenessError("None of the {n} reference files is a readable image: {skipped}", n=len(paths),
                            skipped="; ".join(s.line() for s in ref.skipped[:3]))
    if not ref.vectors:
        raise LikenessError(
            "None of the {n} reference photos has a face dlib can find, so there is nothing to compare with. Use "
            "the prepared crops (facelora prepare) or clearer photos.", n=len(paths))
    return ref


# --- one image -------------------------------------------------------------------------------


@dataclass
class ImageScore:
    path: str
    face: bool
    distance: float | None
    match: bool
    nearest: float | None = None  # distance to the closest single training photo
    box: list[int] | None = None
    group: str = ""
    kind: str = "likeness"  # the probe prompt's kind: likeness, flexibility or bleed
    copy_of: str | None = None  # the training photo this face copies
    copy: dict[str, Any] | None = None  # how close it is to that photo on each measure
    vector: np.ndarray | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("vector")
        return d


def score_image(image: np.ndarray, ref: Reference, threshold: float = MATCH_THRESHOLD,
                centroid: np.ndarray | None = None) -> ImageScore:
    """One image against the reference. An image without a face (noise, a landscape) is a
    result, not an error: face False, distance None."""
    return score_described(describe(image), ref, threshold, centroid)


def score_described(found: Described | None, ref: Reference, threshold: float = MATCH_THRESHOLD,
                    centroid: np.ndarray | None = None) -> ImageScore:
    """score_image for a face described already (None: the image has no face)."""
    if found is None:
        return ImageScore("", False, None, False)
    vec = found.vector
    c = ref.centroid if centroid is None else centroid
    d = faces.distance(vec, c)
    nearest = min(faces.distance(vec, r) for r in ref.vectors)
    s = ImageScore("", True, round(d, 4), d < threshold, round(nearest, 4), found.face.as_list(), vector=vec)
    copied = copies.find_copy(vec, found.look, ref.vectors, ref.looks) if ref.looks else None
    if copied is not None:
        s.copy_of = str(ref.paths[copied.photo])
        s.copy = {"identity": copied.identity, "landmarks": copied.shape, "framing": copied.frame,
                  "phash_bits": copied.hash}
    return s
