"""The Chinese interface: every word the GUI shows has a zh-CN translation. The test walks every
component the built page holds (labels, help lines, placeholders, buttons, Markdown), every
parameter's plain label and help (TrainConfig's, prepare's and the grid's fields), and every
fixed message in gui/'s source (T(), tr() and note() literals, table row names, the state words),
and the core's messages the pages show: every raise outside i18n.CLI_ONLY is a template with a
zh-CN template, and every FaceloraError class has its kind in Chinese for the rest."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytest.importorskip("gradio")

from facelora.gui import i18n  # noqa: E402
from i18n_scan import _is_message, _literals, _message_makers  # noqa: E402

GUI = Path(i18n.__file__).parent
HINT = "add them to src/facelora/gui/zh_cn.py (English text -> Chinese; keep Kohya names as they are)"


def _row_name(node: ast.AST) -> list[str]:
    """The name of a table row: ("name", value)."""
    if isinstance(node, ast.Tuple) and len(node.elts) == 2 and not isinstance(node.elts[1], ast.Constant):
        return _literals(node.elts[0])
    return []


def _source_strings() -> list[str]:
    """Literals the GUI shows: the first arguments of T/tr/note and the names of table rows (in a
    list of rows, or appended to one)."""
    found: list[str] = []
    for path in sorted(GUI.rglob("*.py")):
        if path.name.startswith("zh_cn") or path.name in ("i18n.py", "fields.py"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and node.args:
                if getattr(node.func, "id", getattr(node.func, "attr", None)) in ("T", "tr", "note", "Message", "said"):
                    found += _literals(node.args[0])
                elif getattr(node.func, "attr", None) == "append":
                    found += _row_name(node.args[0])
            elif isinstance(node, ast.List):
                for element in node.elts:
                    found += _row_name(element)
    return found


SRC = GUI.parent
ERRORS_HINT = ("write the message as a template with its values, Error(\"{path} is not a folder.\", path=p), and add "
               "its Chinese to src/facelora/gui/zh_cn_errors.py")


def _raised(node: ast.Raise) -> ast.Call | None:
    """The call a `raise X(...)` makes (`raise X(...) from None` included), when X is a class."""
    call = node.exc
    if isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id[:1].isupper():
        return call
    return None


WHAT_AT = {"inside": 2, "check_name": 1, "check_folder_text": 1}  # paths.py's functions: where `what` is


def _what(node: ast.AST) -> list[str]:
    """The words a call to paths.py names its path with (`what`), which its messages show."""
    if not (isinstance(node, ast.Call) and getattr(node.func, "id", None) in WHAT_AT):
        return []
    at = WHAT_AT[node.func.id]
    given = [k.value for k in node.keywords if k.arg == "what"] or node.args[at:at + 1]
    return [t for g in given for t in _literals(g) if not t.isidentifier()]  # a Kohya name stays as it is


def _core_messages() -> tuple[list[str], list[str]]:
    """The messages raised outside i18n.CLI_ONLY (anything the GUI's pages call): their templates,
    and the raise sites whose message is not a template (an f-string, a sum, a call), which the
    GUI could not translate."""
    templates, untranslatable = [], []
    files = sorted(f for f in SRC.rglob("*.py") if not f.relative_to(SRC).as_posix().startswith(i18n.CLI_ONLY))
    makers = _message_makers()
    for path in files:
        if path.name.startswith("zh_cn") or path.name == "i18n.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            templates += _what(node)
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) in ("said", "Message") and node.args:
                templates += _literals(node.args[0])
            call = _raised(node) if isinstance(node, ast.Raise) else None
            if call is None or not call.args:
                continue
            found = _literals(call.args[0])
            if found:
                templates += found
            elif not _is_message(call.args[0], tree, makers):
                untranslatable.append(f"{path.relative_to(SRC)}:{node.lineno}: {ast.unparse(call)[:100]}")
    return templates, untranslatable


def _error_classes() -> list[str]:
    """Every FaceloraError class in the source (by name: a class whose bases include one)."""
    classes: dict[str, list[str]] = {}
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                classes[node.name] = [getattr(b, "id", getattr(b, "attr", "")) for b in node.bases]
    errors = {"FaceloraError"}
    while grown := {c for c, bases in classes.items() if c not in errors and errors & set(bases)}:
        errors |= grown
    return sorted(errors)


def _word_tables() -> list[str]:
    from facelora.gui.pages import evaluate, params, photos, train
    from facelora.gui.workspace import RULE

    words = [RULE, *params.PRESET_TITLES.values(), *train.STATE_LABELS.values(), *evaluate.SCORE_COLUMNS,
             *photos.REPORT_COLUMNS, *photos.CAPTION_COLUMNS]
    return words + [t for kinds in evaluate.JOB_TEXTS.values() for t in kinds.values()]


def test_every_component_of_the_page_is_translated(tmp_path: Path):
    from facelora.gui.app import build
    from facelora.gui.language import english_words
    from facelora.gui.workspace import Workspace

    demo = build(Workspace.of(tmp_path))
    texts = [t for _, words in english_words(demo) for t in words.values()]
    assert len(texts) > 200  # every tab's widgets were walked
    left = i18n.missing(texts)
    assert not left, f"{len(left)} strings of the page have no zh-CN translation; {HINT}:\n" + "\n".join(left)


def test_every_parameter_label_and_help_is_translated():
    from facelora.gui.fields import field_specs, grid_specs, prepare_specs

    specs = [*field_specs(), *prepare_specs(), *grid_specs()]
    texts = [s.help for s in specs] + [i18n.label_of(s.name) for s in specs]
    assert all(s.name in i18n.PLAIN for s in specs), [s.name for s in specs if s.name not in i18n.PLAIN]
    left = i18n.missing(texts)
    assert not left, f"{len(left)} parameter words have no zh-CN translation; {HINT}:\n" + "\n".join(left)


def test_every_message_of_the_gui_is_translated():
    texts = _source_strings() + _word_tables()
    assert len(texts) > 50
    left = i18n.missing(texts)
    assert not left, f"{len(left)} messages have no zh-CN translation; {HINT}:\n" + "\n".join(left)


def test_translations_keep_their_placeholders_and_kohya_names():
    for english, chinese in i18n.CATALOGUES["zh-CN"].items():
        wanted = sorted(part.split("}")[0] for part in english.split("{")[1:])
        got = sorted(part.split("}")[0] for part in chinese.split("{")[1:])
        assert wanted == got, (english, chinese)
    assert i18n.tr("Network Rank (Dimension)  network_dim", "zh-CN").endswith("  network_dim")
    assert i18n.tr("Network Rank (Dimension)  network_dim", "zh-CN") != "Network Rank (Dimension)  network_dim"
    assert i18n.T("Saved {n} caption(s).", "zh-CN", n=2).count("2") == 1


def test_every_core_message_the_gui_shows_has_a_chinese_template():
    templates, untranslatable = _core_messages()
    assert len(templates) > 40  # paths, projects, locks, config checks, prepare and the GUI's own
    assert not untranslatable, f"{len(untranslatable)} messages cannot be translated; {ERRORS_HINT}:\n" + \
        "\n".join(untranslatable)
    left = i18n.missing(templates)
    assert not left, f"{len(left)} core messages have no zh-CN template; {ERRORS_HINT}:\n" + "\n".join(left)


# events.py's kinds that carry a message (Likeness's the page writes from its numbers, in its own words)
MESSAGE_EVENTS = ("End", "Skipped", "Error")
RUN_ERRORS = ("TrainingDiverged",)  # raised inside the run: the Train page shows it as the Error event
RUN_HINT = ("write the message as messages.said(\"Interrupted at step {step}.\", step=n) and add its Chinese to "
            "src/facelora/gui/zh_cn_train.py")


def _run_messages() -> tuple[list[str], list[str]]:
    """The messages train/ and prepare/ write into events.jsonl (messages.said / Message calls, and
    the errors raised inside the run): their templates, and the places that write a message the
    GUI could not translate (not a literal template, or an event given its message text)."""
    templates, untranslatable = [], []
    files = sorted({f for src in i18n.RUN_SOURCES for f in (SRC / src).rglob("*.py")})
    makers = _message_makers()
    for path in files:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Raise) and (call := _raised(node)) and call.func.id in RUN_ERRORS:
                node = call
            elif not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "id", getattr(node.func, "attr", None))
            where = f"{path.relative_to(SRC)}:{node.lineno}: {ast.unparse(node)[:100]}"
            if name in MESSAGE_EVENTS and any(k.arg == "message" for k in node.keywords):
                untranslatable.append(where)  # its text alone: messages.said(...).keys() gives the template too
            elif name in ("said", "Message", *RUN_ERRORS) and node.args:
                found = _literals(node.args[0])
                templates += found
                if not found and not (name in RUN_ERRORS and _is_message(node.args[0], tree, makers)):
                    untranslatable.append(where)
    return templates, untranslatable


def test_every_message_of_the_training_run_has_a_chinese_template():
    templates, untranslatable = _run_messages()
    assert {"Interrupted at step {step}. Saved {file}.", "Interrupted at step {step}."} <= set(templates)
    assert len(templates) >= 7  # the ends of a run, a skipped step, the diverged error
    assert not untranslatable, f"{len(untranslatable)} run messages cannot be translated; {RUN_HINT}:\n" + \
        "\n".join(untranslatable)
    left = i18n.missing(templates)
    assert not left, f"{len(left)} run messages have no zh-CN template; {RUN_HINT}:\n" + "\n".join(left)


def test_run_messages_show_in_the_page_language_and_old_lines_as_written():
    from facelora import events as ev
    from facelora.messages import said

    line = ev.End(step=40, interrupted=True, **said("Interrupted at step {step}. Saved {file}.", step=40,
                                                       file="ohwx-step00000040.safetensors").keys())
    back = ev.parse(ev.End(**{k: v for k, v in line.to_dict().items() if k != "event"}).to_dict())
    said = ev.message_of(back)
    assert back.message == said.text == "Interrupted at step 40. Saved ohwx-step00000040.safetensors."
    assert i18n.said_in(said, "en") == said.text
    assert i18n.said_in(said, "zh-CN") == "已在第 40 步中断。已保存 ohwx-step00000040.safetensors。"
    old = ev.parse({"event": "end", "step": 12, "interrupted": True, "message": "Interrupted at step 12."})
    assert i18n.said_in(ev.message_of(old), "zh-CN") == "Interrupted at step 12."  # no template: its text
    unfilled = ev.parse({"event": "end", "message": "As written.", "template": "At {step}.", "values": {}})
    assert i18n.said_in(ev.message_of(unfilled), "zh-CN") == "As written."


def test_every_error_class_has_its_kind_in_chinese():
    classes = _error_classes()
    assert {"PathError", "ConfigError", "ProjectError", "JobError", "TrainDataError"} <= set(classes)
    unnamed = [c for c in classes if c not in i18n.ERROR_KINDS]
    assert not unnamed, f"add these error classes' kinds to ERROR_KINDS in src/facelora/gui/i18n.py: {unnamed}"
    left = i18n.missing(list(i18n.ERROR_KINDS.values()))
    assert not left, f"{len(left)} error kinds have no zh-CN words; {HINT}:\n" + "\n".join(left)


def test_core_errors_show_in_chinese_with_their_values():
    from facelora.config import TrainConfig, apply
    from facelora.errors import ConfigError, FaceloraError
    from facelora.paths import PathError, inside

    with pytest.raises(PathError) as refused:
        inside("/srv/workspace", "/etc", "The project folder")
    english = str(refused.value)
    assert i18n.error_message(refused.value, "en") == english
    chinese = i18n.error_message(refused.value, "zh-CN")
    assert "/etc" in chinese and "/srv/workspace" in chinese and "项目文件夹" in chinese
    assert not any(word in chinese for word in ("lies outside", "The project folder")), chinese
    with pytest.raises(ConfigError) as bad:
        apply(TrainConfig(), {"network_dim": "many"})
    shown = i18n.error_message(bad.value, "zh-CN")
    assert shown.startswith("参数无效") and "network_dim" in shown and "many" in shown  # pydantic's detail kept
    # a message with no template of its own: its kind in Chinese, then the English kept as it is
    odd = ConfigError("A message written without a template.")
    assert i18n.error_message(odd, "zh-CN") == "参数无效：A message written without a template."
    assert i18n.error_message(FaceloraError("{braces} kept"), "zh-CN").endswith("{braces} kept")
    assert i18n.error_message(ValueError("The training folder holds no images."), "zh-CN") == "训练文件夹里没有图片。"


def test_a_refused_click_shows_the_core_message_in_the_gui_language():
    from facelora.gui import common
    from facelora.gui.workspace import Workspace

    ws = Workspace.of("/srv/workspace")
    shown = common.friendly()(lambda: ws.open("/etc"))
    assert "lies outside the folders this GUI may use" in shown()
    i18n.set_language("zh-CN")
    try:
        chinese = shown()
    finally:
        i18n.set_language("en")
    assert "fl-error" in chinese and "位于本界面可以使用的文件夹" in chinese and "/etc" in chinese
    assert "lies outside" not in chinese


def test_an_upload_refused_by_prepare_says_why_in_the_gui_language(tmp_path: Path):
    from facelora.gui.uploads import accept_uploads
    from facelora.project import init_project

    p = init_project(tmp_path / "p", "ohwx")
    empty, tiny = tmp_path / "empty.jpg", tmp_path / "tiny.png"
    empty.write_bytes(b"")
    from PIL import Image

    Image.new("RGB", (20, 30)).save(tiny)
    english = accept_uploads(p, [(empty, "empty.jpg"), (tiny, "tiny.png")]).refused
    assert english == [("empty.jpg", "empty file (0 bytes)"),
                       ("tiny.png", "image too small (20 x 30 pixels; at least 64 on each side)")]
    i18n.set_language("zh-CN")
    try:
        chinese = accept_uploads(p, [(empty, "empty.jpg"), (tiny, "tiny.png"), (tiny, "notes.txt")]).refused
    finally:
        i18n.set_language("en")
    assert chinese[:2] == [("empty.jpg", "空文件（0 字节）"), ("tiny.png", "图片太小（20 x 30 像素；每边至少 64）")]
    assert chinese[2][1].startswith("不是 facelora 可读取的照片类型（.jpg")


# prepare's rejections (the report's reason) and the names its PrepareItem goes by in prepare/
REJECTIONS = ("ImageRejected", "CropRejected", "_Rejected")
ITEMS = ("item", "it")
PREPARE_HINT = ("reject with a template (raise CropRejected(\"... {px} ...\", px=n), item.reject(said(...))), warn "
                "with item.warn(said(\"... {px} ...\", px=n)), and add its Chinese to src/facelora/gui/zh_cn_prepare.py")


def _prepare_notes() -> tuple[list[str], list[str]]:
    """prepare/'s rejection reasons and warnings that the Photos page shows: the templates raised,
    and the places that give a reason or a warning as bare text (no template beside it)."""
    templates, untranslatable = [], []
    makers = _message_makers()
    for path in sorted((SRC / "prepare").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            where = f"{path.relative_to(SRC)}:{getattr(node, 'lineno', 0)}: {ast.unparse(node)[:100]}"
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and \
                    getattr(node.exc.func, "id", None) in REJECTIONS:
                found = _literals(node.exc.args[0]) if node.exc.args else []
                templates += found
                untranslatable += [] if found or (node.exc.args and _is_message(node.exc.args[0], tree, makers)) \
                    else [where]
            elif isinstance(node, (ast.Assign, ast.AugAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for t in [e for t in targets for e in (t.elts if isinstance(t, ast.Tuple) else [t])]:
                    if isinstance(t, ast.Attribute) and t.attr in ("reason", "warnings") and \
                            getattr(t.value, "id", None) in ITEMS and not isinstance(node.value, ast.ListComp):
                        untranslatable.append(where)
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in (
                    "append", "extend") and isinstance(node.func.value, ast.Attribute) and \
                    node.func.value.attr == "warnings" and getattr(node.func.value.value, "id", None) in ITEMS:
                untranslatable.append(where)
            elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "PrepareItem" and \
                    {"reason"} & {k.arg for k in node.keywords} and "reason_said" not in {k.arg for k in node.keywords}:
                untranslatable.append(where)
    return templates, untranslatable


def test_every_rejection_and_warning_of_prepare_has_a_chinese_template():
    templates, untranslatable = _prepare_notes()
    said_templates, _ = _run_messages()  # prepare/'s messages.said calls: the warnings and built reasons
    assert {"no face found", "the face is cut by the photo's {edges} edge; use a photo that shows the whole face"} \
        <= set(templates)
    assert {"blurry face (sharpness {blur:.0f}, below {least:.0f})", "the same file as {name}"} <= set(said_templates)
    assert not untranslatable, f"{len(untranslatable)} reasons or warnings cannot be translated; {PREPARE_HINT}:\n" + \
        "\n".join(untranslatable)
    left = i18n.missing(templates + said_templates)
    assert not left, f"{len(left)} reasons or warnings have no zh-CN template; {PREPARE_HINT}:\n" + "\n".join(left)


def test_the_photos_page_shows_reasons_and_warnings_in_its_language_and_old_reports_as_written(tmp_path: Path):
    from facelora.messages import said
    from facelora.gui.pages.photos import report_rows
    from facelora.prepare import crop, people  # noqa: F401 - the templates live there
    from facelora.prepare.options import PrepareOptions
    from facelora.prepare.report import PrepareItem, PrepareReport
    from facelora.project import init_project

    p = init_project(tmp_path / "p", "ohwx")
    cut = crop.CropRejected(crop._cut_reason((10, -40, 200, 260), 300, 300, True))
    rejected = PrepareItem(source=str(tmp_path / "a.jpg"), status="rejected")
    rejected.reject(cut.said)
    warned = PrepareItem(source=str(tmp_path / "b.jpg"), status="accepted")
    warned.warn(said("blurry face (sharpness {blur:.0f}, below {least:.0f})", blur=12.3, least=40.0))
    warned.warn(said("near-duplicate of {name} (pHash within {bits} bits)", name="c.jpg", bits=6))
    old = {"source": str(tmp_path / "d.jpg"), "status": "accepted", "warnings": ["blurry face (sharpness 3, below 40)"]}
    report = PrepareReport(photos=str(tmp_path), project=str(p.root), concept_dir="10_ohwx", trigger="ohwx",
                           class_word=None, options=PrepareOptions(), items=[rejected, warned])
    data = report.model_dump(mode="json")
    data["items"].append(old)  # a report written before the templates: English, and readable
    p.prepare_report.write_text(__import__("json").dumps(data), encoding="utf-8")
    english = report_rows(p)
    assert english == [
        ["a.jpg", "rejected", "the top of the head is cut by the photo's top edge; use a photo with room around the head"],
        ["b.jpg", "accepted", "blurry face (sharpness 12, below 40); near-duplicate of c.jpg (pHash within 6 bits)"],
        ["d.jpg", "accepted", "blurry face (sharpness 3, below 40)"]]
    i18n.set_language("zh-CN")
    try:
        chinese = report_rows(p)
    finally:
        i18n.set_language("en")
    assert chinese == [
        ["a.jpg", "已拒绝", "头顶被照片的上边缘切掉；请使用头部周围留有空间的照片"],
        ["b.jpg", "已采用", "脸部模糊（清晰度 12，低于 40）; 与 c.jpg 几乎重复（pHash 相差不超过 6 位）"],
        ["d.jpg", "已采用", "blurry face (sharpness 3, below 40)"]]  # no template: as written
