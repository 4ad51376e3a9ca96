"""The comparison's results: long-form rows, and one paper-layout table per fraction and backbone."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from hlcli.compare.facts import SINGLE_TASK_MARK, display_name, is_single_task
from hlcli.compare.pace import Spent, time_spent
from hlcli.compare.stats import CellStats, cell_stats, tied
from hlcli.compare.tune import TuneSpec, TuningPoint, describe
from hlcli.data.corpora import CORPORA, task_title

RESULT_COLUMNS = ["method", "model", "fraction", "seed", "task", "f1", "total", "trainable", "run_dir"]
AVERAGE = "Average"
TUNED_ROW = "Tuned (val)"  # the row naming each tuned method's chosen setting
TIE_MARK = "≈"  # not significantly worse than the row's best (paired bootstrap, p ≥ 0.05)
EDGE_MARK = "(grid edge)"  # a tuned setting chosen at the end of its numeric grid


@dataclass
class CompareResult:
    """Long-form results (one row per run and task) and what was done to get them."""

    output_dir: Path | None
    split: str
    methods: list[str]
    fractions: list[float]
    tasks: list[str]
    results: pd.DataFrame
    unavailable: dict[str, str] = field(default_factory=dict)
    trained: list[Path] = field(default_factory=list)
    evaluated: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    busy: list[Path] = field(default_factory=list)  # runs another process was training (left to it)
    model: str | None = None
    superseded: list[Path] = field(default_factory=list)  # stale runs moved aside (hlcli.compare.execute.set_aside)
    stale: list[str] = field(default_factory=list)  # collected runs trained at an earlier module revision
    tuning: list[TuningPoint] = field(default_factory=list)  # every grid point, chosen ones marked
    grids: dict[str, TuneSpec] = field(default_factory=dict)  # method → its grid and budget
    fixed: dict[tuple[str, float], dict[str, Any]] = field(default_factory=dict)  # one-point grids

    def chosen(self, fraction: float) -> dict[str, str]:
        """Method → what its tuning chose at ``fraction`` (as printed); {} without a grid."""
        if not self.grids and not self.fixed:
            return {}
        out = {}
        for method in self.methods:
            points = [p for p in self.tuning if p.method == method and p.fraction == fraction]
            best = next((p for p in points if p.chosen), None)
            if best is not None:
                out[method] = describe(best.setting) + (f" {EDGE_MARK}" if best.at_edge else "")
            elif points and all(p.diverged for p in points):
                out[method] = "every point diverged"
            elif points:
                out[method] = f"tuning: {sum(p.val_avg_f1 is not None for p in points)}/{len(points)} points"
            elif (method, fraction) in self.fixed:
                out[method] = describe(self.fixed[method, fraction]) + " (fixed)"
            else:
                out[method] = "not tuned"
        return out

    def edge_warnings(self) -> list[str]:
        return edge_warnings(self.tuning)

    def groups(self) -> list[tuple[float, str | None]]:
        """(fraction, backbone) of each table: the recipe's fractions, or what the runs hold."""
        if self.model is not None or not len(self.results):
            return [(f, self.model) for f in self.fractions]
        seen = self.results[["fraction", "model"]].drop_duplicates()
        return sorted(((float(f), m) for f, m in seen.itertuples(index=False)), key=lambda g: (-g[0], str(g[1])))

    def tables(self, *, paper: bool = False) -> list[ComparisonTable]:
        return [comparison_table(self, f, model=m, paper=paper) for f, m in self.groups()]

    def training_time(self) -> dict[str, Spent]:
        """Each method's training time so far (:func:`~hlcli.compare.pace.time_spent`) over its
        tabled runs and every grid point, in the comparison's method order."""
        run_dirs: dict[str, list[Path]] = {}
        for point in self.tuning:
            run_dirs.setdefault(point.method, []).extend(point.run_dirs)
        for method, run_dir in zip(self.results["method"], self.results["run_dir"]):
            run_dirs.setdefault(method, []).append(Path(run_dir))
        spent = time_spent(run_dirs)
        return {method: spent[method] for method in self.methods if method in spent}

    def to_json(self, *, paper: bool = False) -> dict[str, Any]:
        return {
            "output_dir": None if self.output_dir is None else str(self.output_dir),
            "split": self.split,
            "methods": self.methods,
            "fractions": self.fractions,
            "tasks": self.tasks,
            "unavailable": self.unavailable,
            "missing": self.missing,
            "results": records(self.results),
            "tables": [table.to_json() for table in self.tables(paper=paper)],
            "tuning": [point.to_json() for point in self.tuning],
            "training_time": {m: dataclasses.asdict(s) for m, s in self.training_time().items()},
        }


