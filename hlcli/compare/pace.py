"""How long the runs still to train will take, and how long the trained ones took, at the pace
measured in the comparison's own runs.

A comparison spread over days (``recipes/cpu-minilm-tuned.toml``) is planned from step times;
once some runs have trained, their ``train.log`` holds the real ones, on this machine, with these
threads, validation included. ``hl compare --dry-run`` turns the steps left of each method into
time at its measured pace, and the steps its runs reached into the time they took (the tables'
"Training time" footnote).

The pace of a method is read from the ``step N`` lines of every ``train.log`` of its planned runs
(grid points and final runs alike): the seconds between consecutive lines over the steps between
them. Two lines around a stop are not a stretch of training: a resumed run repeats steps (the step
goes back: left out), and a pause (``kill -STOP``, a suspended laptop) makes one stretch far slower
than the rest (slower than :data:`PAUSE` × the median: left out).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Callable, Iterable

from hlcli import runs

# "2026-12-03 16:37:40 step 3900 loss 0.1100 lr 2.245e-05" (hlcli.runs.append_log's time stamp)
STEP_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) step (\d+) ")
PAUSE = 5.0  # a stretch this many times slower than the median one is a pause, not training
ROUNDING = 2.0  # seconds: two whole-second time stamps bound a stretch


@dataclass(frozen=True)
class Pace:
    """A method's measured pace: seconds per optimizer step over ``steps`` measured steps."""

    seconds_per_step: float
    steps: int


def _step_lines(train_log: Path) -> list[tuple[datetime, int]]:
    """(time, step) of each ``step`` line of one ``train.log``; empty for a missing or unreadable log."""
    try:
        lines = train_log.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []
    matches = (STEP_LINE.match(line) for line in lines)
    return [(datetime.strptime(m[1], "%Y-%m-%d %H:%M:%S"), int(m[2])) for m in matches if m is not None]


def stretches(train_log: Path) -> list[tuple[float, int]]:
    """(seconds, steps) between consecutive ``step`` lines of one ``train.log``; a step that goes
    back (a resume from an earlier checkpoint) starts over. Empty for a missing or unreadable log."""
    out, last = [], None
    for when, step in _step_lines(train_log):
        if last is not None and step > last[1]:
            out.append(((when - last[0]).total_seconds(), step - last[1]))
        last = (when, step)
    return out


def measured_pace(run_dirs: Iterable[Path]) -> Pace | None:
    """The pace over every stretch of these runs' logs, pauses left out; None before any is measured."""
    measured = [s for run_dir in run_dirs for s in stretches(Path(run_dir) / runs.TRAIN_LOG)]
    if not measured:
        return None
    rates = sorted(seconds / steps for seconds, steps in measured)
    median = rates[len(rates) // 2]
    # (+ ROUNDING: time stamps are whole seconds, so a fast stretch may read 0 s or 1 s)
    kept = [(seconds, steps) for seconds, steps in measured if seconds <= PAUSE * median * steps + ROUNDING]
    steps = sum(n for _, n in kept)
    return Pace(sum(s for s, _ in kept) / steps, steps)


@dataclass(frozen=True)
class Spent:
    """A method's training so far: the ``steps`` its ``runs`` reached, ``seconds`` at its measured pace."""

    seconds: float
    steps: int
    runs: int


def time_spent(run_dirs: dict[str, list[Path]]) -> dict[str, Spent]:
    """Each method's training time so far: the steps its runs' logs reached × the method's measured
    pace (validation included; start-up, pauses and scoring not). A method with no step measured is
    left out; a folder listed twice (a chosen grid point is also its seed's final run) counts once."""
    out = {}
    for method, listed in run_dirs.items():
        dirs = list(dict.fromkeys(Path(d) for d in listed))
        reached = [max((step for _, step in _step_lines(d / runs.TRAIN_LOG)), default=0) for d in dirs]
        pace = measured_pace(dirs)
        if pace is not None and sum(reached):
            out[method] = Spent(sum(reached) * pace.seconds_per_step, sum(reached), sum(n > 0 for n in reached))
    return out


def spent_text(spent: dict[str, Spent], name: Callable[[str], str] = str) -> str:
    """``HyperLoader ≈ 7 h 46 min (30,000 steps, 6 runs); …; in all ≈ 20 h 3 min``."""
    from hlcli.training.report import format_duration

    parts = [
        f"{name(m)} ≈ {format_duration(s.seconds)} ({s.steps:,} steps, {s.runs} run{'s' * (s.runs != 1)})"
        for m, s in spent.items()
    ]
    return "; ".join(parts) + f"; in all ≈ {format_duration(sum(s.seconds for s in spent.values()))}"


def time_left(steps_left: dict[str, int], run_dirs: dict[str, list[Path]]) -> tuple[dict[str, Pace | None], float]:
    """Each method's pace (None: not measured yet) and the seconds its steps left take at it,
    summed over the measured methods (the time of one process, one run after another)."""
    paces = {method: measured_pace(run_dirs.get(method, [])) for method in steps_left}
    total = sum(steps_left[m] * pace.seconds_per_step for m, pace in paces.items() if pace is not None)
    return paces, total


def pace_report(statuses: Iterable) -> list[str]:
    """``--dry-run``'s lines on time: each method with steps left, its pace and time, then the sum.
    ``statuses``: :class:`~hlcli.compare.execute.RunStatus` (run.method, run.run_dir, steps_left)."""
    from hlcli.training.report import format_duration

    steps_left: dict[str, int] = {}
    run_dirs: dict[str, list[Path]] = {}
    for status in statuses:
        steps_left[status.run.method] = steps_left.get(status.run.method, 0) + status.steps_left
        mine = run_dirs.setdefault(status.run.method, [])
        # (a chosen grid point's folder is also its seed's final run: measured once)
        if status.run.run_dir is not None and status.run.run_dir not in mine:
            mine.append(status.run.run_dir)
    spent = time_spent(run_dirs)
    trained = ["Trained so far, at the same pace: " + spent_text(spent)] if spent else []
    steps_left = {method: steps for method, steps in steps_left.items() if steps}
    if not steps_left:
        return trained
    paces, total = time_left(steps_left, run_dirs)
    lines = ["Time left at the pace measured in these runs' train.log (validation included, scoring not):"]
    for method, pace in paces.items():
        steps = f"{steps_left[method]:,} steps"
        if pace is None:
            lines.append(f"  {method}: {steps}, pace not measured yet")
        else:
            seconds = steps_left[method] * pace.seconds_per_step
            lines.append(f"  {method}: {steps} × {pace.seconds_per_step:.3g} s ≈ {format_duration(seconds)} "
                         f"(measured over {pace.steps:,} steps)")
    unmeasured = " + the methods not measured yet" if None in paces.values() else ""
    lines.append(f"  in all ≈ {format_duration(total)}{unmeasured}, one run after another "
                 "(--jobs N: about 1/N of it where N cores are free)")
    return lines + trained
