"""The training folder as Kohya reads it: `train_data_dir` holds `<repeats>_<trigger>` folders
of images with same-stem captions. This module finds the images and captions and says clearly
what is wrong with a folder, and puts each image in its aspect-ratio bucket (the size it trains
at), so the plan and the trainer batch the same buckets; it knows nothing of tensors.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image, UnidentifiedImageError

from .errors import FaceloraError
from .project import Concept, ProjectError

if TYPE_CHECKING:
    from .config import TrainConfig

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


class DatasetError(ProjectError):
    """A training folder Kohya's trainer would also reject (or silently misread)."""


class TrainDataError(FaceloraError):
    """An image that cannot be trained on; the message names it."""


# --- aspect-ratio buckets ----------------------------------------------------------------------


def bucket_resolutions(max_reso: tuple[int, int], min_size: int, max_size: int, divisible: int) -> list[tuple[int, int]]:
    """Kohya's bucket list: every (w, h) with sides in [min_size, max_size], multiples of
    `divisible`, and area at most the training resolution's, plus the square."""
    max_area = max_reso[0] * max_reso[1]
    side = int(math.sqrt(max_area) // divisible) * divisible
    resos = {(side, side)}
    width = min_size
    while width <= max_size:
        height = min(max_size, int((max_area // width) // divisible) * divisible)
        if height >= min_size:
            resos.add((width, height))
            resos.add((height, width))
        width += divisible
    return sorted(resos)


def select_bucket(size: tuple[int, int], resos: list[tuple[int, int]]) -> tuple[int, int]:
    """The bucket whose aspect ratio is nearest the image's (Kohya's select_bucket)."""
    ratio = size[0] / size[1]
    return min(resos, key=lambda r: abs(r[0] / r[1] - ratio))


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) after EXIF orientation, read from the header only."""
    try:
        with Image.open(path) as im:
            w, h = im.size
            if im.getexif().get(0x0112, 1) in (5, 6, 7, 8):  # rotated by 90 degrees
                w, h = h, w
            return w, h
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise TrainDataError(f"Cannot read the training image {path}: {e}. Replace or remove it.") from None


@dataclass(frozen=True)
class Bucketing:
    """The sizes images train at: Kohya's aspect-ratio buckets (enable_bucket), or every image
    at the training resolution."""

    resolution: tuple[int, int]
    enable_bucket: bool = False
    min_bucket_reso: int = 256
    max_bucket_reso: int = 1024
    bucket_reso_steps: int = 64

    @classmethod
    def of(cls, cfg: "TrainConfig") -> "Bucketing":
        return cls(cfg.resolution_wh, cfg.enable_bucket, cfg.min_bucket_reso, cfg.max_bucket_reso,
                   cfg.bucket_reso_steps)

    def assign(self, images: list[Path]) -> dict[Path, tuple[int, int]]:
        """image -> the (width, height) it trains at."""
        if not self.enable_bucket:
            return {p: self.resolution for p in images}
        resos = bucket_resolutions(self.resolution, self.min_bucket_reso, self.max_bucket_reso, self.bucket_reso_steps)
        return {p: select_bucket(image_size(p), resos) for p in images}


@dataclass
class Subset:
    folder: Path
    concept: Concept
    images: list[Path]
    captions: dict[Path, str]  # image -> caption (from its file, or the folder words)
    missing_captions: list[Path] = field(default_factory=list)
    garbled_captions: list[Path] = field(default_factory=list)  # caption files that are not UTF-8
    buckets: dict[Path, tuple[int, int]] = field(default_factory=dict)  # image -> the size it trains at
    is_reg: bool = False  # class (regularisation) images, from reg_data_dir
    image_repeats: dict[Path, int] = field(default_factory=dict)  # class images: Kohya's cycled repeats

    @property
    def repeats(self) -> int:
        return self.concept.repeats

    def repeats_of(self, image: Path) -> int:
        """How often `image` is seen in an epoch: the folder's repeats, or for class images the
        count Kohya cycles them to (0 for one never reached)."""
        return self.image_repeats.get(image, 0) if self.is_reg else self.repeats


@dataclass
class Dataset:
    root: Path
    subsets: list[Subset]
    bucketing: Bucketing | None = None  # how the subsets' buckets were worked out (None: not yet)
    validation: list[Subset] = field(default_factory=list)  # photos held out for the validation loss

    def held_out(self) -> "Dataset":
        """The held-out photos as a dataset of their own (for the validation loss)."""
        return Dataset(self.root, self.validation, self.bucketing)

    @property
    def train_subsets(self) -> list[Subset]:
        return [s for s in self.subsets if not s.is_reg]

    @property
    def reg_subsets(self) -> list[Subset]:
        return [s for s in self.subsets if s.is_reg]

    def bucketed(self, bucketing: Bucketing) -> "Dataset":
        """This dataset with every image in its bucket under `bucketing` (itself when it already is)."""
        if bucketing == self.bucketing:
            return self
        return Dataset(self.root, [replace(s, buckets=bucketing.assign(s.images)) for s in self.subsets], bucketing,
                       [replace(s, buckets=bucketing.assign(s.images)) for s in self.validation])

    def bucket_images(self) -> dict[tuple[int, int], list[int]]:
        """bucket -> the indices (in items() order) of its images, smallest bucket first. The
        trainer batches each bucket on its own, and the plan counts their batches."""
        if self.bucketing is None:
            raise ValueError("The dataset has no buckets yet: scan it with a Bucketing, or call bucketed().")
        out: dict[tuple[int, int], list[int]] = {}
        for i, (path, subset) in enumerate((p, s) for s in self.subsets for p in s.images):
            out.setdefault(subset.buckets[path], []).append(i)
        return dict(sorted(out.items()))

    @property
    def num_images(self) -> int:
        """The person's photos trained on (class images and held-out photos not counted)."""
        return sum(len(s.images) for s in self.train_subsets)

    @property
    def num_train_samples(self) -> int:
        """The person's images x repeats: Kohya's num_train_images."""
        return sum(len(s.images) * s.repeats for s in self.train_subsets)

    @property
    def num_samples(self) -> int:
        """Images x repeats, class images included: what one epoch goes through."""
        return sum(s.repeats_of(p) for s in self.subsets for p in s.images)

    @property
    def missing_captions(self) -> list[Path]:
        return [p for s in self.subsets for p in s.missing_captions]

    @property
    def garbled_captions(self) -> list[Path]:
        return [p for s in self.subsets for p in s.garbled_captions]

    def items(self) -> list[tuple[Path, str, int]]:
        """(image, caption, repeats) for every image."""
        return [(p, s.captions[p], s.repeats_of(p)) for s in self.subsets for p in s.images]

    def is_reg(self) -> list[bool]:
        """For every image in items() order, whether it is a class image."""
        return [s.is_reg for s in self.subsets for _ in s.images]

    def tag_frequency(self) -> dict[str, dict[str, int]]:
        """Kohya's `ss_tag_frequency`: {folder: {tag: count}}."""
        out: dict[str, dict[str, int]] = {}
        for s in self.subsets:
            freq: dict[str, int] = {}
            for cap in s.captions.values():
                for tag in (t.strip() for t in cap.split(",")):
                    if tag:
                        freq[tag] = freq.get(tag, 0) + 1
            out[s.folder.name] = freq
        return out


def list_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


def read_caption(image: Path, caption_extension: str) -> tuple[str | None, bool]:
    """The image's caption (None without a caption file) and whether its file is UTF-8. A
    byte-order mark is dropped (an editor's, not words for the tokenizer); bytes that are not
    UTF-8 are replaced, and the caller names the file."""
    cap = image.with_suffix(caption_extension)
    if not cap.is_file():
        return None, True
    data = cap.read_bytes()
    try:
        text, ok = data.decode("utf-8-sig"), True
    except UnicodeDecodeError:
        text, ok = data.decode("utf-8-sig", errors="replace"), False
    return " ".join(text.split()), ok


def scan_for(cfg: "TrainConfig") -> Dataset:
    """The training folder of `cfg` (with its class images from reg_data_dir, and the photos
    validation_split holds out), its images in the buckets `cfg` trains them in."""
    dataset = scan(cfg.train_data_dir, cfg.caption_extension)
    if cfg.validation_split:
        dataset = hold_out(dataset, cfg.validation_split, cfg.seed if cfg.validation_seed is None else cfg.validation_seed)
    if cfg.reg_data_dir:
        dataset = with_class_images(dataset, scan(cfg.reg_data_dir, cfg.caption_extension).subsets)
    return dataset.bucketed(Bucketing.of(cfg))


def scan(train_data_dir: str | Path, caption_extension: str = ".txt", bucketing: Bucketing | None = None) -> Dataset:
    """Read `train_data_dir` the way Kohya does, with a message that says what to do when the
    layout is one of the usual mistakes; with `bucketing`, put each image in its bucket."""
    root = Path(train_data_dir)
    if not root.is_dir():
        raise DatasetError(f"Training folder '{root}' does not exist.")
    try:
        Concept.parse(root.name)
        leaf = bool(list_images(root))
    except ProjectError:
        leaf = False
    if leaf:
        raise DatasetError(
            f"'{root}' is a '<repeats>_<trigger>' folder itself. Point train_data_dir at its parent "
            f"('{root.parent}'), as in Kohya's trainer: the number in the folder name is how often "
            f"each image repeats."
        )
    folders = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    loose = list_images(root)
    if not folders:
        hint = f" It holds {len(loose)} images directly;" if loose else ""
        raise DatasetError(
            f"'{root}' has no '<repeats>_<trigger>' folder.{hint} put the images in a folder such as "
            f"'{root / '15_ohwx woman'}' (15 repeats, trigger word 'ohwx', class 'woman')."
        )
    subsets = []
    for folder in folders:
        concept = Concept.parse(folder.name)
        images = list_images(folder)
        if not images:
            raise DatasetError(
                f"'{folder}' holds no images ({', '.join(IMAGE_EXTENSIONS)}). Add photos, or run "
                f"'facelora prepare PHOTOS {root.parent}' to make them."
            )
        captions, missing, garbled = {}, [], []
        for img in images:
            text, utf8 = read_caption(img, caption_extension)
            if text is None:
                missing.append(img)
                text = concept.words
            if not utf8:
                garbled.append(img.with_suffix(caption_extension))
            captions[img] = text
        subsets.append(Subset(folder, concept, images, captions, missing, garbled))
    dataset = Dataset(root, subsets)
    return dataset.bucketed(bucketing) if bucketing else dataset


# --- Kohya's two other kinds of subset: class images and held-out photos -----------------------


def class_image_repeats(train_samples: int, reg: list[tuple[Path, int]]) -> dict[Path, int]:
    """Kohya's DreamBoothDataset: class images (each with its folder's repeats) are taken in
    order until they make as many samples as the person's images x repeats; if they run short,
    they are cycled, one more repeat each in turn, until they do. So an epoch is about twice the
    person's samples, and class images beyond that are not used (repeats 0)."""
    out: dict[Path, int] = {}
    n, first = 0, True
    while reg and n < train_samples:
        for path, repeats in reg:
            if first:
                out[path] = repeats
                n += repeats
            else:
                out[path] += 1
                n += 1
            if n >= train_samples:
                break
        first = False
    return out


def with_class_images(dataset: Dataset, reg: list[Subset]) -> Dataset:
    """The dataset's own photos with `reg`'s folders as class-image subsets, repeated as Kohya
    repeats them (counted against the person's samples, so after any hold_out)."""
    subsets = [replace(s, is_reg=True) for s in reg]
    counts = class_image_repeats(dataset.num_train_samples, [(p, s.repeats) for s in subsets for p in s.images])
    subsets = [replace(s, image_repeats={p: counts[p] for p in s.images if p in counts}) for s in subsets]
    return replace(dataset, subsets=dataset.train_subsets + subsets, bucketing=None)


def with_repeats(dataset: Dataset, repeats: int) -> Dataset:
    """The dataset with every folder of the person's photos at `repeats` (a planned budget), the
    class images counted again against them."""
    train = [replace(s, concept=replace(s.concept, repeats=repeats)) for s in dataset.train_subsets]
    return with_class_images(replace(dataset, subsets=train), dataset.reg_subsets)


def split_validation(images: list[Path], split: float, seed: int) -> tuple[list[Path], list[Path]]:
    """Kohya's split_train_val: shuffle with the validation seed, the first ceil(n x (1 - split))
    train, the last round(n x split) are held out."""
    order = list(images)
    random.Random(seed).shuffle(order)
    return order[:math.ceil(len(order) * (1 - split))], order[len(order) - round(len(order) * split):]


def hold_out(dataset: Dataset, split: float, seed: int) -> Dataset:
    """Each of the person's folders split as split_validation says (class images never are);
    held-out photos are seen once per validation, with their captions."""
    train, held = [], []
    for s in dataset.subsets:
        if s.is_reg:
            train.append(s)
            continue
        keep, out = split_validation(s.images, split, seed)
        keep = sorted(keep)
        if not keep:
            raise DatasetError(f"validation_split {split} leaves no photo of '{s.folder}' to train on; lower it.")
        train.append(replace(s, images=keep, captions={p: s.captions[p] for p in keep}))
        if out:
            held.append(replace(s, images=sorted(out), captions={p: s.captions[p] for p in out},
                                concept=replace(s.concept, repeats=1)))
    return replace(dataset, subsets=train, validation=held, bucketing=None)


def file_list(paths: list[Path]) -> str:
    """The first ten file names of a note, and '...' when there are more."""
    return ", ".join(p.name for p in paths[:10]) + (" ..." if len(paths) > 10 else "")


def missing_caption_warning(dataset: Dataset, caption_extension: str) -> str | None:
    missing = dataset.missing_captions
    if not missing:
        return None
    return (
        f"{len(missing)} image(s) have no '{caption_extension}' caption, so the folder words are "
        f"used as their caption: {file_list(missing)}. Check caption_extension (Kohya's 'no caption file found')."
    )


def caption_notes(dataset: Dataset, caption_extension: str) -> list[str]:
    """What training says about the captions: the missing ones, and files that are not UTF-8."""
    notes = [n for n in [missing_caption_warning(dataset, caption_extension)] if n]
    if garbled := dataset.garbled_captions:
        notes.append(f"{len(garbled)} caption file(s) are not UTF-8 text, so their unreadable bytes became "
                     f"'\ufffd': {file_list(garbled)}. Save them as UTF-8 (the trigger word must read right).")
    return notes