@dataclass
class ComparisonTable:
    """One table: rows are datasets + Average, columns are methods (paper layout).

    ``scores`` holds the mean over seeds (NaN where a run is missing), ``std`` the standard
    deviation over seeds (NaN with one seed), ``stats`` the bootstrap intervals and p-values;
    ``notes`` replaces a whole column by a text such as "n/a (needs decoder)"; ``paper`` holds
    the paper's published columns, if any.
    """

    fraction: float
    split: str
    scores: pd.DataFrame
    headers: dict[str, str]
    notes: dict[str, str] = field(default_factory=dict)
    paper: pd.DataFrame | None = None
    paper_headers: dict[str, str] = field(default_factory=dict)
    std: pd.DataFrame | None = None
    seeds: dict[str, int] = field(default_factory=dict)
    stats: CellStats | None = None
    model: str | None = None
    heading: str | None = None
    chosen: dict[str, str] = field(default_factory=dict)  # method → tuned setting (the TUNED_ROW)
    seed_range: dict[str, tuple[int, int]] = field(default_factory=dict)  # method → (fewest, most) seeds of a dataset

    @property
    def title(self) -> str:
        if self.heading is not None:
            return self.heading
        from hlcli.compare.paper import TABLE_FOR_FRACTION

        layout = TABLE_FOR_FRACTION.get(self.fraction)
        data = "full training data" if self.fraction == 1.0 else f"{self.fraction:.0%} of the training data"
        backbone = f", {self.model}" if self.model else ""
        return f"{self.split} micro-F1, {data}{backbone}" + (f" (the paper's {layout} layout)" if layout else "")

    def best(self) -> dict[str, list[str]]:
        """Row → the columns with the highest score among our methods (ties at 4 decimals all count)."""
        return best_of(self.scores)

    def tied(self) -> dict[str, list[str]]:
        """Row → methods the paired bootstrap cannot tell from the row's best at 0.05."""
        return tied(self.stats, self.best())

    def cells(
        self, *, bold: Callable[[str], str] = lambda text: text, tie: str = TIE_MARK
    ) -> tuple[list[str], list[list[str]]]:
        """Header and body as text: 4 decimals (± std over seeds), best through ``bold``, ties marked,
        paper columns last."""
        header = ["Dataset"] + [self.headers[m] for m in self.scores.columns]
        paper = self.paper if self.paper is not None else pd.DataFrame(index=self.scores.index)
        header += [self.paper_headers[c] for c in paper.columns]
        best, ties, paper_best = self.best(), self.tied(), best_of(paper)
        body = []
        for row in self.scores.index:
            line = [row]
            for method in self.scores.columns:
                if method in self.notes:
                    line.append(self.notes[method])
                    continue
                text = self._text(row, method)
                line.append(bold(text) if method in best[row] else text + tie if method in ties.get(row, []) else text)
            for column in paper.columns:
                text = number(paper.at[row, column])
                line.append(bold(text) if column in paper_best[row] else text)
            body.append(line)
        if self.chosen:
            chosen = [self.notes.get(m, self.chosen.get(m, "")) for m in self.scores.columns]
            body.append([TUNED_ROW] + chosen + [""] * len(paper.columns))
        return header, body

    def _text(self, row: str, method: str) -> str:
        text = number(self.scores.at[row, method])
        spread = math.nan if self.std is None else self.std.at[row, method]
        return text if missing(spread) or text == "—" else f"{text} ± {spread:.4f}"

    def delta_paper(self) -> pd.DataFrame | None:
        """Ours minus published, per cell, for the methods the paper ran on this backbone (else None)."""
        from hlcli.compare.paper import paper_column

        columns = {m: paper_column(m, self.model, self.fraction) for m in self.scores.columns if m not in self.notes}
        columns = {m: c for m, c in columns.items() if c is not None}
        if not columns:
            return None
        delta = pd.DataFrame(index=self.scores.index, columns=list(columns), dtype=float)
        for method, column in columns.items():
            published = paper_values(column, _tasks_of(self.scores.index))
            delta[method] = self.scores[method] - pd.Series(published, index=self.scores.index)
        return delta

    def to_json(self) -> dict[str, Any]:
        def frame(data: pd.DataFrame | None) -> dict[str, dict[str, float | None]]:
            return _by_column(None if data is None else data.T)  # row -> method -> value

        delta = self.delta_paper()
        return {
            "fraction": self.fraction,
            "model": self.model,
            "title": self.title,
            "columns": [self.headers[m] for m in self.scores.columns],
            "methods": list(self.scores.columns),
            "rows": frame(self.scores),
            "std": frame(self.std),
            "seeds": self.seeds,
            "ci95_low": frame(self.stats.ci_low if self.stats else None),
            "ci95_high": frame(self.stats.ci_high if self.stats else None),
            "p_vs_best": frame(self.stats.p_value if self.stats else None),
            "best": self.best(),
            "tied_with_best": self.tied(),
            "notes": self.notes,
            "chosen": self.chosen,
            "paper": {self.paper_headers[c]: v for c, v in _by_column(self.paper).items()},
            "delta_paper": _by_column(delta),
        }


