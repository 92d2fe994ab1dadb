"""`prepare`: from a folder of photos to the training folder Kohya reads.

For each photo: read it (images), find the person and nobody else (people), frame the head from
its landmarks (faces, crop), bring the square to the training resolution (upscale), caption it
(captions), and measure it (quality). Then, over the whole set: near-duplicates and identity
outliers (audit). Everything lands in the project (report.py describes the report):

    image/<repeats>_<trigger>[ <class>]/001.png + 001.txt, ...
    prepare-report.json          one entry per photo: accepted or rejected, why, and the measures
    prepare-contact-sheet.png    the crops with their numbers, the rejected photos greyed

Runs are incremental: a photo whose bytes and settings are those of the last run is taken from
the report as it was, so adding three photos to a set of fifty costs three photos. The report
is rewritten after every photo, so an interrupted run loses nothing it finished.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from PIL import Image

from .. import faces
from ..errors import FaceloraError, Templated, said_by
from ..messages import Message, said
from ..fileio import atomic_write_bytes, atomic_write_text
from ..project import CONTACT_SHEET, Project, ProjectError, init_project
from . import analysis, audit, captions, runkey, contact_sheet, crop, images, masks, people, pose_plot, quality, upscale
from .options import PrepareOptions
from .report import PrepareItem, PrepareReport

Progress = Callable[[int, int, str], None]


class PrepareError(FaceloraError):
    """The photos or the project cannot be prepared as asked; the message says what to do."""


def open_or_create(project: str | Path, trigger: str | None = None, class_word: str | None = None) -> Project:
    """The project at `project`; created with `trigger` (and `class_word`) when it is not one yet.
    A trigger or class word that contradicts an existing project is an error, not a silent choice."""
    if not Project.is_project(project):
        if not trigger:
            raise ProjectError(
                "'{project}' is not a facelora project yet. Give --trigger NAME (and --class-word) to create it, "
                "or run 'facelora init \"{project}\" --trigger NAME' first.", project=project
            )
        return init_project(project, trigger, class_word)
    p = Project.open(project)
    s = p.settings()
    if trigger and trigger != s.trigger:
        raise ProjectError("The project's trigger word is '{project_trigger}', not '{trigger}'; leave out --trigger "
                           "to use it.", project_trigger=s.trigger, trigger=trigger)
    if class_word and class_word != s.class_word:
        raise ProjectError("The project's class word is '{project_class}', not '{class_word}'; leave out --class-word "
                           "to use it.", project_class=s.class_word or "", class_word=class_word)
    return p


def prepare(photos: str | Path, project: Project | str | Path, options: PrepareOptions | None = None,
            progress: Progress | None = None, workers: int | None = None) -> PrepareReport:
    """Prepare every photo in `photos` (a folder, or one file) into `project`'s concept folder;
    returns (and writes) the report. `progress(done, total, message)` is called after each photo.
    The faces are found `workers` photos at a time (parallel.worker_count: by default the cores this process may use)."""
    options = options or PrepareOptions()
    project = project if isinstance(project, Project) else Project.open(project)
    photos = Path(photos).expanduser()
    if not photos.exists():
        raise PrepareError("Photo folder '{photos}' does not exist.", photos=photos)
    inputs = images.list_inputs(photos)
    if not inputs:
        raise PrepareError("'{photos}' holds no files; put the person's photos in it.", photos=photos)
    settings = project.settings()
    folder, _ = project.concept_dir()
    # Load the models first: a missing piece fails before any photo is touched.
    upscaler = upscale.get_upscaler(options.upscaler)
    tagger = captions.load_captioner(options.captioner, options.general_threshold, options.character_threshold)

    run = _Run(project, folder, settings.trigger, settings.class_word, options, upscaler, tagger)
    report = PrepareReport(photos=str(photos.resolve()), project=str(project.root), concept_dir=_rel(project, folder),
                           trigger=settings.trigger, class_word=settings.class_word, options=options)
    done: list[PrepareItem] = []
    for i, (path, ahead) in enumerate(zip(inputs, analysis.ahead(inputs, run.reusable(), workers)), start=1):
        run.ahead = ahead
        item = run.process(path)
        done.append(item)
        report.items = done + run.carried(done)
        _write_report(project, report)
        if progress:
            progress(i, len(inputs), f"{path.name}: {item.status}" + (f" ({item.reason})" if item.reason else ""))

    report.resolution_said = _train_at(project, options.resolution)
    report.resolution_note = report.resolution_said.text if report.resolution_said else None
    report.items = done + run.earlier(done)
    audit.audit(report.items, options)
    report.framings = report.count_framings()
    report.coverage = audit.coverage(report.items, plot=pose_plot.write(report.items, project))
    report.contact_sheet = CONTACT_SHEET
    contact_sheet.write([run.cell(it) for it in report.items], project.contact_sheet)
    report.complete = True
    _write_report(project, report)
    return report


def _train_at(project: Project, resolution: int) -> Message | None:
    """The project trains at the size it was prepared at (the tutorial: "my crops are 768, so I set
    the max resolution to 768"); says so when that changes the project's setting."""
    settings = project.settings()
    if settings.train.resolution_wh == (resolution, resolution):
        return None
    before = settings.train.resolution
    settings.train = settings.train.model_copy(update={"resolution": str(resolution)})
    project.save_settings(settings)
    return said("The project now trains at {resolution} (resolution in {file}, was {before}), the crops' size.",
                resolution=resolution, file=project.config_path.name, before=before)


def load_report(project: Project) -> PrepareReport | None:
    """The last run's report, or None when there is none (or it cannot be read)."""
    try:
        return PrepareReport.model_validate_json(project.prepare_report.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


class _Run:
    """The state of one prepare run: the models, the last run's results, the numbers in use."""

    def __init__(self, project: Project, folder: Path, trigger: str, class_word: str | None,
                 options: PrepareOptions, upscaler, tagger):
        self.project, self.folder = project, folder
        self.trigger, self.class_word = trigger, class_word
        self.options, self.upscaler, self.tagger, self.masks = options, upscaler, tagger, masks.HeadMasks(project.root, folder, options)
        self.settings_key = runkey.settings_key(options, trigger, class_word)
        previous = load_report(project)
        self.previous: dict[str, PrepareItem] = {}
        if previous is not None:
            for it in previous.items:
                if it.sha256 and (it.status == "accepted" or it.sha256 not in self.previous):
                    self.previous[it.sha256] = it
        self.numbers = {sha: it.number for sha, it in self.previous.items() if it.status == "accepted" and it.number}
        self.seen: dict[str, str] = {}  # sha256 -> source of this run's first photo with those bytes
        self.thumbs: dict[str, Image.Image] = {}
        self.ahead: analysis.Analysis | None = None  # the photo's faces, found by a worker

    def reusable(self) -> frozenset[str]:
        """The photos whose last result stands (the same bytes and settings): nothing to analyse."""
        return frozenset(sha for sha, it in self.previous.items() if it.key == self._key(sha))

    def _key(self, sha: str) -> str:
        return runkey.photo_key(sha, self.settings_key)

    def _analysed(self, sha: str) -> analysis.Analysis | None:
        return self.ahead if self.ahead and self.ahead.sha256 == sha else None

    # -- one photo --------------------------------------------------------------------------

    def process(self, path: Path) -> PrepareItem:
        source = str(path.resolve())
        try:
            data = images.read_bytes(path)
        except images.ImageRejected as e:
            return PrepareItem(source=source, status="rejected", reason=str(e), reason_said=said_by(e))
        sha = images.file_sha256(data)
        if sha in self.seen:
            item = PrepareItem(source=source, status="rejected", sha256=sha)
            item.reject(said("the same file as {name}", name=Path(self.seen[sha]).name))
            return item
        self.seen[sha] = source
        key = self._key(sha)
        reused = self._reuse(source, sha, key)
        if reused is not None:
            return reused
        item = PrepareItem(source=source, status="rejected", sha256=sha, key=key)
        try:
            self._make(path, data, item)
        except (images.ImageRejected, crop.CropRejected, _Rejected) as e:
            item.reject(said_by(e))
        except FaceloraError:
            raise
        except Exception as e:  # one strange photo must not end a run of a hundred
            item.reject(said("could not be processed ({kind}: {error})", kind=type(e).__name__, error=str(e)))
            item.key = None  # not remembered: the next run tries again
        if item.reason:  # rejected, perhaps after its crop was written: no crop of it may stay
            if item.output:
                self.masks.remove(self.project.root / item.output)
            item.status, item.number, item.output, item.caption_file = "rejected", None, None, None
            self._withdraw(sha)
        return item

    def _make(self, path: Path, data: bytes, item: PrepareItem) -> None:
        """Decode, find the face, frame, upscale, measure, write: the item is accepted at the end."""
        o = self.options
        rgb, _, notes = images.decode(data, path)
        for n in notes:
            item.warn(n)
        photo = Image.fromarray(rgb)  # one PIL copy of the photo, for the thumbnail and the cut
        self.thumbs[item.source] = contact_sheet.thumb(photo)
        face, others = self._subject(rgb, item)
        head = faces.head(rgb, face)
        audit.measure_pose(head.points, item)
        framed, note = crop.frame_said(head, rgb.shape[1], rgb.shape[0], o.framing, o.face_ratio, o.level)
        if note:
            item.warn(note)
        self._others(rgb, face, others, framed, item)
        self._framing(head, framed, item)
        out, item.upscaler = self.upscaler(framed.cut(photo), o.resolution)
        self._measure(rgb, face, framed, out, item)
        head_box = faces.Head(head.moved(framed.matrix).points * item.scale).head_box()  # in the output's pixels
        self._write(out, item, head_box)
        self._caption(path, lambda: out, item)

    def _subject(self, rgb: np.ndarray, item: PrepareItem) -> tuple[faces.Face, list[faces.Face]]:
        """The person's face (the largest) and the other faces; several people is a rejection."""
        found = ahead.found if (ahead := self._analysed(item.sha256)) else faces.detect(rgb)
        if not found:
            raise _Rejected("no face found")
        face, others = people.subject(found)
        item.faces = 1 + len(others)
        item.face_box = face.as_list()
        reason = people.second_face_reason(face, others, self.options.second_face_ratio)
        if reason:
            if not self.options.allow_multiple:
                raise _Rejected(reason)
            item.warn(said("{faces} faces; the largest is taken as the person", faces=item.faces))
        return face, others

    def _others(self, rgb: np.ndarray, face: faces.Face, others: list[faces.Face], framed: crop.Framed,
                item: PrepareItem) -> None:
        """Nobody else may be in the training image: it would be learned as part of the person."""
        inside = people.in_crop(rgb, face, others, framed)
        if not inside:
            return
        px = round(inside[0].height)
        if not self.options.allow_multiple:
            raise _Rejected("several people: another person's face ({px} px) is inside the crop (use "
                            "--allow-multiple to keep it)", px=px)
        item.warn(said("another person's face ({px} px) is inside the crop", px=px))

    def _framing(self, head: faces.Head, framed: crop.Framed, item: PrepareItem) -> None:
        """The crop box, its verdict and the warnings a person should read about it."""
        o = self.options
        item.crop_box, item.face_px = framed.box.as_list(), round(head.length)
        item.framing, item.whole_head, item.missing = framed.verdict(o.framing), framed.whole_head, list(framed.missing)
        item.roll, item.levelled = round(head.roll, 1), (round(framed.angle, 1) if framed.angle else None)
        if framed.angle:
            item.crop_corners = [[round(float(v), 1) for v in p] for p in framed.corners()]
        item.scale = round(o.resolution / framed.box.side, 4)
        if framed.missing:
            item.warn(said("tighter than the {framing} framing: the photo has no room for the {missing}; a photo "
                           "with more around the head teaches more", framing=o.framing, missing=" or ".join(framed.missing)))
        if framed.box.side < o.min_crop_px:
            item.warn(said("small face: the crop is {side} px, stretched {scale:.1f}x to {resolution}; too small to "
                           "upscale honestly, use a closer or larger photo", side=framed.box.side, scale=item.scale,
                           resolution=o.resolution))

    def _measure(self, rgb: np.ndarray, face: faces.Face, framed: crop.Framed, out: Image.Image,
                 item: PrepareItem) -> None:
        """Identity before and after upscaling (the drift), sharpness, and the crop's pHash."""
        o = self.options
        before = ahead.before if (ahead := self._analysed(item.sha256)) else faces.descriptor(rgb, face)  # same bytes: same face
        corners = np.array([(x, y, 1.0) for x in (face.left, face.right) for y in (face.top, face.bottom)])
        moved = corners @ framed.matrix.T * item.scale  # the face box's corners in the output
        (l, t), (r, b) = moved.min(axis=0), moved.max(axis=0)
        after = faces.descriptor(np.asarray(out.convert("RGB")), faces.Face(l, t, r, b, face.detector, face.score))
        item.drift = round(faces.distance(before, after), 4)
        if item.drift > o.drift_threshold:
            item.warn(said("the upscaler moved the face's identity by {drift:.2f} (over {most})", drift=item.drift,
                           most=o.drift_threshold))
        item.descriptor = [round(float(v), 6) for v in before]
        item.blur = round(quality.blur(rgb, face), 2)
        if item.blur < o.blur_threshold:
            item.warn(said("blurry face (sharpness {blur:.0f}, below {least:.0f})", blur=item.blur, least=o.blur_threshold))
        item.phash = str(quality.phash(out))

    def _write(self, out: Image.Image, item: PrepareItem, head_box=None) -> None:
        """NNN.png in the concept folder (masks.HeadMasks puts its head mask): the photo's number from the last run, else the next free one."""
        number = self.numbers.get(item.sha256) or self._next_number()
        self.numbers[item.sha256] = number
        png = self.folder / f"{number:03d}.png"
        buf = io.BytesIO()
        self.masks.photo(out, head_box, png).save(buf, "PNG", compress_level=1)  # level 6 takes 4x as long for 10% less disk
        atomic_write_bytes(png, buf.getvalue())
        item.status, item.number, item.output = "accepted", number, _rel(self.project, png)
        self.thumbs[item.source] = contact_sheet.thumb(out)

    def _caption(self, path: Path, image: Callable[[], Image.Image], item: PrepareItem) -> None:
        """The existing caption file, else one beside the photo, else a new one (template or tagger)."""
        o = self.options
        txt = self.folder / f"{item.number:03d}.txt"
        item.caption_file = _rel(self.project, txt)
        if txt.is_file() and not o.overwrite_captions:
            item.caption, item.caption_from = " ".join(txt.read_text(encoding="utf-8", errors="replace").split()), "existing file"
            return
        beside = None if o.overwrite_captions else images.side_caption(path)
        if beside:
            item.caption, item.caption_from = beside, "beside photo"
        else:
            tags = list(o.tags) + (self.tagger(image()) if self.tagger else [])
            item.caption = captions.compose(self.trigger, self.class_word, tags, o.keep_identity_tags)
            item.caption_from = "tagger" if self.tagger else "template"
        atomic_write_text(txt, item.caption + "\n")

    # -- incremental runs -----------------------------------------------------------------------

    def _reuse(self, source: str, sha: str, key: str) -> PrepareItem | None:
        prev = self.previous.get(sha)
        if prev is None or prev.key != key:
            return None
        item = prev.model_copy(deep=True)
        item.source, item.reused, item.earlier_run = source, True, False
        audit.clear(item)
        if item.status == "rejected":
            return item
        png = self.folder / f"{item.number:03d}.png"
        if not png.is_file() or self.masks.missing(png):
            return None  # the output (or its mask) was deleted or the folder renamed: make it again
        item.output = _rel(self.project, png)
        self._caption(Path(source), lambda: _open_rgb(png), item)
        return item

    def _withdraw(self, sha: str) -> None:
        """A photo accepted last time and rejected now: its crop must not stay in the training set.
        Its caption goes too, unless the user edited it."""
        prev = self.previous.get(sha)
        number = self.numbers.pop(sha, None)
        if prev is None or prev.status != "accepted" or number is None:
            return
        self.masks.remove(self.folder / f"{number:03d}.png")
        txt = self.folder / f"{number:03d}.txt"
        if txt.is_file() and " ".join(txt.read_text(encoding="utf-8", errors="replace").split()) == prev.caption:
            txt.unlink()

    def _next_number(self) -> int:
        used = set(self.numbers.values())
        for p in self.folder.iterdir():
            if p.stem.isdigit():
                used.add(int(p.stem))
        return max(used, default=0) + 1

    def carried(self, done: list[PrepareItem]) -> list[PrepareItem]:
        """While running: the last run's entries not yet reached, so an interrupted run keeps them."""
        reached = {it.sha256 for it in done if it.sha256}
        return [it for sha, it in self.previous.items() if sha not in reached]

    def earlier(self, done: list[PrepareItem]) -> list[PrepareItem]:
        """Crops from an earlier run's photos that are not among this run's inputs but are still in
        the concept folder (a set put together from several folders): they stay, and are audited."""
        reached = {it.sha256 for it in done if it.sha256}
        out = []
        for sha, it in self.previous.items():
            if sha in reached or it.status != "accepted" or not it.number:
                continue
            png = self.folder / f"{it.number:03d}.png"
            if png.is_file():
                kept = it.model_copy(deep=True)
                kept.earlier_run, kept.output = True, _rel(self.project, png)
                audit.clear(kept)
                out.append(kept)
        return out

    # -- contact sheet ----------------------------------------------------------------------------

    def cell(self, item: PrepareItem) -> contact_sheet.Cell:
        if item.status == "accepted":
            image = self.thumbs.get(item.source) if not item.reused else None
            if image is None:
                image = contact_sheet.open_thumb(self.project.root / item.output)
            note = "; ".join([Path(item.source).name, item.framing or "", *item.warnings])
            return contact_sheet.Cell(f"{item.number:03d}", image, True, note)
        image = self.thumbs.get(item.source)
        if image is None and item.faces is not None:  # decoded fine last time: show it again
            image = contact_sheet.open_thumb(Path(item.source))
        return contact_sheet.Cell("rejected", image, False, f"{Path(item.source).name}: {item.reason}")


class _Rejected(Templated):
    """A photo rejected inside _make; its template and values become the item's reason."""


def _rel(project: Project, path: Path) -> str:
    return Path(path).resolve().relative_to(project.root).as_posix()


def _open_rgb(path: Path) -> Image.Image:
    with Image.open(path) as im:
        return im.convert("RGB")


def _write_report(project: Project, report: PrepareReport) -> None:
    report.created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    atomic_write_text(project.prepare_report, report.model_dump_json(indent=2) + "\n")  # 11x faster than json.dumps
