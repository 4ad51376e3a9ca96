"""Issue 20's size rules for ``hlcli/``, kept from regressing: a function fits on a screen (60
lines), a module stays one concept (400 lines), and no line is over 120 characters. Measured on the
source with ``ast`` (a function's length runs from its ``def`` line to its last line, decorators
and docstring included)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "hlcli"
MAX_FUNCTION_LINES = 60
MAX_MODULE_LINES = 400
MAX_LINE_CHARS = 120


def _sources() -> list[tuple[Path, str]]:
    return [(path, path.read_text(encoding="utf-8")) for path in sorted(PACKAGE.rglob("*.py"))]


def _rel(path: Path) -> str:
    return str(path.relative_to(PACKAGE.parent))


def test_no_function_is_longer_than_a_screen():
    long = []
    for path, source in _sources():
        for node in ast.walk(ast.parse(source, str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long.append(f"{_rel(path)}:{node.lineno} {node.name}: {length} lines")
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines:\n" + "\n".join(long)


def test_no_module_is_longer_than_400_lines():
    long = [f"{_rel(p)}: {len(s.splitlines())} lines" for p, s in _sources() if len(s.splitlines()) > MAX_MODULE_LINES]
    assert not long, f"modules over {MAX_MODULE_LINES} lines (split along the concepts):\n" + "\n".join(long)


def test_no_line_is_longer_than_120_characters():
    long = [f"{_rel(p)}:{i}: {len(line)} characters" for p, s in _sources()
            for i, line in enumerate(s.splitlines(), 1) if len(line) > MAX_LINE_CHARS]  # fmt: skip
    assert not long, f"lines over {MAX_LINE_CHARS} characters:\n" + "\n".join(long[:20])
