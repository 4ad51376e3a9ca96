"""The tool's own error type.

Every problem a user can cause (bad data, a wrong option, an unusable run folder) is raised
as :class:`HLError`. The CLI prints ``str(error)`` on one line and exits with ``exit_code``
(1 for data/run errors, 2 for usage errors); a traceback only appears with ``--verbose``.
Anything that is *not* an HLError is a bug in hlcli.
"""

from __future__ import annotations

import os

EXIT_OK = 0
EXIT_DATA = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class HLError(Exception):
    """A user-facing error: what is wrong, where, and what was expected.

    ``HLError("token/tag count mismatch: 5 tokens, 4 tags", path="a.bio", line=12,
    expected="one tag per token")`` renders as
    ``a.bio:12: token/tag count mismatch: 5 tokens, 4 tags (expected one tag per token)``.
    """

    exit_code = EXIT_DATA

    def __init__(
        self,
        message: str,
        *,
        path: str | os.PathLike | None = None,
        line: int | None = None,
        expected: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.message = message
        self.path = None if path is None else os.fspath(path)
        self.line = line
        self.expected = expected
        self.hint = hint
        super().__init__(str(self))

    def __str__(self) -> str:
        where = ""
        if self.path is not None:
            where = f"{self.path}:{self.line}: " if self.line is not None else f"{self.path}: "
        text = f"{where}{self.message}"
        if self.expected:
            text += f" (expected {self.expected})"
        if self.hint:
            text += f"; {self.hint}"
        return text


class Diverged(HLError):
    """Training met a non-finite loss or gradient: the run diverged (a grid point of ``hl compare``
    is then recorded as diverged and left out of the choice, instead of stopping the comparison)."""


class RunBusy(HLError):
    """Another process is training this run folder now (it holds :class:`hlcli.runs.RunLock`):
    ``hl train`` stops; ``hl compare`` leaves that run to the other process and goes on.
    ``holder``: that process's id as its lock file says, or "another process"; ``who``: "process N"."""

    def __init__(self, run_dir: str | os.PathLike, holder: str, *, hint: str | None = None) -> None:
        self.holder = holder
        self.who = f"process {holder}" if holder.isdigit() else holder
        super().__init__(f"{os.fspath(run_dir)} is being trained by {self.who}", hint=hint)


class UsageError(HLError):
    """A bad option or option combination (exit code 2)."""

    exit_code = EXIT_USAGE


def unknown_name(kind: str, name: str, known: list[str] | tuple[str, ...]) -> UsageError:
    """``unknown task 'foo'; known tasks: atis, snips, ...`` — used by every registry."""
    return UsageError(f"unknown {kind} {name!r}; known {kind}s: {', '.join(sorted(known))}")
