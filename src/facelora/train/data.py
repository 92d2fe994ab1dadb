"""The training data as Kohya's trainer feeds it: every image `repeats` times an epoch, in the
aspect-ratio buckets the dataset scan put it in (facelora.dataset), shuffled per epoch, cut into batches; images resized to cover their
bucket and centre-cropped; captions optionally shuffled; latents encoded once and cached.

Everything random here is a pure function of (seed, epoch, position), so the batches of any
epoch can be rebuilt at any time: a resumed run sees exactly the data an unbroken one would.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections import Counter
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Callable, Iterator

import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from safetensors.torch import load as safetensors_load
from safetensors.torch import save as safetensors_save

from ..config import TrainConfig
from ..dataset import Bucketing, Dataset, TrainDataError, file_list, image_size
from ..fileio import atomic_write_bytes
from ..messages import Message, said
from .captions import changes_captions, process_caption

MIN_SIDE = 32  # 4 latent pixels: below this an image holds no face to learn


# --- images ------------------------------------------------------------------------------------


def open_rgb(path: Path, alpha: bool = False) -> Image.Image:
    """The image upright (EXIF orientation applied) in RGB (with alpha: RGBA, opaque where the
    file has no alpha channel, as Kohya's load_image), or an error that names the file."""
    try:
        with Image.open(path) as im:
            im.load()
            return ImageOps.exif_transpose(im).convert("RGBA" if alpha else "RGB")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise TrainDataError("Cannot read the training image {path}: {error}. Replace or remove it.", path=str(path),
                             error=str(e)) from None


def fit(image: Image.Image, size: tuple[int, int], crop_only: bool = False) -> Image.Image:
    """Resize so the image covers `size` (keeping its aspect ratio), then crop the centre; with
    `crop_only` (bucket_no_upscale's own-size buckets) crop the centre at the image's own scale."""
    w, h = size
    scale = 1.0 if crop_only else max(w / image.width, h / image.height)
    new = (max(w, round(image.width * scale)), max(h, round(image.height * scale)))
    if new != image.size:
        image = image.resize(new, Image.Resampling.LANCZOS)
    left, top = (image.width - w) // 2, (image.height - h) // 2
    return image.crop((left, top, left + w, top + h))


def to_tensor(image: Image.Image) -> torch.Tensor:
    """[3, H, W] float in [-1, 1], as the VAE expects."""
    data = torch.frombuffer(bytearray(image.tobytes()), dtype=torch.uint8)
    return data.view(image.height, image.width, 3).permute(2, 0, 1).float().div(127.5).sub(1.0)


def load_pixels(path: Path, size: tuple[int, int], crop_only: bool = False) -> torch.Tensor:
    return to_tensor(fit(open_rgb(path), size, crop_only))


def load_alpha_mask(path: Path, size: tuple[int, int], crop_only: bool = False) -> torch.Tensor:
    """The image's alpha channel as the loss mask [H, W] in 0..1, fitted as its pixels are (ones
    where it has none), as Kohya's alpha_mask reads it; the VAE's input is the RGB alone
    (load_pixels), so alpha never reaches the latents."""
    return channel_weights(open_rgb(path, alpha=True).getchannel("A"), size, crop_only)


def load_conditioning_mask(path: Path, size: tuple[int, int], crop_only: bool = False) -> torch.Tensor:
    """A mask image of conditioning_data_dir as the loss mask [H, W] in 0..1: its red channel
    (grey is the same), as sd-scripts' apply_masked_loss reads conditioning images, fitted as the
    photo's pixels are (the two are the same size)."""
    return channel_weights(open_rgb(path).getchannel("R"), size, crop_only)


def channel_weights(channel: Image.Image, size: tuple[int, int], crop_only: bool = False) -> torch.Tensor:
    """One 8-bit channel fitted to `size` as [H, W] weights in 0..1."""
    fitted = fit(channel, size, crop_only)
    return torch.frombuffer(bytearray(fitted.tobytes()), dtype=torch.uint8).view(fitted.height, fitted.width).float() / 255.0


def missing_mask_warning(dataset: Dataset, cfg: TrainConfig) -> Message | None:
    """alpha_mask on photos without an alpha channel weights every pixel 1 (as in Kohya): say so."""
    if not cfg.alpha_mask:
        return None
    bare = [p for s in dataset.train_subsets for p in s.images if not _has_alpha(p)]
    if not bare:
        return None
    return said("alpha_mask is on, but {n} of the photos have no alpha channel, so their loss is not masked: run "
                "'facelora prepare PHOTOS PROJECT --head-mask' to write head masks.", n=len(bare))


def _has_alpha(path: Path) -> bool:
    with Image.open(path) as im:
        return "A" in im.getbands() or "transparency" in im.info


# --- the dataset in training order -------------------------------------------------------------


@dataclass(frozen=True)
class TrainImage:
    path: Path
    caption: str
    repeats: int
    bucket: tuple[int, int]  # (width, height) it is trained at
    is_reg: bool = False  # a class image: its loss is weighted by prior_loss_weight
    mask: Path | None = None  # its mask in conditioning_data_dir
    crop_only: bool = False  # bucket_no_upscale kept its size: cropped to the bucket, not resized


@dataclass
class Batch:
    """One micro-batch: the images' indices, their captions (shuffled if asked), either the
    cached latents or the pixels to encode, and with masked_loss the masks [B, H, W] (image
    size); loss_weights holds each image's weight (prior_loss_weight for class images) when
    there are class images."""

    indices: list[int]
    captions: list[str]
    latents: torch.Tensor | None = None
    pixels: torch.Tensor | None = None
    masks: torch.Tensor | None = None
    loss_weights: torch.Tensor | None = None


class TrainData:
    """The images of a Dataset with their buckets, and the batch order of every epoch."""

    def __init__(self, dataset: Dataset, cfg: TrainConfig):
        self.cfg = cfg
        self.dataset = dataset.bucketed(Bucketing.of(cfg))  # the buckets the plan counted
        self.sizes = {path: image_size(path) for path, _, _ in self.dataset.items()}
        if small := [p for p, size in self.sizes.items() if min(size) < MIN_SIDE]:
            raise TrainDataError("{n} training image(s) are smaller than {side} px on a side, too small to learn a face "
                                 "from: {files}. Remove them, or prepare larger photos.", n=len(small), side=MIN_SIDE,
                                 files=file_list(small))
        buckets = {p: b for s in self.dataset.subsets for p, b in s.buckets.items()}
        masks = {p: m for s in self.dataset.subsets for p, m in s.masks.items()}
        keeps = Bucketing.of(cfg).keeps_scale
        self.images = [TrainImage(path, caption, repeats, buckets[path], reg, masks.get(path),
                                  keeps(self.sizes[path]))
                       for (path, caption, repeats), reg in zip(self.dataset.items(), self.dataset.is_reg())]

    @cached_property
    def masks(self) -> list[torch.Tensor] | None:
        """Each image's loss mask, read once: its alpha channel when alpha_mask is set (as in Kohya,
        alpha_mask weights the loss with or without masked_loss), its conditioning_data_dir mask
        with that (ones for an image without: validation_data_dir's photos, unmasked as in Kohya's
        dataset for them); None without either."""
        if self.cfg.alpha_mask:
            return [load_alpha_mask(im.path, im.bucket, im.crop_only) for im in self.images]
        if self.cfg.conditioning_data_dir and self.cfg.masked_loss:
            return [load_conditioning_mask(im.mask, im.bucket, im.crop_only) if im.mask else torch.ones(im.bucket[::-1])
                    for im in self.images]
        return None

    def batch(self, indices: list[int], captions: list[str], latents: list[torch.Tensor] | None) -> Batch:
        """One micro-batch of these images: cached latents or pixels, masks and loss weights."""
        masks = self.masks
        return Batch(indices, captions,
                     latents=None if latents is None else torch.stack([latents[i] for i in indices]),
                     pixels=None if latents is not None else torch.stack(
                         [load_pixels(self.images[i].path, self.images[i].bucket, self.images[i].crop_only) for i in indices]),
                     masks=None if masks is None else torch.stack([masks[i] for i in indices]),
                     loss_weights=self.loss_weights(indices))

    def size_notes(self) -> list[Message]:
        """With buckets off every image is scaled and centre-cropped to the training resolution (as
        in Kohya): say which, before the steps start (prepared at 768, trained at 512, say)."""
        if self.cfg.enable_bucket:
            return []
        w, h = self.cfg.resolution_wh
        other = [p for p, size in self.sizes.items() if size != (w, h)]
        if not other:
            return []
        counts = Counter(self.sizes[p] for p in other)
        shown = ", ".join(f"{n} at {a} x {b}" for (a, b), n in counts.most_common(3))
        return [said("Training at {w} x {h}, but {n} of {total} images are not that size ({sizes}): each is scaled and "
                     "centre-cropped to {w} x {h} (enable_bucket keeps their shape): {files}. Prepare at the training "
                     "resolution (facelora prepare --resolution {w}) or set resolution to the images' size.", w=w, h=h,
                     n=len(other), total=len(self.sizes), sizes=shown, files=file_list(other))]

    def __len__(self) -> int:
        return len(self.images)

    def buckets(self) -> dict[tuple[int, int], list[int]]:
        """bucket -> the image indices of one epoch's samples (each image `repeats` times)."""
        return {bucket: [i for i in indices for _ in range(self.images[i].repeats)]
                for bucket, indices in self.dataset.bucket_images().items()}

    def bucket_info(self) -> dict | None:
        """Kohya's ss_bucket_info (None without buckets)."""
        if not self.cfg.enable_bucket:
            return None
        return {"buckets": {str(i): {"resolution": list(reso), "count": len(samples)}
                            for i, (reso, samples) in enumerate(self.buckets().items())}}

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        """All micro-batches of one epoch (1-based), as Kohya orders them: each bucket's samples
        shuffled and cut into batches, then the batches shuffled."""
        rng = random.Random(f"order/{self.cfg.seed}/{epoch}")
        batches = []
        size = self.cfg.train_batch_size
        for samples in self.buckets().values():
            samples = list(samples)
            rng.shuffle(samples)
            batches += [samples[i:i + size] for i in range(0, len(samples), size)]
        rng.shuffle(batches)
        return batches

    def epoch_steps(self, epoch: int, num_processes: int = 1, process_index: int = 0) -> list[list[list[int]]]:
        """This process's optimizer steps of one epoch, each a list of micro-batches
        (gradient_accumulation_steps of them, fewer in the epoch's last step). Processes take
        every num_processes-th batch; one that runs short repeats the epoch's first batches, as
        accelerate does, so every process makes the same number of steps."""
        batches = self.epoch_batches(epoch)
        per_process = math.ceil(len(batches) / num_processes)
        padded = (batches * num_processes)[: per_process * num_processes]
        mine = padded[process_index::num_processes]
        acc = self.cfg.gradient_accumulation_steps
        return [mine[i:i + acc] for i in range(0, len(mine), acc)]

    def loss_weights(self, indices: list[int]) -> torch.Tensor | None:
        """Each image's loss weight: prior_loss_weight for class images, 1 for the person's
        (None when the dataset has no class images)."""
        if not any(im.is_reg for im in self.images):
            return None
        return torch.tensor([self.cfg.prior_loss_weight if self.images[i].is_reg else 1.0 for i in indices])

    def captions(self, indices: list[int], epoch: int, step: int, micro: int) -> list[str]:
        """The captions of one micro-batch; shuffled and dropped (captions.py) from (seed, epoch,
        step, micro-batch) if asked."""
        caps = [self.images[i].caption for i in indices]
        if not changes_captions(self.cfg):
            return caps
        return [process_caption(c, self.cfg, epoch, random.Random(f"caption/{self.cfg.seed}/{epoch}/{step}/{micro}/{j}"))
                for j, c in enumerate(caps)]


# --- latents -----------------------------------------------------------------------------------


def vae_fingerprint(vae: torch.nn.Module) -> str:
    """A short hash of the VAE's weights (a few layers): cached latents belong to one VAE."""
    h = hashlib.sha256()
    for name, p in list(vae.state_dict().items())[:4] + list(vae.state_dict().items())[-4:]:
        h.update(name.encode())
        h.update(p.detach().float().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def cache_key(path: Path, bucket: tuple[int, int], vae_id: str) -> str:
    """Image content hash + resolution + VAE: a renamed image keeps its cache, an edited one (its
    alpha mask included: it is in the file's bytes) not."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:32]
    return f"{digest}_{bucket[0]}x{bucket[1]}_{vae_id}"


@torch.no_grad()
def encode(vae: torch.nn.Module, pixels: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Pixels [-1, 1] -> scaled latents (one sample of the VAE's latent distribution)."""
    dist = vae.encode(pixels.to(vae.device, vae.dtype)).latent_dist
    noise = torch.randn(dist.mean.shape, generator=generator, dtype=dist.mean.dtype).to(dist.mean.device)
    return (dist.mean + dist.std * noise) * vae.config.scaling_factor


def check_finite(latents: torch.Tensor, paths: list[Path]) -> None:
    bad = [str(p) for p, lat in zip(paths, latents) if not torch.isfinite(lat).all()]
    if bad:
        raise TrainDataError(
            "The VAE gave NaN/inf latents for {files}. The image may be broken (re-save it), or the "
            "VAE overflows in half precision: train with mixed_precision 'no' or use a fixed VAE.", files=", ".join(bad)
        )


def cache_latents(data: TrainData, vae: torch.nn.Module, cache_dir: Path | None, seed: int,
                  on_progress: Callable[[int, int], None] | None = None) -> tuple[list[torch.Tensor], int]:
    """Encode every image once (in memory; with cache_dir also on disk, where a second run finds
    them). Returns the latents (on the CPU, by image index) and how many were encoded now."""
    latents: list[torch.Tensor | None] = [None] * len(data)
    todo: list[int] = []
    keys: list[str | None] = [None] * len(data)
    vae_id = vae_fingerprint(vae) if cache_dir is not None else ""
    for i, im in enumerate(data.images):
        if cache_dir is not None:
            keys[i] = cache_key(im.path, im.bucket, vae_id + "/crop-only" * im.crop_only)  # other pixels
            file = cache_dir / f"{keys[i]}.safetensors"
            if file.is_file():
                try:
                    latents[i] = safetensors_load(file.read_bytes())["latents"]
                    continue
                except Exception:  # an unreadable cache file is encoded again and replaced
                    pass
        todo.append(i)
    for n, i in enumerate(todo):
        im = data.images[i]
        gen = torch.Generator().manual_seed(int(hashlib.sha256(f"vae/{seed}/{im.path.name}".encode()).hexdigest()[:15], 16))
        lat = encode(vae, load_pixels(im.path, im.bucket, im.crop_only)[None], gen).float().cpu()
        check_finite(lat, [im.path])
        latents[i] = lat[0]
        if cache_dir is not None:
            atomic_write_bytes(cache_dir / f"{keys[i]}.safetensors", safetensors_save({"latents": lat[0].contiguous()}))
        if on_progress:
            on_progress(n + 1, len(todo))
    return latents, len(todo)  # type: ignore[return-value]


class StepLoader(torch.utils.data.Dataset):
    """One item = one optimizer step's micro-batches, with latents from the cache or pixels
    loaded from disk (in DataLoader workers when max_data_loader_n_workers > 0)."""

    def __init__(self, data: TrainData, epoch: int, steps: list[list[list[int]]], first_step: int,
                 latents: list[torch.Tensor] | None):
        self.data, self.epoch, self.steps, self.first, self.latents = data, epoch, steps, first_step, latents

    def __len__(self) -> int:
        return len(self.steps) - self.first

    def __getitem__(self, k: int) -> list[Batch]:
        step = self.first + k
        out = []
        for j, indices in enumerate(self.steps[step]):
            out.append(self.data.batch(indices, self.data.captions(indices, self.epoch, step, j), self.latents))
        return out


def epoch_loader(data: TrainData, epoch: int, first_step: int, latents: list[torch.Tensor] | None,
                 num_processes: int = 1, process_index: int = 0, workers: int = 0) -> Iterator[list[Batch]]:
    """The optimizer steps of one epoch from `first_step` on (0-based; a resumed run skips the
    steps it has done)."""
    steps = data.epoch_steps(epoch, num_processes, process_index)
    ds = StepLoader(data, epoch, steps, first_step, latents)
    if workers == 0 or latents is not None:
        return (ds[k] for k in range(len(ds)))
    return iter(torch.utils.data.DataLoader(ds, batch_size=None, shuffle=False, num_workers=workers,
                                            collate_fn=_as_is))


def _as_is(item: list[Batch]) -> list[Batch]:
    return item