def _by_column(data: pd.DataFrame | None) -> dict[str, dict[str, float | None]]:
    if data is None:
        return {}
    return {c: {r: (None if missing(v) else float(v)) for r, v in values.items()} for c, values in data.items()}


def comparison_table(
    result: CompareResult, fraction: float, *, model: str | None = None, paper: bool = False, intervals: bool = True
) -> ComparisonTable:
    """The paper-layout table of one fraction and backbone (with the paper's columns when ``paper``)."""
    frame = result.results[result.results["fraction"] == fraction]
    if model is not None and len(frame):
        frame = frame[frame["model"] == model]
    titles = [task_title(task) for task in result.tasks]
    index = titles + [AVERAGE]
    methods = [
        m for m in result.methods if m in result.unavailable or (frame["method"] == m).any() or result.model is not None
    ]
    scores = pd.DataFrame(index=index, columns=methods, dtype=float)
    std = pd.DataFrame(index=index, columns=methods, dtype=float)
    headers, seeds, seed_range = {}, {}, {}
    for method in methods:
        rows = frame[frame["method"] == method]
        _fill_column(scores, std, method, rows, result.tasks, titles)
        headers[method] = method_header(method, rows)
        seeds[method] = int(rows["seed"].nunique(dropna=False)) if len(rows) else 0
        per_task = [int(rows[rows["task"] == task]["seed"].nunique(dropna=False)) for task in result.tasks]
        seed_range[method] = (min(per_task, default=0), max(per_task, default=0))
    table = ComparisonTable(
        fraction=fraction, split=result.split, scores=scores, headers=headers,
        notes={m: note for m, note in result.unavailable.items() if m in methods},
        std=std if any(n > 1 for n in seeds.values()) else None, seeds=seeds, model=model,
        chosen={m: c for m, c in result.chosen(fraction).items() if m in methods}, seed_range=seed_range,
    )
    if intervals and len(frame):
        live = [m for m in methods if m not in table.notes]
        table.stats = cell_stats(frame, result.tasks, titles, live, result.split, table.best(), AVERAGE)
    if paper:
        add_paper_columns(table, result.tasks)
    return table


def _fill_column(
    scores: pd.DataFrame, std: pd.DataFrame, method: str, rows: pd.DataFrame, tasks: list[str], titles: list[str]
) -> None:
    """Mean and spread over seeds per dataset; the Average per seed first (the paper's plain mean)."""
    per_seed = None
    if len(rows):
        per_seed = rows.pivot_table(index="task", columns=rows["seed"].fillna(-1), values="f1", aggfunc="first")
    for task, title in zip(tasks, titles):
        if per_seed is not None and task in per_seed.index:
            values = per_seed.loc[task].dropna()
            scores.at[title, method] = values.mean()
            std.at[title, method] = values.std(ddof=1) if len(values) > 1 else math.nan
    if per_seed is not None and all(t in per_seed.index for t in tasks) and per_seed.loc[tasks].notna().all().all():
        averages = per_seed.loc[tasks].mean(axis=0)  # one Average per seed, then their mean ± std
        scores.at[AVERAGE, method] = averages.mean()
        std.at[AVERAGE, method] = averages.std(ddof=1) if len(averages) > 1 else math.nan


def method_header(method: str, rows: pd.DataFrame) -> str:
    """``HyperLoader [229.6M/6.8M]``; single-task methods sum their per-task models and carry †."""
    name = display_name(method) + (SINGLE_TASK_MARK if is_single_task(method) else "")
    counts = one_seed(rows).drop_duplicates("run_dir")[["total", "trainable"]].dropna()
    if not len(counts):
        return name
    return f"{name} [{format_count(int(counts['total'].sum()))}/{format_count(int(counts['trainable'].sum()))}]"


