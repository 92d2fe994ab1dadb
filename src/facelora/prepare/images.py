"""Reading a user's photo: whatever Pillow can decode among the usual photo formats, turned into
an upright 8-bit RGB array. Anything that is not a usable photo is rejected with a reason a
person can act on, never a traceback. The file itself is only ever read.
"""

from __future__ import annotations

import hashlib
import io
import struct
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import FaceloraError
from ..messages import Message, said

# Formats taken as photos. HEIF needs the pillow-heif plugin; Pillow 11.3+ reads AVIF itself.
PHOTO_FORMATS = ("JPEG", "MPO", "PNG", "WEBP", "BMP", "GIF", "TIFF", "HEIF", "AVIF")
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff", ".heic", ".heif", ".avif")
MAX_FILE_BYTES = 300 * 2**20  # a 300 MB photo is a mistake (a RAW dump, a video renamed)
MAX_PIXELS = 150_000_000  # above a 108-MP phone photo; more is a corrupt or hostile header
ORIENTATION_TAG = 0x0112
MIN_SIDE = 64  # nothing smaller can hold a face worth training on


class ImageRejected(FaceloraError):
    """A file that cannot be used as a photo; str() is the reason shown to the user (a template with
    its values, so the GUI shows it in its language)."""


@dataclass
class Photo:
    """An input photo, decoded: `rgb` is upright (EXIF orientation applied) uint8 (H, W, 3)."""

    path: Path
    sha256: str
    rgb: np.ndarray
    format: str
    notes: list[str] = field(default_factory=list)

    @property
    def size(self) -> tuple[int, int]:
        return self.rgb.shape[1], self.rgb.shape[0]


def _register_plugins() -> None:
    """HEIC/HEIF (iPhone photos) are readable when the pillow-heif plugin is installed."""
    try:
        from pillow_heif import register_heif_opener
    except ImportError:
        return
    register_heif_opener()


_register_plugins()


def _readable_formats() -> list[str]:
    """The photo formats this Pillow (with its plugins) can open."""
    Image.init()
    return [f for f in PHOTO_FORMATS if f in Image.OPEN]


def file_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_bytes(path: Path) -> bytes:
    """The file's bytes, after the checks that need no decoding."""
    try:
        size = path.stat().st_size
    except OSError as e:
        raise ImageRejected("cannot read the file ({why})", why=e.strerror or e) from None
    if size == 0:
        raise ImageRejected("empty file (0 bytes)")
    if size > MAX_FILE_BYTES:
        raise ImageRejected("file too large ({mb:.0f} MB; photos over {limit} MB are refused)", mb=size / 2**20,
                            limit=MAX_FILE_BYTES // 2**20)
    try:
        return path.read_bytes()
    except OSError as e:
        raise ImageRejected("cannot read the file ({why})", why=e.strerror or e) from None


def _not_an_image(path: Path) -> ImageRejected:
    if path.suffix.lower() in (".heic", ".heif"):
        return ImageRejected("HEIC/HEIF photo, but the pillow-heif plugin is not installed: pip install pillow-heif")
    return ImageRejected(
        "not an image (facelora reads jpg, png, webp, bmp, gif, tiff, avif; heic with pillow-heif)"
    )


def _to_rgb(im: Image.Image) -> tuple[Image.Image, list[Message]]:
    """Any mode to 8-bit RGB: CMYK, 16-bit and float greys scaled (not clipped), palette and
    alpha images flattened onto white (transparent areas become white, not black)."""
    notes: list[Message] = []
    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        a = np.asarray(im, dtype=np.float64)
        if im.mode.startswith("I;16"):
            top = 65535.0
        elif im.mode == "I":
            top = 65535.0 if a.max(initial=0) > 255 else 255.0
        else:
            top = 1.0 if a.max(initial=0) <= 1.0 else float(a.max())
        grey = np.clip(np.round(a / top * 255), 0, 255).astype(np.uint8)
        return Image.fromarray(grey).convert("RGB"), notes
    if im.info.get("icc_profile") and im.mode in ("RGB", "CMYK"):
        im, note = _to_srgb(im)
        notes += [note] if note else []
    if im.mode == "P":
        im = im.convert("RGBA") if "transparency" in im.info else im.convert("RGB")
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = im.convert("RGBA")
        if rgba.getchannel("A").getextrema()[0] < 255:
            notes.append(said("transparent areas were filled with white"))
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB"), notes
    return (im if im.mode == "RGB" else im.convert("RGB")), notes  # decode() copies it into its array


def _to_srgb(im: Image.Image) -> tuple[Image.Image, Message | None]:
    """Colours as the embedded ICC profile means them (a phone's Display P3, a print CMYK), in sRGB,
    the space the base model was trained on."""
    from PIL import ImageCms

    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(im.info["icc_profile"]))
        return ImageCms.profileToProfile(im, source, ImageCms.createProfile("sRGB"), outputMode="RGB"), None
    except (ImageCms.PyCMSError, OSError, ValueError):
        return im, said("its colour profile could not be read; colours taken as sRGB")


