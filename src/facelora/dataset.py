"""The training folder as Kohya reads it: `train_data_dir` holds `<repeats>_<trigger>` folders
of images with same-stem captions. This module finds the images, captions and loss masks of
conditioning_data_dir, says clearly what is wrong with a folder, holds photos out for the
validation loss, adds the class images, and puts each image in its aspect-ratio bucket (buckets.py);
it knows nothing of tensors.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from .messages import Message, said
from .buckets import Bucketing, TrainDataError, bucket_resolutions, image_size, select_bucket  # noqa: F401
from .project import Concept, ProjectError

if TYPE_CHECKING:
    from .config import TrainConfig

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


class DatasetError(ProjectError):
    """A training folder Kohya's trainer would also reject (or silently misread)."""


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
    masks: dict[Path, Path] = field(default_factory=dict)  # image -> its mask in conditioning_data_dir

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
    """The training folder of `cfg` (with its masks from conditioning_data_dir, its class images
    from reg_data_dir, the photos validation_split holds out and those of validation_data_dir), its
    images in the buckets `cfg` trains them in."""
    dataset = scan(cfg.train_data_dir, cfg.caption_extension)
    if cfg.conditioning_data_dir:
        dataset = with_masks(dataset, cfg.conditioning_data_dir)
    if cfg.validation_split:
        dataset = hold_out(dataset, cfg.validation_split, cfg.seed if cfg.validation_seed is None else cfg.validation_seed)
    if cfg.validation_data_dir:
        dataset = with_validation_folder(dataset, scan(cfg.validation_data_dir, cfg.caption_extension))
    if cfg.reg_data_dir:
        dataset = with_class_images(dataset, scan(cfg.reg_data_dir, cfg.caption_extension).subsets)
    return dataset.bucketed(Bucketing.of(cfg))


