"""``hl`` in a real child process, for the tests that signal or race whole processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest


def hl_process(*args, log: Path, env: dict | None = None, python_args: tuple = ("-m", "hlcli")) -> subprocess.Popen:
    """``python -m hlcli ARGS`` (or ``python_args``) in a new process, output to ``log``; one torch
    thread, so that runs are bitwise comparable with each other and with in-process runs."""
    environ = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TQDM_DISABLE": "1", **(env or {})}
    with open(log, "wb") as stream:
        process = subprocess.Popen([sys.executable, *python_args, *map(str, args)], stdout=stream,
                                   stderr=subprocess.STDOUT, env=environ)  # fmt: skip
    _STARTED.append(process)
    return process


_STARTED: list[subprocess.Popen] = []


def kill_left_over() -> None:
    """SIGKILL every ``hl`` child still running after its test (one that failed before its own wait):
    left alone, a ``hl compare --max-steps 100000`` trained on beside the rest of the suite
    (2026-12-05). Its workers are then told by the kernel (one SIGTERM each), save and exit."""
    while _STARTED:
        process = _STARTED.pop()
        if process.poll() is None:
            process.kill()
            process.wait()


def wait_until(condition, process: subprocess.Popen, log: Path, what: str, timeout: float = 300.0) -> None:
    """Poll ``condition`` until true; fail with the child's log if it exits first or time runs out."""
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            pytest.fail(f"hl exited ({process.returncode}) before {what}:\n{log.read_text(errors='replace')}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"timed out waiting for {what}:\n{log.read_text(errors='replace')}")
        time.sleep(0.01)
