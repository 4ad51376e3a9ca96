"""``hl compare``: train (or collect) every method of a recipe and lay the results out like the
paper's Tables 3 and 4 (one table per training-data fraction and backbone) and its Figure 2.

A recipe is an ``hl train`` recipe plus a ``[compare]`` table::

    tasks = ["atis", "snips"]
    model = "t5-base"
    max_steps = 65536

    [compare]
    methods = ["hyperloader", "hyperformer", "unipelt"]
    fractions = [0.1, 0.2]
    split = "test"
    seeds = [1, 2, 3]                   # optional: every run once per seed, cells mean ± std

    [compare.tune]                      # optional: each method's setting chosen on validation
    lr = [3e-5, 1e-4, 3e-4]
    steps = 2000

    [compare.overrides.full-finetune]   # TrainConfig settings for one method only
    lr = 1e-4

Multi-task methods train one model on all tasks; single-task methods train one model per task
(:mod:`hlcli.compare.facts`). Each run lives in
``<compare dir>/runs/<method>-<fraction>[-<task>][-seed<n>]-<hash>`` where the hash covers the
fully resolved :class:`~hlcli.config.TrainConfig`, so a changed setting makes a new run and an
unchanged one is found again: a run whose ``eval.json`` scores all its tasks on the split is
skipped, a run with ``checkpoints/last`` is resumed. An interrupted compare therefore continues
where it stopped. The hash leaves out the method's module revision (:class:`hlcli.methods.ModuleRevision`),
which each checkpoint records instead: a run trained before its method's modules changed is never
reused, resumed or tabled; it is moved to ``<compare dir>/superseded/`` and trained again. Without a
recipe, :func:`collect_runs` tables the finished runs of a folder.
With ``[compare.tune]`` (:mod:`~hlcli.compare.tune`), each method's grid points are trained and
scored on validation first, and the point with the best average validation F1 is compared.

The package: :mod:`~hlcli.compare.plan` (recipe → runs), :mod:`~hlcli.compare.execute` (train,
score, collect), :mod:`~hlcli.compare.collect` (no recipe), :mod:`~hlcli.compare.results` (tables),
:mod:`~hlcli.compare.stats` (bootstrap intervals and ties) on :mod:`~hlcli.compare.bootstrap`
(the resampling), :mod:`~hlcli.compare.render` (Markdown/LaTeX/CSV/JSON), :mod:`~hlcli.compare.plot`
(Figure 2), :mod:`~hlcli.compare.curves` (validation-loss curves), :mod:`~hlcli.compare.paper`
(the paper's published tables) and :mod:`~hlcli.compare.param_counts` (parameter counts, ``--params``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from hlcli.compare.facts import SINGLE_TASK_MARK
from hlcli.compare.plan import (
    COMPARE_KEYS,
    COMPARE_SECTION,
    ComparePlan,
    PlannedRun,
    config_hash,
    final_runs,
    plan,
    read_compare_recipe,
)
from hlcli.compare.pace import Pace, Spent, measured_pace, pace_report, time_spent
from hlcli.compare.plot import plot_figure2
from hlcli.compare.render import (
    OUTPUT_FORMATS,
    footnotes,
    output_format,
    published_tables,
    render_output,
    time_footnote,
    to_latex,
    to_markdown,
    tuning_footnote,
    write_output,
)
from hlcli.compare.results import (
    AVERAGE,
    EDGE_MARK,
    RESULT_COLUMNS,
    TUNED_ROW,
    CompareResult,
    ComparisonTable,
    comparison_table,
    format_count,
    method_header,
    tuning_frame,
)
from hlcli.compare.tune import TuneSpec, TuningPoint, choose, grid_edges, tune_spec

# Running a comparison (execute: training, evaluation, adapt) and collecting runs (collect, on
# execute) are imported on first use (PEP 562): hl evaluate imports hlcli.compare.bootstrap for its
# intervals, which runs this file, and evaluation must not import what imports evaluation.
_LAZY = {
    **dict.fromkeys(["collect_runs"], "hlcli.compare.collect"),
    **dict.fromkeys(["RunStatus", "StaleRun", "compare", "is_finished", "plan_status", "score_points",
                     "stale_revision"], "hlcli.compare.execute"),
}

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time __getattr__ imports them
    from hlcli.compare.collect import collect_runs  # noqa: F401
    from hlcli.compare.execute import (  # noqa: F401
        RunStatus, StaleRun, compare, is_finished, plan_status, score_points, stale_revision,
    )


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'hlcli.compare' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value  # later lookups skip this function
    return value


__all__ = [
    "AVERAGE", "COMPARE_KEYS", "COMPARE_SECTION", "EDGE_MARK", "OUTPUT_FORMATS", "RESULT_COLUMNS",
    "SINGLE_TASK_MARK", "TUNED_ROW", "ComparePlan", "CompareResult", "ComparisonTable", "Pace", "PlannedRun", "Spent",
    "RunStatus", "StaleRun", "TuneSpec", "TuningPoint", "choose", "collect_runs", "compare", "comparison_table",
    "config_hash", "final_runs", "footnotes", "format_count", "grid_edges", "is_finished", "measured_pace",
    "method_header", "output_format", "pace_report", "plan", "plan_status", "plot_figure2", "published_tables",
    "read_compare_recipe", "render_output", "score_points", "stale_revision", "to_latex", "to_markdown",
    "time_footnote", "time_spent", "tune_spec", "tuning_footnote", "tuning_frame", "write_output",
]
