"""The Chinese interface: every word the GUI shows has a zh-CN translation. The test walks every
component the built page holds (labels, help lines, placeholders, buttons, Markdown), every
parameter's plain label and help (TrainConfig's, prepare's and the grid's fields), and every
fixed message in gui/'s source (T(), tr() and note() literals, table row names, the state words)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytest.importorskip("gradio")

from facelora.gui import i18n  # noqa: E402

GUI = Path(i18n.__file__).parent
HINT = "add them to src/facelora/gui/zh_cn.py (English text -> Chinese; keep Kohya names as they are)"


def _literals(node: ast.AST) -> list[str]:
    """The strings an argument can be: a literal, or either side of `a if c else b`."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.IfExp):
        return _literals(node.body) + _literals(node.orelse)
    return []


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
                if getattr(node.func, "id", None) in ("T", "tr", "note"):
                    found += _literals(node.args[0])
                elif getattr(node.func, "attr", None) == "append":
                    found += _row_name(node.args[0])
            elif isinstance(node, ast.List):
                for element in node.elts:
                    found += _row_name(element)
    return found


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