def scan(train_data_dir: str | Path, caption_extension: str = ".txt", bucketing: Bucketing | None = None) -> Dataset:
    """Read `train_data_dir` the way Kohya does, with a message that says what to do when the
    layout is one of the usual mistakes; with `bucketing`, put each image in its bucket."""
    root = Path(train_data_dir)
    if not root.is_dir():
        raise DatasetError("Training folder '{root}' does not exist.", root=str(root))
    try:
        Concept.parse(root.name)
        leaf = bool(list_images(root))
    except ProjectError:
        leaf = False
    if leaf:
        raise DatasetError(
            "'{root}' is a '<repeats>_<trigger>' folder itself. Point train_data_dir at its parent "
            "('{parent}'), as in Kohya's trainer: the number in the folder name is how often "
            "each image repeats.", root=str(root), parent=str(root.parent)
        )
    folders = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    loose = list_images(root)
    if not folders:
        raise DatasetError(
            "'{root}' has no '<repeats>_<trigger>' folder. It holds {n} images directly; put the images in a "
            "folder such as '{example}' (15 repeats, trigger word 'ohwx', class 'woman')." if loose else
            "'{root}' has no '<repeats>_<trigger>' folder. put the images in a folder such as '{example}' "
            "(15 repeats, trigger word 'ohwx', class 'woman').",
            root=str(root), n=len(loose), example=str(root / "15_ohwx woman"))
    subsets = []
    for folder in folders:
        concept = Concept.parse(folder.name)
        images = list_images(folder)
        if not images:
            raise DatasetError(
                "'{folder}' holds no images ({extensions}). Add photos, or run "
                "'facelora prepare PHOTOS {parent}' to make them.", folder=str(folder),
                extensions=", ".join(IMAGE_EXTENSIONS), parent=str(root.parent)
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
            raise DatasetError("validation_split {split} leaves no photo of '{folder}' to train on; lower it.",
                               split=split, folder=str(s.folder))
        train.append(replace(s, images=keep, captions={p: s.captions[p] for p in keep}))
        if out:
            held.append(replace(s, images=sorted(out), captions={p: s.captions[p] for p in out},
                                concept=replace(s.concept, repeats=1)))
    return replace(dataset, subsets=train, validation=held, bucketing=None)


def with_validation_folder(dataset: Dataset, held: Dataset) -> Dataset:
    """validation_data_dir's photos held out beside any validation_split holds out, each seen once
    per validation (Kohya's validation datasets take num_repeats 1)."""
    return replace(dataset, validation=dataset.validation + [replace(s, concept=replace(s.concept, repeats=1))
                                                             for s in held.subsets], bucketing=None)


# --- loss masks from a conditioning folder ------------------------------------------------------


def with_masks(dataset: Dataset, conditioning_data_dir: str | Path) -> Dataset:
    """Each of the person's photos paired with its mask, found as sd-scripts' ControlNetDataset
    (which --masked_loss uses for subsets with conditioning_data_dir) finds it: the image of the
    photo's file stem in the subset's conditioning folder, of the photo's size. A photo without
    one, or a mask without a photo, is an error, as sd-scripts asserts. Each <repeats>_<trigger>
    folder's conditioning folder is the folder of the same name in conditioning_data_dir (what the
    Kohya export names per subset)."""
    root = Path(conditioning_data_dir)
    if not root.is_dir():
        raise DatasetError("conditioning_data_dir '{root}' does not exist. Write the head masks there with "
                           "'facelora prepare PHOTOS PROJECT --head-mask --mask-dir {name}', or unset it.",
                           root=str(root), name=root.name)
    return replace(dataset, subsets=[replace(s, masks=pair_masks(s, root / s.folder.name)) for s in dataset.subsets])


def pair_masks(subset: Subset, folder: Path) -> dict[Path, Path]:
    if subset.missing_captions:  # Kohya's conditioning subsets have no folder words to fall back to
        raise DatasetError("With masks from conditioning_data_dir every photo needs its caption file, as in Kohya "
                           "(which trains them with an empty caption): {files}.",
                           files=file_list(subset.missing_captions))
    masks = list_images(folder) if folder.is_dir() else []
    by_stem: dict[str, list[Path]] = {}
    for m in masks:
        by_stem.setdefault(m.stem, []).append(m)
    where = {"folder": str(folder), "name": subset.folder.name}
    if twice := [p for ps in by_stem.values() if len(ps) > 1 for p in ps]:
        raise DatasetError("the conditioning folder '{folder}' (the masks of '{name}', each named as its photo) "
                           "holds more than one mask for a photo: {files}. Keep one each.", files=file_list(twice),
                           **where)
    if missing := [p for p in subset.images if p.stem not in by_stem]:
        raise DatasetError("{n} photo(s) have no mask in the conditioning folder '{folder}' (the masks of '{name}', "
                           "each named as its photo): {files}. Add them (prepare --head-mask --mask-dir writes them): "
                           "Kohya's masked_loss needs one each.", n=len(missing), files=file_list(missing), **where)
    stems = {p.stem for p in subset.images}
    if extra := [m for m in masks if m.stem not in stems]:
        raise DatasetError("the conditioning folder '{folder}' (the masks of '{name}', each named as its photo) "
                           "holds {n} mask(s) of no photo (Kohya refuses extra conditioning images): {files}. Remove "
                           "them.", n=len(extra), files=file_list(extra), **where)
    pairs = {p: by_stem[p.stem][0] for p in subset.images}
    if other := [m for p, m in pairs.items() if image_size(m) != image_size(p)]:
        raise DatasetError("{n} mask(s) in the conditioning folder '{folder}' (the masks of '{name}', each named as "
                           "its photo) are not the size of their photo (Kohya needs the same size): {files}.",
                           n=len(other), files=file_list(other), **where)
    return pairs


def file_list(paths: list[Path]) -> str:
    """The first ten file names of a note, and '...' when there are more."""
    return ", ".join(p.name for p in paths[:10]) + (" ..." if len(paths) > 10 else "")


def missing_caption_warning(dataset: Dataset, caption_extension: str) -> Message | None:
    missing = dataset.missing_captions
    if not missing:
        return None
    return said("{n} image(s) have no '{ext}' caption, so the folder words are used as their caption: {files}. "
                "Check caption_extension (Kohya's 'no caption file found').", n=len(missing), ext=caption_extension,
                files=file_list(missing))


def caption_notes(dataset: Dataset, caption_extension: str) -> list[Message]:
    """What training says about the captions: the missing ones, and files that are not UTF-8."""
    notes = [n for n in [missing_caption_warning(dataset, caption_extension)] if n]
    if garbled := dataset.garbled_captions:
        notes.append(said("{n} caption file(s) are not UTF-8 text, so their unreadable bytes became '\ufffd': "
                          "{files}. Save them as UTF-8 (the trigger word must read right).", n=len(garbled),
                          files=file_list(garbled)))
    return notes
