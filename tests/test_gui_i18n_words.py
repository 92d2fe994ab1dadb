"""The Chinese interface, for what the steps write and the pages show beside the GUI's own words:
prepare's notes on the whole set (its pose coverage, the resolution note), the plan's notes and
the tutorial's ranges, scoring's verdict and warnings, the names of the jobs. Every such text is
kept with its template and values beside its English (said()), found here by AST where it is
given as bare text, and has its zh-CN template; the pages say them in their language and show an
old file's English as written. (tests/test_gui_i18n.py holds the GUI's own words and the core's
errors; the browser test sweeps every zh-CN page for English left.)"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from PIL import Image

pytest.importorskip("gradio")

from facelora.gui import i18n  # noqa: E402
from test_gui_i18n import SRC, _literals  # noqa: E402

NOTE_FIELDS = ("reason", "warnings", "notes", "resolution_note")  # what a report, a plan or a score says in English


def _from_text(node: ast.AST) -> bool:
    """A value made from a message's English (`message.text`, or texts kept from a list), not typed
    as bare text."""
    return isinstance(node, ast.ListComp) or any(isinstance(n, ast.Attribute) and n.attr == "text"
                                                 for n in ast.walk(node))


def _bare_note(node: ast.AST) -> bool:
    """A reason, warning or note given as bare text, with no template beside it: assigned to (or
    appended to) one of NOTE_FIELDS of any object (an item, the set's coverage, the report, a plan)."""
    if isinstance(node, (ast.Assign, ast.AugAssign)):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        fields = [e for t in targets for e in (t.elts if isinstance(t, ast.Tuple) else [t])]
        return any(isinstance(t, ast.Attribute) and t.attr in NOTE_FIELDS for t in fields) and \
            not _from_text(node.value)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("append", "extend"):
        owner = node.func.value
        return isinstance(owner, ast.Attribute) and owner.attr in NOTE_FIELDS and \
            not all(_from_text(a) for a in node.args)
    return False


# The steps whose own words the pages show: prepare's (a photo's and the set's), the plan's notes and
# the tutorial's ranges, scoring's verdict and warnings (likeness.json)
STEP_SOURCES = ("prepare/", "plan.py", "evaluate/board.py")
STEP_HINT = ("write it as said(\"{n} photo(s): ...\", n=n) (item.warn(...), coverage.warn(...), plan.note(...), "
             "group.warn(...)) and add its Chinese to src/facelora/gui/zh_cn_prepare.py (prepare), zh_cn.py (the "
             "plan) or zh_cn_evaluate.py (scoring)")


def _step_messages() -> tuple[list[str], list[str]]:
    """STEP_SOURCES' said() templates, and the places that give a note or warning as bare text."""
    templates, untranslatable = [], []
    files = sorted({f for src in STEP_SOURCES for f in ([SRC / src] if src.endswith(".py") else
                                                        (SRC / src).rglob("*.py"))})
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            where = f"{path.relative_to(SRC)}:{getattr(node, 'lineno', 0)}: {ast.unparse(node)[:100]}"
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "said" and node.args:
                found = _literals(node.args[0])
                templates += found
                untranslatable += [] if found else [where]
            elif _bare_note(node):
                untranslatable.append(where)
    return templates, untranslatable


def test_every_note_of_the_steps_has_a_chinese_template():
    from facelora.evaluate.board import RULE, TINY_NOISE
    from facelora.locks import CONFLICTS  # the jobs' names, as the Project and Evaluate pages list them

    templates, untranslatable = _step_messages()
    assert {"{name} {value} lies outside the tutorial's {low}-{high} for a face.",
            "No generated image has a face, so no file or weight can be picked{noise}.",
            "one expression ({expression}) in all {n} photo(s); add some with another (neutral, smile, open mouth), "
            "or every image will wear it"} <= set(templates)
    assert not untranslatable, f"{len(untranslatable)} notes cannot be translated; {STEP_HINT}:\n" + \
        "\n".join(untranslatable)
    left = i18n.missing(templates + [RULE, TINY_NOISE, *CONFLICTS, "neutral", "smile", "open mouth"])
    assert not left, f"{len(left)} notes have no zh-CN template; {STEP_HINT}:\n" + "\n".join(left)


def test_the_scan_finds_a_note_given_as_bare_text():
    written = ast.parse("out.warnings.append(f'all {n} photos face the camera')\n"
                        "report.resolution_note = f'now {r}'\nplan.notes.append('x')\n"
                        "g.warn(said('{n} faces', n=2))\nself.warnings.append(message.text)\n")
    assert sorted(n.lineno for n in ast.walk(written) if _bare_note(n)) == [1, 2, 3]


def _words(page_html: str) -> str:
    """The page's words, less its tags and the facelora commands it quotes (which stay as typed)."""
    return re.sub(r"facelora [a-z]+ [A-Z][^（(]*|<[^>]+>", " ", page_html)


def _report(tmp_path: Path, p, **fields):
    from facelora.prepare.options import PrepareOptions
    from facelora.prepare.report import PrepareReport

    report = PrepareReport(photos=str(tmp_path), project=str(p.root), concept_dir="10_ohwx", trigger="ohwx",
                           class_word=None, options=PrepareOptions(), **fields)
    p.prepare_report.write_text(report.model_dump_json(), encoding="utf-8")


def test_the_photos_page_says_the_sets_notes_in_its_language_and_old_reports_as_written(tmp_path: Path):
    from facelora.messages import said
    from facelora.gui.pages.photos import set_notes
    from facelora.prepare import audit
    from facelora.prepare.report import PrepareItem
    from facelora.project import init_project

    p = init_project(tmp_path / "p", "ohwx")
    folder, _ = p.concepts()[0]
    for i in range(3):  # the crops these items made: the plan they would train warns on its numbers
        Image.new("RGB", (64, 64), (i, 90, 90)).save(folder / f"{i}.png")
        (folder / f"{i}.txt").write_text("ohwx", encoding="utf-8")
    items = [PrepareItem(source=f"{tmp_path}/{i}.jpg", status="accepted", yaw=3.0 * i, expression="smile")
             for i in range(3)]
    moved = said("The project now trains at {resolution} (resolution in {file}, was {before}), the crops' size.",
                 resolution=768, file="facelora.toml", before="512")
    _report(tmp_path, p, items=items, coverage=audit.coverage(items), resolution_note=moved.text,
            resolution_said=moved)
    english = set_notes(p)
    assert "no three-quarter view or profile: all 3 photo(s)" in english and "one expression (smile)" in english
    assert "3 photo(s): the tutorial uses at least 10" in english and "now trains at 768" in english
    assert "total steps 300 lies outside the tutorial" in english  # as facelora prepare warns
    i18n.set_language("zh-CN")
    try:
        chinese = set_notes(p)
    finally:
        i18n.set_language("en")
    assert "没有四分之三侧脸或侧脸：全部 3 张照片" in chinese and "只有一种表情（微笑）" in chinese
    assert "教程至少使用 10 张" in chinese and "项目现在以 768 训练" in chinese
    assert not re.search(r"[a-z]{3,} [a-z]{3,}", _words(chinese)), chinese
    old = {"warnings": ["one expression (smile) in all 3 photo(s); as an old report wrote it"]}
    _report(tmp_path, p, items=items, coverage=old, resolution_note="the project now trains at 768 (old words)")
    i18n.set_language("zh-CN")
    try:
        kept = set_notes(p)
    finally:
        i18n.set_language("en")
    assert "as an old report wrote it" in kept and "(old words)" in kept  # no template: as written


def test_the_plan_and_the_scores_show_in_chinese(tmp_path: Path):
    from facelora.fileio import atomic_write_json
    from facelora.gui.pages.evaluate import best_html
    from facelora.gui.pages.params import plan_html_for
    from facelora.gui.workspace import Workspace
    from facelora.project import init_project

    ws = Workspace.of(tmp_path)
    p = init_project(tmp_path / "p", "ohwx")
    i18n.set_language("zh-CN")
    try:
        plan = plan_html_for(ws, "", None, 2, None, 4, 1, "ohwx", 1, 1, None)  # no epochs: a note, all out of range
        verdict = "No generated image has a face, so no file or weight can be picked{noise}."
        atomic_write_json(p.likeness_json, {"verdict": "No generated image has a face (old words).", "rule": "R"})
        old = best_html(p)
        from facelora.evaluate.board import RULE, TINY_NOISE

        atomic_write_json(p.likeness_json, {
            "verdict": verdict.format(noise=TINY_NOISE), "rule": RULE,
            "verdict_said": {"template": verdict, "values": {"noise": TINY_NOISE}},
            "warnings": ["2 reference photo(s) have no face dlib can find and are left out."],
            "warnings_said": [{"template": "{n} reference photo(s) have no face dlib can find and are left out.",
                               "values": {"n": 2}}]})
        scored = best_html(p)
    finally:
        i18n.set_language("en")
    assert "未设置 max_train_epochs" in plan and "超出了教程" in plan and "教程至少使用 10 张" in plan
    assert "生成的图像中没有人脸" in scored and "tiny 测试模型" in scored and "2 张参考照片" in scored
    assert "最佳 = " in scored
    for shown in (plan, scored):
        assert not re.search(r"[a-z]{3,} [a-z]{3,} [a-z]{3,}", _words(shown)), shown
    assert "(old words)" in old  # likeness.json written before the templates: its English