def decode(data: bytes, path: Path) -> tuple[np.ndarray, str, list[Message]]:
    """Decode `data` (the bytes of `path`): upright uint8 RGB, its format, notes for the report."""
    notes: list[Message] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # MAX_PIXELS decides below
        try:
            im = Image.open(io.BytesIO(data), formats=_readable_formats())
        except UnidentifiedImageError:
            raise _not_an_image(path) from None
        except Image.DecompressionBombError:
            raise ImageRejected("absurdly large image (its header claims more pixels than any photo has)") from None
        except (OSError, SyntaxError, ValueError, EOFError) as e:
            raise ImageRejected("corrupt image header ({why})", why=e) from None
        with im:
            w, h = im.size
            if w * h > MAX_PIXELS or max(w, h) > 50_000:
                raise ImageRejected("absurdly large image ({w} x {h} pixels; at most {limit} megapixels)", w=w, h=h,
                                    limit=MAX_PIXELS // 1_000_000)
            if min(w, h) < MIN_SIDE:
                raise ImageRejected("image too small ({w} x {h} pixels; at least {least} on each side)", w=w, h=h,
                                    least=MIN_SIDE)
            frames = getattr(im, "n_frames", 1)
            if getattr(im, "is_animated", False) and frames > 1:
                im.seek(0)
                notes.append(said("animated image: the first of its {frames} frames is used", frames=frames))
            try:
                im.load()
                orientation = im.getexif().get(ORIENTATION_TAG, 1)
                # exif_transpose copies even an upright photo: only a turned one needs it
                upright = ImageOps.exif_transpose(im) if orientation not in (1, None) else im
            except Image.DecompressionBombError:
                raise ImageRejected("absurdly large image (more pixels than any photo has)") from None
            except (OSError, SyntaxError, ValueError, EOFError, struct.error) as e:
                text = str(e)
                if "truncated" in text or isinstance(e, EOFError):
                    raise ImageRejected("truncated file: it ends before the image does ({why})", why=text) from None
                raise ImageRejected("corrupt image data ({why})", why=text or type(e).__name__) from None
            fmt = im.format or "unknown"
            rgb, more = _to_rgb(upright)
            array = np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8))  # before the file closes: `rgb` may be `im`
        if orientation not in (1, None):
            notes.append(said("turned upright as its EXIF orientation ({orientation}) says", orientation=orientation))
    return array, fmt, notes + more


def load(path: Path) -> Photo:
    """Read and decode one photo; raises ImageRejected with the reason when it is not usable."""
    data = read_bytes(path)
    rgb, fmt, notes = decode(data, path)
    return Photo(path, file_sha256(data), rgb, fmt, [n.text for n in notes])


def list_inputs(photos: Path) -> list[Path]:
    """The files a prepare run looks at: every visible file in the folder (or the one file given),
    sorted by name. Caption files beside a photo of the same stem are not inputs; any other file
    is, so a stray document is reported rather than silently passed over."""
    photos = Path(photos).expanduser()
    if photos.is_file():
        return [photos]
    files = sorted((p for p in photos.iterdir() if p.is_file() and not p.name.startswith(".")), key=lambda p: p.name)
    stems = {p.stem for p in files if p.suffix.lower() in PHOTO_SUFFIXES}
    return [p for p in files if not (p.suffix.lower() == ".txt" and p.stem in stems)]


def side_caption(path: Path) -> str | None:
    """A caption the user already wrote beside the photo (`photo.txt` for `photo.jpg`)."""
    cap = path.with_suffix(".txt")
    if cap == path or not cap.is_file():
        return None
    text = " ".join(cap.read_text(encoding="utf-8", errors="replace").split())
    return text or None
