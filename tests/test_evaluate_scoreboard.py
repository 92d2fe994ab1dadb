"""The scoreboard on real photos (scikit-image's astronaut, matplotlib's grace_hopper): other
framings are alike and not copies, near copies of one photo are "a copy of photo X", other
people in the bleed prompts are no bleed and the person there is; the pick never names a file
with a warning when a clean one exists; unreadable files are skipped with their reason."""

from __future__ import annotations

import io

import pytest
from PIL import Image, ImageEnhance, ImageOps

from facelora import demo_photos
from facelora.evaluate.board import GroupKey, GroupScore, pick_best, score_images
from facelora.evaluate.likeness import LikenessError, build_reference
from facelora.evaluate.scoring import ScoreOptions, score_folder

# Distinct photos of the person: none passes for a copy of another.
REFERENCE = ("original", "closer", "tilted-left", "closer-mirrored")


def _jpeg(im: Image.Image, quality: int) -> Image.Image:
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


def other_framings(base: Image.Image) -> dict[str, Image.Image]:
    """The person as a LoRA should draw her: tilted, closer, mirrored, smaller in a wider frame."""
    canvas = Image.new("RGB", (512, 512), (90, 120, 150))
    canvas.paste(base.resize((307, 307)), (150, 180))
    return {
        "rotated-15": base.rotate(15, resample=Image.Resampling.BICUBIC, center=(220, 125)),
        "zoom-2": demo_photos._zoom(base, 2.0, dx=-20, dy=10),
        "mirrored": ImageOps.mirror(base),
        "small-in-frame": canvas,
        "tight-crop": base.crop((100, 0, 356, 256)).resize((384, 384)),
    }


def near_copies(photo: Image.Image) -> dict[str, Image.Image]:
    """What a memorising LoRA makes of one photo: a slight crop, another size, other colours."""
    return {
        "crop": photo.crop((20, 15, 500, 495)),
        "resized": photo.resize((384, 384)),
        "brighter": ImageEnhance.Brightness(photo).enhance(1.1),
        "jpeg": _jpeg(photo.resize((448, 448)), 60),
        "warmer": Image.merge("RGB", [c.point(lambda v, k=k: min(255, int(v * k)))
                                      for c, k in zip(photo.split(), (1.06, 1.0, 0.95))]),
    }


@pytest.fixture(scope="module")
def photos():
    return dict(demo_photos.variants())


@pytest.fixture(scope="module")
def reference(tmp_path_factory, photos):
    folder = tmp_path_factory.mktemp("ref")
    for name in REFERENCE:
        photos[name].save(folder / f"{name}.png")
    return build_reference(sorted(folder.glob("*.png")))


def _items(folder, images: dict[str, Image.Image], key: GroupKey, kind: str = "likeness"):
    out = []
    for name, im in images.items():
        path = folder / f"{key.file}-{kind}-{name}.png"
        im.save(path)
        out.append((path, key, kind))
    return out


def test_other_framings_are_alike_and_near_copies_are_copies_of_that_photo(tmp_path, reference, photos):
    fresh, copied = GroupKey("fresh", 1.0, 1, "fresh @ 1"), GroupKey("copier", 1.0, 2, "copier @ 1")
    items = _items(tmp_path, other_framings(photos["original"]), fresh)
    items += _items(tmp_path, near_copies(photos["original"]), copied)
    items += _items(tmp_path, {"closer-crop": photos["closer"].crop((10, 10, 500, 500)).resize((512, 512))}, copied)
    report = score_images(items, reference)
    by = {s.path.rsplit("/", 1)[-1]: s for s in report.images}
    for name in other_framings(photos["original"]):
        s = by[f"fresh-likeness-{name}.png"]
        assert s.face and s.match and s.copy_of is None, (name, s.distance, s.copy)
    for name in near_copies(photos["original"]):
        s = by[f"copier-likeness-{name}.png"]
        assert s.copy_of and s.copy_of.endswith("original.png"), (name, s.copy_of)
        assert s.copy["phash_bits"] <= 10 and s.copy["identity"] < 0.2
    assert by["copier-likeness-closer-crop.png"].copy_of.endswith("closer.png")
    groups = {g.file: g for g in report.groups}
    assert groups["fresh"].copies == 0 and groups["fresh"].match_rate == 1.0 and groups["fresh"].clean
    assert groups["copier"].copies == 6 and groups["copier"].copy_of == ["closer.png", "original.png"]
    assert "copy a training photo" in groups["copier"].warnings[0] and not groups["copier"].clean
    # the pick skips the copying file, although it matches as well as the fresh one
    assert report.best.file == "fresh"


