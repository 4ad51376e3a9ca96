"""Running ``hl`` in-process for CLI tests."""

from __future__ import annotations

from typer.testing import CliRunner

from hlcli.cli import app


def invoke(*args, **kwargs):
    """``hl ARGS`` through Typer's runner; arguments may be paths or numbers."""
    return CliRunner().invoke(app, [str(a) for a in args], **kwargs)
