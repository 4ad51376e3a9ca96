"""``hl compare`` without a recipe: table every finished run found under a folder (``./runs``)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd

from hlcli import runs
from hlcli.compare.facts import is_single_task, method_order
from hlcli.compare.plan import config_hash
from hlcli.compare.results import RESULT_COLUMNS, CompareResult
from hlcli.compare.execute import _collect, is_finished, stale_revision
from hlcli.config import TrainConfig, read_config
from hlcli.data.corpora import CORPORA
from hlcli.errors import HLError
from hlcli.io import Log


def collect_runs(
    *, runs_dir: str | Path = "runs", split: str = "test", log: Log | None = None
) -> CompareResult:
    """Every run under ``runs_dir`` scored on ``split``, grouped into tables by fraction and backbone.

    Runs of one method, fraction and backbone that differ only in their seed are that cell's
    seeds; where a method was run with other settings too, the most recently scored setting is
    used and the others are named on ``log``.
    """
    say = log or (lambda line: None)
    found = []
    for config_path in sorted(Path(runs_dir).rglob(runs.CONFIG)):
        run_dir = config_path.parent
        if not runs.is_run_dir(run_dir):
            continue
        try:
            config = read_config(config_path)
        except HLError:
            say(f"{run_dir}: unreadable config.json, left out")
            continue
        if isinstance(config.fraction, dict):  # tables are per fraction: a run with one per task fits none
            say(f"{run_dir}: a fraction per task ({config.fraction}), left out")
            continue
        if is_finished(run_dir, split, config.tasks):
            found.append((run_dir, config, (run_dir / runs.EVAL).stat().st_mtime))
    rows, stale = [], []
    for run_dir, config, _ in _latest_setting(found, say):
        rows.extend(_collect(run_dir, config.method, config.fraction, config.seed, config.tasks, split, config.model))
        revision = stale_revision(run_dir)
        if revision is not None:  # tabled (these are the folder's runs), but never without saying so
            stale.append(f"{run_dir}: {revision}; its scores differ from a retrain's")
    frame = pd.DataFrame(rows, columns=RESULT_COLUMNS)
    # Rows come oldest first: the most recent run of a (method, seed, task) wins.
    frame = frame.drop_duplicates(["method", "model", "fraction", "seed", "task"], keep="last")
    # The paper's corpora in the paper's order, then the user's own tasks in order of appearance.
    seen = list(dict.fromkeys(frame["task"]))
    tasks = [t for t in CORPORA if t in seen] + [t for t in seen if t not in CORPORA]
    fractions = sorted({float(f) for f in frame["fraction"]}, reverse=True)
    methods = method_order(frame["method"])
    return CompareResult(None, split, methods, fractions, tasks, frame.reset_index(drop=True), stale=stale)


def _latest_setting(found, say):
    """Per (method, backbone, fraction): the runs of the most recently scored setting (seed aside)."""
    by_cell: dict[tuple, dict[str, list]] = {}
    for run_dir, config, mtime in found:
        # A single-task method's runs differ in their task; a multi-task run's tasks are its setting.
        tasks = ["atis"] if is_single_task(config.method) else config.tasks
        setting = config_hash(dataclasses.replace(config, seed=TrainConfig.seed, tasks=tasks, output_dir=None))
        cell = by_cell.setdefault((config.method, config.model, config.fraction), {})
        cell.setdefault(setting, []).append((run_dir, config, mtime))
    chosen = []
    for settings in by_cell.values():
        ranked = sorted(settings.values(), key=lambda group: max(m for _, _, m in group), reverse=True)
        chosen.extend(ranked[0])
        for group in ranked[1:]:
            for run_dir, _, _ in group:
                say(f"{run_dir}: same method, backbone and fraction as a more recent run with other settings, left out")
    return sorted(chosen, key=lambda item: item[2])
