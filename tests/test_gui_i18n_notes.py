"""A run's start notes (events.jsonl's Start notes, shown on the Train page): every note in
i18n.NOTE_SOURCES is a Message written with said(), and each has its zh-CN template."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytest.importorskip("gradio")

from facelora.gui import i18n  # noqa: E402
from i18n_scan import SRC, _is_message, _literals, _message_makers  # noqa: E402

NOTES_HINT = ("write the note as said(\"Starting from the LoRA {file}.\", file=path) (a Message; the terminal prints "
              "its .text) and add its Chinese to src/facelora/gui/zh_cn_train.py")


def _called(node: ast.AST) -> str | None:
    return getattr(node.func, "id", getattr(node.func, "attr", None)) if isinstance(node, ast.Call) else None


def _start_notes(src: Path = SRC) -> tuple[list[str], list[str]]:
    """The start notes written in i18n.NOTE_SOURCES: the templates of their said() calls, and the
    places that give a note as bare text: an element appended or added to a `...notes` list, or
    returned in a list by a function annotated to return Messages, that is not a Message; a
    `..._notes` / `..._warning` function annotated to return text."""
    templates, bare = [], []
    files = sorted({f for source in i18n.NOTE_SOURCES for f in ([src / source] if source.endswith(".py") else
                                                               (src / source).rglob("*.py"))})
    makers = _message_makers(src)

    def named_notes(node: ast.AST) -> bool:
        return str(getattr(node, "id", getattr(node, "attr", ""))).endswith("notes")

    for path in files:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            where = f"{path.relative_to(src)}:{getattr(node, 'lineno', 0)}: {ast.unparse(node)[:100]}"
            given: list[ast.AST] = []
            if _called(node) in ("said", "Message") and node.args:
                templates += _literals(node.args[0])
                bare += [] if _literals(node.args[0]) else [where]
            elif _called(node) in ("append", "insert") and named_notes(node.func.value) and node.args:
                given = node.args[-1:]
            elif isinstance(node, ast.AugAssign) and named_notes(node.target) and isinstance(node.value, ast.List):
                given = node.value.elts
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.returns is not None:
                returns = ast.unparse(node.returns)
                if node.name.endswith(("_notes", "_warning")) and "Message" not in returns:
                    bare.append(where)
                if "Message" in returns:
                    given = [e for r in ast.walk(node) if isinstance(r, ast.Return) and isinstance(r.value, ast.List)
                             for e in r.value.elts]
            bare += [where for g in given if not _is_message(g, tree, makers)]
    return templates, bare


def test_every_start_note_of_a_run_is_a_message_with_a_chinese_template():
    templates, bare = _start_notes()
    assert {"Starting from the LoRA {file}.", "xformers needs CUDA; PyTorch's SDPA attention is used instead.",
            "Resuming at step {step} of {total} (epoch {epoch}) from {folder}."} <= set(templates)
    assert len(templates) >= 25  # attention, optim, resume, step, data, loop, dataset and the config check
    assert not bare, f"{len(bare)} start notes are bare text; {NOTES_HINT}:\n" + "\n".join(bare)
    left = i18n.missing(templates)
    assert not left, f"{len(left)} start notes have no zh-CN template; {NOTES_HINT}:\n" + "\n".join(left)


def test_a_bare_text_note_is_found(tmp_path: Path, monkeypatch):
    """The scan itself: a note appended as an f-string or a text, and a notes function returning
    text, fail; a said() note, or a name given one, passes."""
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "bad.py").write_text(
        "def size_notes(n) -> list[str]:\n    return [f'{n} images']\n\n"
        "def check(notes, x):\n    notes.append(f'x is {x}')\n    notes.append(said('x is {x}', x=x))\n"
        "    warning = said('fine')\n    notes.append(warning)\n    text = 'y'\n    notes.append(text)\n", encoding="utf-8")
    monkeypatch.setattr(i18n, "NOTE_SOURCES", ("train/",))
    templates, bare = _start_notes(tmp_path)
    assert sorted(templates) == ["fine", "x is {x}"]
    assert [b.split(":")[1] for b in bare] == ["1", "5", "10"], bare