def one_seed(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows of one seed: parameter counts are summed over one seed's models (every seed trains the same)."""
    return rows[rows["seed"].isna()] if rows["seed"].isna().any() else rows[rows["seed"] == rows["seed"].min()]


def format_count(n: int) -> str:
    """229640304 → ``229.6M``, 85312 → ``85.3K`` (the paper's bracket style)."""
    if n >= 1_000_000:
        return f"{n / 1e6:.1f}M"
    if n >= 1_000:
        return f"{n / 1e3:.1f}K"
    return str(n)


def add_paper_columns(table: ComparisonTable, tasks: list[str], *, mark: str = " (paper)") -> None:
    """The paper's columns of this fraction, marked "(paper)"; best marks recomputed, never copied."""
    from hlcli.compare.paper import published

    frame = pd.DataFrame(index=table.scores.index, dtype=float)
    for column in published(table.fraction):
        key = f"paper:{column.method}"
        frame[key] = paper_values(column, tasks)
        table.paper_headers[key] = column.header + mark
    table.paper = frame if len(frame.columns) else None


def paper_values(column, tasks: list[str]) -> list[float]:
    """A published column over ``tasks`` + Average: the printed Average for all seven datasets,
    else the mean of the shown ones (the printed one averages rows the table does not show)."""
    from hlcli.compare.paper import AVERAGE_KEY, PAPER_TASK_ORDER

    values = [column.f1.get(task, math.nan) for task in tasks]
    if sorted(tasks) == sorted(PAPER_TASK_ORDER):
        return values + [column.f1[AVERAGE_KEY]]
    return values + [sum(values) / len(values) if values and not any(map(math.isnan, values)) else math.nan]


def _tasks_of(index) -> list[str]:
    by_title = {CORPORA[t].title: t for t in CORPORA}
    return [by_title[row] for row in index if row in by_title]


def best_of(frame: pd.DataFrame) -> dict[str, list[str]]:
    """Row → its columns holding the row's maximum as printed (4 decimals), so ties are all bold."""
    best: dict[str, list[str]] = {}
    for row, values in frame.round(4).iterrows():
        values = values.dropna()
        best[row] = [c for c, v in values.items() if v == values.max()] if len(values) else []
    return best


def number(value: Any) -> str:
    return "—" if missing(value) else f"{value:.4f}"


def missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def edge_warnings(points: list[TuningPoint]) -> list[str]:
    """One line per tuned method whose chosen point is at the end of a numeric grid: the best
    setting may lie beyond it (widen the grid; finished points are reused)."""
    lines = []
    for point in points:
        if point.chosen and point.at_edge:
            where = f"{display_name(point.method)} (fraction {point.fraction:g})"
            lines.append(
                f"{where}: the chosen point is at its grid's edge ({'; '.join(point.at_edge)}): the best setting "
                "may lie beyond it; widen the grid in [compare.tune] and run again (finished points are reused)"
            )
    return lines


def tuning_frame(points: list[TuningPoint]) -> pd.DataFrame:
    """One row per grid point: method, fraction, the point (text and one column per tuned
    setting), seed, steps, average validation F1, each task's, chosen, run folders."""
    keys = list(dict.fromkeys(k for p in points for k in p.setting))
    tasks = list(dict.fromkeys(t for p in points for t in p.tasks))
    rows = []
    for p in points:
        average = p.val_avg_f1
        rows.append({
            "method": p.method, "fraction": p.fraction, "point": describe(p.setting),
            **{k: p.setting.get(k) for k in keys},
            "seed": p.seed, "steps": p.steps, "val_avg_f1": average, **{f"val_f1_{t}": p.scores.get(t) for t in tasks},
            "chosen": p.chosen, "diverged": p.diverged or "", "at_edge": "; ".join(p.at_edge),
            "run_dirs": ";".join(str(d) for d in p.run_dirs),
        })
    return pd.DataFrame(rows)


def _integral(key: str, value: Any) -> Any:
    # pandas stores these integer columns as floats once a row lacks them (NaN).
    return int(value) if key in ("total", "trainable", "seed") else value


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    out = []
    for row in frame.to_dict(orient="records"):
        out.append({k: None if missing(v) else _integral(k, v) for k, v in row.items()})
    return out
