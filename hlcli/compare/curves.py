"""Validation-loss curves of a comparison's runs, and the convergence check the tables rely on.

A run counts as converged when its best validation loss stopped falling over the last fifth of
the run: the best validation loss after 80 % of the steps is less than ``CONVERGED_DROP`` (2 %)
below the best up to 80 %. The best so far, not the value at 80 %, is the reference because the
scored checkpoint is the best one (``select_checkpoint = "best"``, the default and every CPU
recipe's; the paper recipes score the last model, whose runs are judged the same way): on a curve
that has turned up (overfitting; UniPELT at lr 3e-4 on Movie: 0.299 at step 350, 0.374 at 800,
0.352 after), a dip below a late, noisy value is no sign that more steps would change what is
scored. The fall this gives is never larger than the
one against the value at 80 % (hlcli until 2026-12-03), so no run judged converged then is
judged otherwise now. Curves come from each run's ``metrics.jsonl`` (one ``eval`` record per
validation), so they can be drawn for finished and interrupted runs alike.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from hlcli import runs

if TYPE_CHECKING:
    import pandas as pd

CONVERGED_DROP = 0.02
LAST_PART = 0.2
LINE_STYLES = ("-", "--", ":", "-.")
CONVERGENCE_COLUMNS = [
    "method", "tasks", "seed", "grid_point", "steps", "best_by_80", "best_after", "fall", "best_step", "converged",
    "run_dir",
]
CONVERGENCE_HEADER = (
    "method", "tasks", "seed", "grid point", "steps", "best by 80 %", "best after", "fall", "best at", "converged",
)
VERDICT = {True: "yes", False: "no", None: "-"}


@dataclass
class Curve:
    """The validation-loss curve of one run (``tasks`` > 1 for multi-task runs)."""

    method: str
    tasks: list[str]
    run_dir: Path
    max_steps: int
    steps: list[int]
    val_loss: list[float]
    seed: int | None = None
    point: str | None = None  # a grid point's run that is no final run: its setting ("lr 3e-4")

    def best_by_start(self) -> float | None:
        """The lowest validation loss measured at or before 80 % of the run (None: not measured)."""
        before = [loss for step, loss in zip(self.steps, self.val_loss) if step <= self.max_steps * (1 - LAST_PART)]
        return min(before) if before else None

    def best_step(self) -> int | None:
        """The step of the lowest validation loss (the first, on a tie): where a best checkpoint is from."""
        return min(zip(self.val_loss, self.steps))[1] if self.steps else None

    def best_after_start(self) -> float | None:
        """The lowest validation loss measured after 80 % of the run (None: not measured)."""
        after = [loss for step, loss in zip(self.steps, self.val_loss) if step > self.max_steps * (1 - LAST_PART)]
        return min(after) if after else None

    def drop_over_last_part(self) -> float | None:
        """Relative fall of the best validation loss over the last fifth (None: too few points);
        negative where the last fifth never came back to the best before it."""
        start, best = self.best_by_start(), self.best_after_start()
        if start is None or best is None:
            return None
        return (start - best) / start

    @property
    def converged(self) -> bool | None:
        drop = self.drop_over_last_part()
        return None if drop is None else drop < CONVERGED_DROP


def curves_of(result) -> list[Curve]:
    """The curve of every run behind a :class:`~hlcli.compare.CompareResult`, in table order: its
    tabled runs, then the runs of its grid points that are not among them (a chosen point's run is
    also its seed's final run), each marked with its point. A run not started yet is left out."""
    from hlcli.compare.tune import describe
    from hlcli.config import read_config

    runs_of = [(method, Path(run_dir), None) for method, run_dir in result.results[["method", "run_dir"]].values]
    tabled = {run_dir for _, run_dir, _ in runs_of}
    runs_of += [
        (point.method, Path(run_dir), describe(point.setting))
        for point in result.tuning for run_dir in point.run_dirs if Path(run_dir) not in tabled
    ]
    curves = []
    for method in result.methods:
        for run_dir, point in dict.fromkeys((d, p) for m, d, p in runs_of if m == method):
            if (run_dir / runs.METRICS).is_file():
                config = read_config(run_dir / runs.CONFIG)
                curve = read_curve(run_dir, method, config.tasks, config.max_steps, seed=config.seed, point=point)
                curves.append(curve)
    return curves


def convergence_frame(curves: Sequence[Curve]) -> "pd.DataFrame":
    """The convergence table, one row per run: method, tasks, seed, steps, the validation loss at
    80 % and the best after it, their relative fall, converged (None: too few points), run_dir."""
    import pandas as pd

    rows = [
        {
            "method": c.method, "tasks": "+".join(c.tasks), "seed": c.seed, "grid_point": c.point,
            "steps": c.max_steps,
            "best_by_80": c.best_by_start(), "best_after": c.best_after_start(), "fall": c.drop_over_last_part(),
            "best_step": c.best_step(),
            "converged": c.converged, "run_dir": str(c.run_dir),
        }
        for c in curves
    ]
    return pd.DataFrame(rows, columns=CONVERGENCE_COLUMNS)


def convergence_cells(frame: "pd.DataFrame") -> list[list[str]]:
    """The convergence table as text, columns :data:`CONVERGENCE_HEADER` (7 tasks: "7 tasks")."""
    def text(value, spec: str) -> str:
        return "-" if value is None or value != value else format(value, spec)  # None, or pandas' NaN

    cells = []
    for row in frame.itertuples(index=False):
        tasks = row.tasks if row.tasks.count("+") < 2 else f"{row.tasks.count('+') + 1} tasks"
        seed = text(row.seed, ".0f")
        losses = [text(row.best_by_80, ".4f"), text(row.best_after, ".4f"), text(row.fall, ".1%")]
        losses.append(text(row.best_step, ".0f"))
        point = row.grid_point if isinstance(row.grid_point, str) else "-"
        cells.append([row.method, tasks, seed, point, str(row.steps), *losses, VERDICT[row.converged]])
    return cells


def read_curve(
    run_dir: str | Path, method: str, tasks: Sequence[str], max_steps: int, *, seed: int | None = None,
    point: str | None = None,
) -> Curve:
    """The curve of one run folder from its ``metrics.jsonl`` (the last record per step wins:
    a resumed run rewrites the steps after its checkpoint)."""
    points: dict[int, float] = {}
    path = Path(run_dir) / runs.METRICS
    for line in path.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        if "eval" in record and "val_loss" in record["eval"]:
            points[int(record["step"])] = float(record["eval"]["val_loss"])
    steps = sorted(points)
    return Curve(method, list(tasks), Path(run_dir), max_steps, steps, [points[s] for s in steps], seed, point)


def curve_label(curve: Curve, panel: Sequence[Curve]) -> str | None:
    """A line's legend within its method's panel: its task where the panel's runs differ in tasks
    (a single-task method), its seed where they differ in seeds, its grid point where they differ in
    points; None for a panel of one line."""
    parts = []
    if len({tuple(c.tasks) for c in panel}) > 1:
        parts.append("+".join(curve.tasks))
    if len({c.seed for c in panel}) > 1:
        parts.append(f"seed {curve.seed}")
    if len({c.point for c in panel}) > 1:
        parts.append(curve.point or "final")
    return ", ".join(parts) or None


def line_style(curve: Curve, panel: Sequence[Curve]) -> tuple[str, str]:
    """(colour, line style) of a line in its panel: with several tasks (UniPELT), a colour per task
    and a line style per seed or grid point, so 7 tasks x 3 seeds (or 4 points) stay readable; else
    a colour per seed or grid point."""
    tasks = list(dict.fromkeys(tuple(c.tasks) for c in panel))
    variants = list(dict.fromkeys((c.seed, c.point) for c in panel))
    variant = variants.index((curve.seed, curve.point))
    if len(tasks) > 1:
        return f"C{tasks.index(tuple(curve.tasks)) % 10}", LINE_STYLES[variant % len(LINE_STYLES)]
    return f"C{variant % 10}", "-"


def plot_curves(curves: Sequence[Curve], path: str | Path, *, title: str | None = None) -> None:
    """One small panel per method: validation loss against step, the last fifth shaded.

    The runs of a method share a panel, one line per run (per task for a single-task method, per
    seed with several seeds), labelled by what tells them apart (:func:`curve_label`).
    """
    import matplotlib

    matplotlib.use("Agg")  # files only: never needs a display
    import matplotlib.pyplot as plt

    methods = list(dict.fromkeys(curve.method for curve in curves))
    columns = min(3, len(methods)) or 1
    rows = -(-len(methods) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(3.4 * columns, 2.6 * rows), squeeze=False)
    for ax, method in zip(axes.flat, methods):
        mine = [curve for curve in curves if curve.method == method]
        labels = [curve_label(curve, mine) for curve in mine]
        for curve, label in zip(mine, labels):
            colour, style = line_style(curve, mine)
            ax.plot(curve.steps, curve.val_loss, marker=".", linewidth=1, label=label, color=colour, linestyle=style)
        end = max(curve.max_steps for curve in mine)
        ax.axvspan(end * (1 - LAST_PART), end, color="0.9", zorder=0)
        verdicts = {curve.converged for curve in mine}
        state = "converged" if verdicts == {True} else "not converged" if False in verdicts else "too few points"
        ax.set_title(f"{method} ({state})", fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.set_ylabel("val loss", fontsize=8)
        ax.tick_params(labelsize=7)
        if any(labels):
            _legend(ax, mine)
    for ax in list(axes.flat)[len(methods):]:
        ax.axis("off")
    if title:
        figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _legend(ax, panel: Sequence[Curve]) -> None:
    """A panel's legend: one entry per line; where the lines vary in task and in seed or grid point
    (UniPELT: 7 tasks x 3 seeds or 4 points), one entry per task (its colour) and one per seed or
    point (its line style), so 28 lines take 11 entries and leave the curves visible."""
    from matplotlib.lines import Line2D

    tasks = list(dict.fromkeys(tuple(c.tasks) for c in panel))
    variants = list(dict.fromkeys((c.seed, c.point) for c in panel))
    if len(tasks) < 2 or len(variants) < 2:
        ax.legend(fontsize=6)
        return
    seeds_vary, points_vary = len({c.seed for c in panel}) > 1, len({c.point for c in panel}) > 1

    def variant_label(seed: int | None, point: str | None) -> str:
        parts = [f"seed {seed}"] * seeds_vary + [point or "final"] * points_vary
        return ", ".join(parts)

    handles = [Line2D([], [], color=f"C{i % 10}", label="+".join(task)) for i, task in enumerate(tasks)]
    handles += [
        Line2D([], [], color="0.3", linestyle=LINE_STYLES[i % len(LINE_STYLES)], label=variant_label(*variant))
        for i, variant in enumerate(variants)
    ]
    ax.legend(handles=handles, fontsize=5, ncol=2)
