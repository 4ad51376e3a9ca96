"""Progress bars: on stderr at a terminal for long inputs, absent otherwise (pipes, logs)."""

from __future__ import annotations

import io

from rich.console import Console

from hlcli.cli import _common


def _run(monkeypatch, *, terminal: bool, total: int | None, min_total: int = 0, enabled: bool = True) -> str:
    buffer = io.StringIO()
    monkeypatch.setattr(_common, "err_console", Console(file=buffer, force_terminal=terminal, width=80))
    with _common.progress_bar("tagging", total, min_total=min_total, enabled=enabled) as advance:
        for _ in range(total or 3):
            advance()
    return buffer.getvalue()


def test_bar_at_a_terminal_for_long_input(monkeypatch):
    assert "tagging" in _run(monkeypatch, terminal=True, total=2000, min_total=1024)


def test_no_bar_when_stderr_is_not_a_terminal(monkeypatch):
    assert _run(monkeypatch, terminal=False, total=2000, min_total=1024) == ""


def test_no_bar_for_short_input_or_when_disabled(monkeypatch):
    assert _run(monkeypatch, terminal=True, total=10, min_total=1024) == ""
    assert _run(monkeypatch, terminal=True, total=None, enabled=False) == ""