def test_bleed_is_the_person_on_other_peoples_prompts(tmp_path, reference, photos, grace_hopper):
    others = {"grace": Image.fromarray(grace_hopper), "grace-small": Image.fromarray(grace_hopper).resize((300, 384))}
    person = other_framings(photos["original"])
    clean, leaky = GroupKey("clean", 0.8, 1, "clean @ 0.8"), GroupKey("leaky", 0.8, 2, "leaky @ 0.8")
    items = _items(tmp_path, dict(list(person.items())[:2]), clean) + _items(tmp_path, others, clean, "bleed")
    items += _items(tmp_path, dict(list(person.items())[:2]), leaky)
    items += _items(tmp_path, dict(list(person.items())[2:4]), leaky, "bleed")
    items += _items(tmp_path, {"profile": person["rotated-15"]}, clean, "flexibility")
    report = score_images(items, reference)
    g = {x.file: x for x in report.groups}
    assert g["clean"].bleed_faces == 2 and g["clean"].bleed == 0.0 and g["clean"].clean
    assert g["clean"].flex_images == 1 and g["clean"].flexibility == 1.0 and g["clean"].images == 2
    assert g["leaky"].bleed == 1.0 and any("on everyone" in w for w in g["leaky"].warnings)
    assert report.best.file == "clean"


def _g(file, match, warnings=(), weight=1.0, order=1):
    return GroupScore(f"{file} @ {weight}", file, weight, order, 4, 4, 1.0, 0.4, match, 0.3,
                      warnings=list(warnings))


def test_pick_skips_warned_files_and_says_when_none_is_clean(tmp_path, reference, photos):
    groups = [_g("e1", 0.5), _g("e2", 1.0, ["e2: copies"], order=2), _g("e3", 0.75, ["e3: bleed"], order=3)]
    assert pick_best(groups).file == "e1"
    assert pick_best(groups[1:]) is None
    assert pick_best(groups[1:], clean_only=False).file == "e2"
    # the verdict of a report whose every file copies a photo
    copier = GroupKey("copier", 1.0, 1, "copier @ 1")
    report = score_images(_items(tmp_path, near_copies(photos["original"]), copier), reference)
    assert report.best is None and report.verdict.startswith("No clean file")


def _truncated_jpeg(path, im):
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=90)
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 3])


def test_broken_files_are_skipped_with_a_reason(tmp_path, photos, grace_hopper):
    ref, imgs = tmp_path / "ref", tmp_path / "imgs"
    ref.mkdir(), imgs.mkdir()
    for name in REFERENCE[:3]:
        photos[name].save(ref / f"{name}.png")
    _truncated_jpeg(ref / "cut.jpg", photos["closer-mirrored"])
    (ref / "empty.png").write_bytes(b"")
    (ref / "notes.jpg").write_text("not an image", encoding="utf-8")
    Image.fromarray(grace_hopper).save(imgs / "grace.png")
    other_framings(photos["original"])["mirrored"].save(imgs / "mirrored.png")
    _truncated_jpeg(imgs / "cut.jpg", photos["original"])

    report = score_folder(ref, imgs, ScoreOptions())
    lines = {s.line() for s in report.skipped}
    assert any(line.startswith("skipped cut.jpg: broken image") for line in lines), lines
    assert "skipped empty.png: empty file" in lines and "skipped notes.jpg: not an image PIL can read" in lines
    assert sum(s.path.endswith("cut.jpg") for s in report.skipped) == 2  # one in each folder
    assert len(report.images) == 2 and report.baseline["faces"] == 3
    assert len(report.to_dict()["skipped"]) == 4

    for p in ref.glob("*.png"):
        p.unlink()
    with pytest.raises(LikenessError, match="None of the 2 reference files is a readable image"):
        score_folder(ref, imgs, ScoreOptions())


def test_samples_scored_while_training(tmp_path, reference, photos, grace_hopper):
    from facelora.evaluate.live import describe, score_samples

    person = other_framings(photos["original"])
    samples = []
    for i, (prompt, im) in enumerate((("ohwx woman, portrait", person["zoom-2"]), ("ohwx, in a park", person["mirrored"]),
                                      ("photo of a woman", Image.fromarray(grace_hopper)),
                                      ("two people at a table", person["small-in-frame"]))):
        im.save(tmp_path / f"ohwx_e000001_{i:02d}_1.png")
        samples.append((tmp_path / f"ohwx_e000001_{i:02d}_1.png", prompt))
    scores = score_samples(samples, reference, "ohwx")
    assert scores["likeness/detection_rate"] == 1.0 and scores["likeness/match_rate"] == 1.0
    assert scores["likeness/mean_distance"] < 0.45 and scores["likeness/copies"] == 0
    assert scores["likeness/bleed"] == 0.5  # Grace Hopper is not the person; the astronaut in the wide shot is
    assert describe(scores).startswith("likeness: faces 100%, match 100%, distance 0.") and "bleed 50%" in describe(scores)
