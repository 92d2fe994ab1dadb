"""The AST reading the i18n tests share: the literal strings an argument can be, and whether an
argument is a Message (which its said() call gives the template of)."""

from __future__ import annotations

import ast
from pathlib import Path

import facelora

SRC = Path(facelora.__file__).parent


def _literals(node: ast.AST) -> list[str]:
    """The strings an argument can be: a literal, or either side of `a if c else b`."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.IfExp):
        return _literals(node.body) + _literals(node.orelse)
    return []


def _message_makers(src: Path = SRC) -> set[str]:
    """The functions of the source that return a Message (annotated `-> Message` or `-> Message |
    None`), and said/Message themselves: what an error may be raised with instead of a template."""
    makers = {"said", "Message"}
    for path in src.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef) and node.returns is not None and \
                    ast.unparse(node.returns) in ("Message", "Message | None"):
                makers.add(node.name)
    return makers


def _is_message(arg: ast.AST, tree: ast.AST, makers: set[str]) -> bool:
    """Whether an error's argument is a Message (whose template its said() call gives): a call of
    a maker, or a name assigned from one in the same file."""
    if isinstance(arg, ast.Call):
        return getattr(arg.func, "id", getattr(arg.func, "attr", None)) in makers
    if isinstance(arg, ast.Name):
        return any(isinstance(n, ast.Assign) and any(getattr(t, "id", None) == arg.id for t in n.targets)
                   and _is_message(n.value, tree, makers) or isinstance(n, ast.NamedExpr) and n.target.id == arg.id
                   and _is_message(n.value, tree, makers) for n in ast.walk(tree))
    return False
