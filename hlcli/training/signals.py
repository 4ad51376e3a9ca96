"""Stopping ``hl train`` by a signal: Ctrl-C, a scheduler's or ``timeout``'s SIGTERM, a closed terminal's SIGHUP.

Outside the loop (reading data, building the model) a stop signal ends the run at once
(:func:`signals_interrupt`); in the loop the first one asks for a stop at the next step boundary, with
``checkpoints/last`` saved, and a second one aborts (:class:`StopRequest`).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Any, Iterator

from hlcli.io import Log


class Interrupted(KeyboardInterrupt):
    """Training stopped by a signal after saving ``checkpoints/last``; the CLI exits 128 + its number
    (130 Ctrl-C, 143 SIGTERM, 129 SIGHUP), as a shell reports a process that signal ended."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.exit_code = 128 + signum


# Ctrl-C, a scheduler's or `timeout`'s SIGTERM, a closed terminal's SIGHUP: each stops the same way.
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


@contextlib.contextmanager
def signals_interrupt() -> Iterator[None]:
    """Outside the loop (reading data, building the model) SIGTERM and SIGHUP end ``hl train`` as
    Ctrl-C does there: at once, by an exception, so the lock is released and an unused run folder
    removed; in the loop :class:`StopRequest` takes over (finish the step, save)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise Interrupted(signum)

    previous = {signum: signal.signal(signum, interrupt) for signum in STOP_SIGNALS if signum != signal.SIGINT}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)


class StopRequest:
    """A first stop signal asks the loop to stop at the next step boundary (and save); a second aborts."""

    def __init__(self, say: Log) -> None:
        self.signum: int | None = None
        self._say = say
        self._previous: dict[int, Any] = {}

    @property
    def requested(self) -> bool:
        return self.signum is not None

    @property
    def name(self) -> str:
        return "Ctrl-C" if self.signum in (None, signal.SIGINT) else signal.Signals(self.signum).name

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for signum in STOP_SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise Interrupted(signum)
        self.signum = signum
        try:
            self._say(f"{self.name}: stopping after this step and saving checkpoints/last "
                      f"({self.name} again: stop now, no save)")
        except OSError:  # SIGHUP: the terminal may be gone; stopping and saving matter, the message does not
            pass

    def __exit__(self, *exc: Any) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, signal.SIG_DFL if previous is None else previous)  # None: not set from Python
