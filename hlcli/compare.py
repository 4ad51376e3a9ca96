"""``hl compare``: train (or collect) every method of a recipe and lay the results out like the
paper's Tables 3 and 4 (one table per training-data fraction) and its Figure 2.

A recipe is an ``hl train`` recipe plus a ``[compare]`` table::

    tasks = ["atis", "snips"]
    model = "t5-base"
    max_steps = 65536

    [compare]
    methods = ["hyperloader", "hyperformer", "unipelt"]
    fractions = [0.1, 0.2]
    split = "test"

    [compare.overrides.full-finetune]   # TrainConfig settings for one method only
    lr = 1e-4

Multi-task methods train one model on all tasks; single-task methods (:data:`SINGLE_TASK_METHODS`)
train one model per task. Each run lives in ``<compare dir>/runs/<method>-<fraction>[-<task>]-<hash>``
where the hash covers the fully resolved :class:`~hlcli.config.TrainConfig`, so a changed setting
makes a new run and an unchanged one is found again: a run whose ``eval.json`` scores all its tasks
on the split is skipped, a run with ``checkpoints/last`` is resumed. An interrupted compare
therefore continues where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import pandas as pd

from hlcli import runs
from hlcli.config import TrainConfig, check_keys, read_recipe
from hlcli.data.corpora import CORPORA, SPLITS, task_title
from hlcli.data.sources import recipe_tasks
from hlcli.errors import HLError, UsageError, unknown_name
from hlcli.io import atomic_write, write_json

Log = Callable[[str], None]

COMPARE_SECTION = "compare"  # listed in hlcli.config.OTHER_SECTIONS: `hl train` ignores it
COMPARE_KEYS = ("methods", "fractions", "split", "overrides")
# Methods that train one model per dataset (the paper's single-task baselines).
SINGLE_TASK_METHODS = frozenset({"unipelt"})
# Methods that adapt a decoder: they cannot run on an encoder-only backbone such as MiniLM.
DECODER_METHODS = frozenset({"hyperdecoder"})
# Column names as printed in the paper.
DISPLAY_NAMES = {
    "hyperloader": "HyperLoader",
    "hyperformer": "HyperFormer++",
    "hyperdecoder": "Hyperdecoder",
    "unipelt": "UniPELT",
    "lora-only": "LoRA",
    "static": "Static",
    "full-finetune": "Fine-tuning",
}
SINGLE_TASK_MARK = "†"
RESULT_COLUMNS = ["method", "fraction", "task", "f1", "total", "trainable", "run_dir"]
AVERAGE = "Average"


@dataclass
class PlannedRun:
    """One training run of the comparison (or the reason it cannot run)."""

    method: str
    fraction: float
    tasks: list[str]
    config: TrainConfig | None
    run_dir: Path | None
    unavailable: str | None = None

    @property
    def label(self) -> str:
        scope = "+".join(self.tasks) if self.method in SINGLE_TASK_METHODS else "all tasks"
        return f"{self.method} (fraction {self.fraction:g}, {scope})"


@dataclass
class ComparePlan:
    recipe: Path
    output_dir: Path
    methods: list[str]
    fractions: list[float]
    tasks: list[str]
    split: str
    runs: list[PlannedRun]


@dataclass
class CompareResult:
    """Long-form results (one row per method, fraction and task) and what was done to get them."""

    output_dir: Path
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

    def tables(self) -> list[ComparisonTable]:
        return [comparison_table(self, fraction) for fraction in self.fractions]

    def to_json(self) -> dict[str, Any]:
        return {
            "output_dir": str(self.output_dir),
            "split": self.split,
            "methods": self.methods,
            "fractions": self.fractions,
            "tasks": self.tasks,
            "unavailable": self.unavailable,
            "missing": self.missing,
            "results": _records(self.results),
            "tables": [table.to_json() for table in self.tables()],
        }


@dataclass
class ComparisonTable:
    """One fraction's table: rows are datasets + Average, columns are methods (paper layout).

    ``scores`` holds floats (NaN where a run is missing); ``notes`` replaces a whole column by a
    text such as "n/a (needs decoder)"; ``paper`` holds the paper's published columns, if any.
    """

    fraction: float
    split: str
    scores: pd.DataFrame
    headers: dict[str, str]
    notes: dict[str, str] = field(default_factory=dict)
    paper: pd.DataFrame | None = None
    paper_headers: dict[str, str] = field(default_factory=dict)

    @property
    def title(self) -> str:
        from hlcli.paper import TABLE_FOR_FRACTION

        layout = TABLE_FOR_FRACTION.get(self.fraction)
        data = "full training data" if self.fraction == 1.0 else f"{self.fraction:.0%} of the training data"
        return f"{self.split} micro-F1, {data}" + (f" (the paper's {layout} layout)" if layout else "")

    def best(self) -> dict[str, list[str]]:
        """Row → the columns with the highest score among our methods (ties at 4 decimals all count)."""
        return _best(self.scores)

    def cells(self, *, bold: Callable[[str], str] = lambda text: text) -> tuple[list[str], list[list[str]]]:
        """Header and body as text: 4 decimals, best of each row through ``bold``, paper columns last."""
        header = ["Dataset"] + [self.headers[m] for m in self.scores.columns]
        paper = self.paper if self.paper is not None else pd.DataFrame(index=self.scores.index)
        header += [self.paper_headers[c] for c in paper.columns]
        best, paper_best = self.best(), _best(paper)
        body = []
        for row in self.scores.index:
            line = [row]
            for method in self.scores.columns:
                if method in self.notes:
                    line.append(self.notes[method])
                    continue
                value = self.scores.at[row, method]
                text = "—" if _missing(value) else f"{value:.4f}"
                line.append(bold(text) if method in best[row] else text)
            for column in paper.columns:
                value = paper.at[row, column]
                text = "—" if _missing(value) else f"{value:.4f}"
                line.append(bold(text) if column in paper_best[row] else text)
            body.append(line)
        return header, body

    def to_json(self) -> dict[str, Any]:
        return {
            "fraction": self.fraction,
            "title": self.title,
            "columns": [self.headers[m] for m in self.scores.columns],
            "methods": list(self.scores.columns),
            "rows": {
                row: {m: (None if _missing(v) else float(v)) for m, v in values.items()}
                for row, values in self.scores.iterrows()
            },
            "best": self.best(),
            "notes": self.notes,
            "paper": {
                self.paper_headers[column]: {row: (None if _missing(v) else float(v)) for row, v in values.items()}
                for column, values in (self.paper.items() if self.paper is not None else [])
            },
        }


# -- planning ------------------------------------------------------------------------------
def read_compare_recipe(recipe: str | Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(train settings, [compare] table)`` of a recipe, both checked for unknown keys."""
    data = dict(read_recipe(recipe))
    section = data.pop(COMPARE_SECTION, {})
    data = recipe_tasks(data, recipe=recipe)  # [tasks.NAME] tables: own data
    if not isinstance(section, dict):
        raise HLError(f"[{COMPARE_SECTION}] must be a table", path=recipe)
    check_keys(data, source=recipe)
    for key in section:
        if key not in COMPARE_KEYS:
            raise HLError(f"unknown [{COMPARE_SECTION}] setting {key!r}", path=recipe, expected="one of " + ", ".join(COMPARE_KEYS))
    if not isinstance(section.get("overrides", {}), dict):
        raise HLError(f"[{COMPARE_SECTION}.overrides] must be a table of method tables", path=recipe)
    for method, overrides in section.get("overrides", {}).items():
        if not isinstance(overrides, dict):
            raise HLError(f"[{COMPARE_SECTION}.overrides.{method}] must be a table", path=recipe)
        check_keys(overrides, source=recipe)
    return data, section


def plan(
    *,
    recipe: str | Path,
    methods: Sequence[str] | None = None,
    fractions: Sequence[float] | None = None,
    tasks: Sequence[str] | None = None,
    data_dir: str | Path | None = None,
    output_dir: str | Path | None = None,
    model: str | None = None,
    max_steps: int | None = None,
) -> ComparePlan:
    """Resolve the recipe and the overrides into the list of runs (nothing is trained)."""
    from hlcli.methods import known_methods

    recipe = Path(recipe)
    settings, section = read_compare_recipe(recipe)
    methods = list(methods or section.get("methods") or [])
    if not methods:
        raise UsageError("no methods to compare", path=recipe, expected=f"methods = [...] in [{COMPARE_SECTION}] or --methods")
    known = known_methods()
    for method in methods:
        if method not in known:
            raise unknown_name("method", method, known)
    if len(set(methods)) != len(methods):
        raise UsageError(f"duplicate method in {methods}")
    overrides = section.get("overrides", {})
    for method in overrides:
        if method not in known:
            raise unknown_name("method", method, known)

    fractions = [float(f) for f in (fractions or section.get("fractions") or [settings.get("fraction", 1.0)])]
    for fraction in fractions:
        if not 0.0 < fraction <= 1.0:
            raise UsageError(f"fraction {fraction} out of range", expected="0 < fraction <= 1")
    split = section.get("split", "test")
    if split not in SPLITS:
        raise unknown_name("split", split, SPLITS)
    tasks = list(tasks or settings.get("tasks") or CORPORA)
    for task in tasks:
        if task not in CORPORA and task not in settings.get("task_sources", {}):
            raise unknown_name("task", task, list(CORPORA) + list(settings.get("task_sources", {})))

    base = {**settings, "tasks": tasks}
    # Flags win over the recipe, its per-method overrides included.
    flags = {k: str(v) if isinstance(v, Path) else v for k, v in (("data_dir", data_dir), ("model", model), ("max_steps", max_steps)) if v is not None}
    base.update(flags)
    out = Path(output_dir) if output_dir is not None else Path("compare") / recipe.stem
    # Only looked up when it matters: reading a backbone's config needs the backbone at hand.
    encoder_only = any(m in DECODER_METHODS for m in methods) and _encoder_only(base.get("model", TrainConfig.model))

    planned: list[PlannedRun] = []
    for fraction in fractions:
        for method in methods:
            if method in DECODER_METHODS and encoder_only:
                planned.append(PlannedRun(method, fraction, tasks, None, None, unavailable="n/a (needs decoder)"))
                continue
            groups = [[task] for task in tasks] if method in SINGLE_TASK_METHODS else [tasks]
            for group in groups:
                data = {**base, **overrides.get(method, {}), **flags, "method": method, "fraction": fraction, "tasks": group}
                data.pop("output_dir", None)
                config = TrainConfig.from_dict(data, source=recipe)
                name = f"{method}-{fraction:g}" + (f"-{group[0]}" if method in SINGLE_TASK_METHODS else "")
                config.output_dir = str(out / "runs" / f"{name}-{config_hash(config)}")
                planned.append(PlannedRun(method, fraction, group, config, Path(config.output_dir)))
    return ComparePlan(recipe, out, methods, fractions, tasks, split, planned)


def config_hash(config: TrainConfig) -> str:
    """8 hex digits identifying what a run computes (not where it lives or reads its data).

    Settings left at their default are not part of the identity, so a later hlcli that adds a
    setting (with a default that computes what the old code did) still finds the runs it made.
    """
    defaults = TrainConfig.defaults()
    identity = {
        k: v
        for k, v in config.to_dict().items()
        if k not in ("output_dir", "data_dir") and (k not in defaults or v != defaults[k])
    }
    return hashlib.sha1(json.dumps(identity, sort_keys=True).encode("utf-8")).hexdigest()[:8]


def _encoder_only(model: str) -> bool:
    from hlcli.backbones import SEQ2SEQ_MODEL_TYPES, load_backbone_config

    return load_backbone_config(model).model_type not in SEQ2SEQ_MODEL_TYPES


# -- running ------------------------------------------------------------------------------
def compare(
    *,
    recipe: str | Path,
    methods: Sequence[str] | None = None,
    fractions: Sequence[float] | None = None,
    tasks: Sequence[str] | None = None,
    data_dir: str | Path | None = None,
    output_dir: str | Path | None = None,
    model: str | None = None,
    max_steps: int | None = None,
    collect_only: bool = False,
    log: Log | None = None,
) -> CompareResult:
    """Train and evaluate every planned run that is not finished yet (none with ``collect_only``),
    then collect all results into ``<output dir>/results.csv`` and ``results.json``."""
    say = log or (lambda line: None)
    the_plan = plan(
        recipe=recipe,
        methods=methods,
        fractions=fractions,
        tasks=tasks,
        data_dir=data_dir,
        output_dir=output_dir,
        model=model,
        max_steps=max_steps,
    )
    result = CompareResult(
        output_dir=the_plan.output_dir,
        split=the_plan.split,
        methods=the_plan.methods,
        fractions=the_plan.fractions,
        tasks=the_plan.tasks,
        results=pd.DataFrame(columns=RESULT_COLUMNS),
    )
    rows: list[dict[str, Any]] = []
    todo = [r for r in the_plan.runs if r.unavailable is None]
    for index, run in enumerate(todo, 1):
        assert run.config is not None and run.run_dir is not None
        step = f"[{index}/{len(todo)}] {run.label}"
        if is_finished(run.run_dir, the_plan.split, run.tasks):
            result.skipped.append(run.run_dir)
            say(f"{step}: finished, skipped ({run.run_dir})")
        elif collect_only:
            result.missing.append(run.label)
            say(f"{step}: not finished, left out (--collect-only)")
            continue
        else:
            _train_and_evaluate(run, the_plan.split, result, say=lambda line, s=step: say(f"{s}: {line}"))
        rows.extend(_collect(run, the_plan.split))
    for run in the_plan.runs:
        if run.unavailable is not None:
            result.unavailable[run.method] = run.unavailable

    result.results = pd.DataFrame(rows, columns=RESULT_COLUMNS)
    the_plan.output_dir.mkdir(parents=True, exist_ok=True)
    with atomic_write(the_plan.output_dir / "results.csv") as handle:
        result.results.to_csv(handle, index=False)
    write_json(the_plan.output_dir / "results.json", _records(result.results))
    return result


def is_finished(run_dir: Path, split: str, tasks: Sequence[str]) -> bool:
    """True when ``eval.json`` scores every task of the run on ``split``."""
    path = run_dir / runs.EVAL
    if not path.is_file():
        return False
    try:
        scored = json.loads(path.read_text(encoding="utf-8")).get(split, {}).get("tasks", {})
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        return False
    return all(task in scored and "f1" in scored[task] for task in tasks)


def _train_and_evaluate(run: PlannedRun, split: str, result: CompareResult, *, say: Log) -> None:
    from hlcli.evaluation import evaluate
    from hlcli.training import train

    assert run.config is not None and run.run_dir is not None
    last = runs.checkpoint_dir(run.run_dir, runs.LAST)
    if runs.is_checkpoint_dir(last):
        steps = runs.checkpoint_step(last)
        if steps < run.config.max_steps:
            say(f"resuming at step {steps} ({run.run_dir})")
            train(run.config, resume=True)
            result.trained.append(run.run_dir)
    else:
        if run.run_dir.exists():
            # Stopped before its first checkpoint: nothing to resume, start over.
            shutil.rmtree(run.run_dir)
        say(f"training {run.config.max_steps} steps ({run.run_dir})")
        train(run.config)
        result.trained.append(run.run_dir)
    say(f"evaluating on {split}")
    evaluate(run.run_dir, split=split, data_dir=run.config.data_dir, batch_size=run.config.eval_batch_size)
    result.evaluated.append(run.run_dir)


def _collect(run: PlannedRun, split: str) -> list[dict[str, Any]]:
    from hlcli.checkpoint import read_checkpoint_config

    assert run.run_dir is not None
    scores = json.loads((run.run_dir / runs.EVAL).read_text(encoding="utf-8"))[split]["tasks"]
    checkpoint, _ = runs.resolve_checkpoint(run.run_dir)
    parameters = read_checkpoint_config(checkpoint).get("parameters", {})
    return [
        {
            "method": run.method,
            "fraction": run.fraction,
            "task": task,
            "f1": float(scores[task]["f1"]),
            "total": parameters.get("total"),
            "trainable": parameters.get("trainable"),
            "run_dir": str(run.run_dir),
        }
        for task in run.tasks
    ]


# -- tables ---------------------------------------------------------------------------------
def comparison_table(result: CompareResult, fraction: float, *, paper: bool = False) -> ComparisonTable:
    """The paper-layout table of one fraction (with the paper's columns when ``paper``)."""
    frame = result.results[result.results["fraction"] == fraction]
    titles = [task_title(task) for task in result.tasks]
    scores = pd.DataFrame(index=titles + [AVERAGE], columns=result.methods, dtype=float)
    headers: dict[str, str] = {}
    for method in result.methods:
        rows = frame[frame["method"] == method]
        for task, title in zip(result.tasks, titles):
            hit = rows[rows["task"] == task]
            if len(hit):
                scores.at[title, method] = float(hit["f1"].iloc[0])
        # The paper's Average: the plain mean of the per-dataset F1 (only when all are there).
        column = scores.loc[titles, method]
        scores.at[AVERAGE, method] = column.mean() if column.notna().all() else math.nan
        headers[method] = method_header(method, rows)
    table = ComparisonTable(
        fraction=fraction,
        split=result.split,
        scores=scores,
        headers=headers,
        notes={m: note for m, note in result.unavailable.items() if m in result.methods},
    )
    if paper:
        _add_paper_columns(table, result.tasks)
    return table


def method_header(method: str, rows: pd.DataFrame) -> str:
    """``HyperLoader [229.6M/6.8M]``; single-task methods sum their per-task models and carry †."""
    name = DISPLAY_NAMES.get(method, method) + (SINGLE_TASK_MARK if method in SINGLE_TASK_METHODS else "")
    counts = rows.drop_duplicates("run_dir")[["total", "trainable"]].dropna()
    if not len(counts):
        return name
    return f"{name} [{format_count(int(counts['total'].sum()))}/{format_count(int(counts['trainable'].sum()))}]"


def format_count(n: int) -> str:
    """229640304 → ``229.6M``, 85312 → ``85.3K`` (the paper's bracket style)."""
    if n >= 1_000_000:
        return f"{n / 1e6:.1f}M"
    if n >= 1_000:
        return f"{n / 1e3:.1f}K"
    return str(n)


def _add_paper_columns(table: ComparisonTable, tasks: list[str]) -> None:
    from hlcli.paper import published

    columns = published(table.fraction)
    if not columns:
        return
    frame = pd.DataFrame(index=table.scores.index, dtype=float)
    for column in columns:
        key = f"paper:{column.method}"
        values = [column.f1.get(task, math.nan) for task in tasks]
        average = column.f1.get(AVERAGE, sum(values) / len(values) if not any(map(math.isnan, values)) else math.nan)
        frame[key] = values + [average]
        counts = f" [{format_count(column.total)}/{format_count(column.trainable)}]" if column.total and column.trainable else ""
        table.paper_headers[key] = f"{column.label}{counts} (paper)"
    table.paper = frame


def to_markdown(table: ComparisonTable) -> str:
    header, body = table.cells(bold=lambda text: f"**{text}**")
    lines = [f"**{table.title}**", "", _md_row(header), _md_row(["---"] + ["---:"] * (len(header) - 1))]
    lines += [_md_row(row) for row in body]
    return "\n".join(lines) + "\n"


def _md_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


def to_latex(table: ComparisonTable) -> str:
    header, body = table.cells(bold=lambda text: f"\\textbf{{{text}}}")
    spec = "l" + "r" * (len(header) - 1)
    lines = [
        f"% {_latex_escape(table.title)}",
        f"\\begin{{tabular}}{{{spec}}}",
        "\\toprule",
        " & ".join(_latex_escape(cell) for cell in header) + " \\\\",
        "\\midrule",
    ]
    for row in body:
        if row[0] == AVERAGE:
            lines.append("\\midrule")
        lines.append(" & ".join(cell if cell.startswith("\\textbf") else _latex_escape(cell) for cell in row) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}"]
    return "\n".join(lines) + "\n"


def _latex_escape(text: str) -> str:
    for char, escaped in (("\\", "\\textbackslash{}"), ("&", "\\&"), ("%", "\\%"), ("_", "\\_"), ("#", "\\#"), ("†", "$^\\dagger$"), ("—", "--")):
        text = text.replace(char, escaped)
    return text


OUTPUT_FORMATS = ("markdown", "latex", "csv", "json")
_EXTENSIONS = {".md": "markdown", ".markdown": "markdown", ".tex": "latex", ".csv": "csv", ".json": "json"}


def output_format(path: str | Path, fmt: str | None = None) -> str:
    if fmt is not None:
        if fmt not in OUTPUT_FORMATS:
            raise unknown_name("format", fmt, OUTPUT_FORMATS)
        return fmt
    suffix = Path(path).suffix.lower()
    if suffix not in _EXTENSIONS:
        raise UsageError(f"cannot tell the format of {str(path)!r} from its extension", expected="--format " + " | ".join(OUTPUT_FORMATS))
    return _EXTENSIONS[suffix]


def write_output(result: CompareResult, path: str | Path, *, fmt: str | None = None, paper: bool = False) -> str:
    """Write the tables (Markdown/LaTeX) or the long-form results (CSV/JSON) to ``path``; returns the format."""
    fmt = output_format(path, fmt)
    tables = [comparison_table(result, f, paper=paper) for f in result.fractions]
    with atomic_write(path) as handle:
        if fmt == "markdown":
            handle.write("\n".join(to_markdown(t) for t in tables) + _footnote(result, "markdown"))
        elif fmt == "latex":
            handle.write("\n".join(to_latex(t) for t in tables) + _footnote(result, "latex"))
        elif fmt == "csv":
            result.results.to_csv(handle, index=False)
        else:
            data = result.to_json()
            data["tables"] = [t.to_json() for t in tables]
            handle.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    return fmt


def footnote(result: CompareResult) -> str:
    """What the † means, when a single-task method is in the comparison."""
    if not any(m in SINGLE_TASK_METHODS for m in result.methods):
        return ""
    return f"{SINGLE_TASK_MARK} single-task: one model per dataset; parameter counts summed over the {len(result.tasks)} models."


def _footnote(result: CompareResult, fmt: str) -> str:
    text = footnote(result)
    if not text:
        return ""
    return f"\n{text}\n" if fmt == "markdown" else f"% {_latex_escape(text)}\n"


# -- Figure 2 ---------------------------------------------------------------------------------
def plot_figure2(result: CompareResult, path: str | Path) -> None:
    """Average F1 against % trainable parameters (log x): one marker per method and fraction.

    Single-task methods get a hollow square and a legend note.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    markers = "o^vD<>Ph*X"
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    plotted = 0
    for index, method in enumerate(result.methods):
        single = method in SINGLE_TASK_METHODS
        xs, ys, labels = [], [], []
        for fraction in result.fractions:
            rows = result.results[(result.results["method"] == method) & (result.results["fraction"] == fraction)]
            if len(rows) != len(result.tasks):
                continue
            counts = rows.drop_duplicates("run_dir")[["total", "trainable"]].dropna()
            if not len(counts) or counts["total"].sum() <= 0:
                continue
            xs.append(100.0 * counts["trainable"].sum() / counts["total"].sum())
            ys.append(rows["f1"].mean())
            labels.append(f"{fraction:g}")
        if not xs:
            continue
        name = DISPLAY_NAMES.get(method, method) + (f" ({SINGLE_TASK_MARK} one model per dataset)" if single else "")
        color = f"C{index % 10}"
        style = dict(marker="s", facecolors="none", edgecolors=color) if single else dict(marker=markers[index % len(markers)], color=color)
        ax.scatter(xs, ys, s=60, label=name, **style)
        if len(result.fractions) > 1:
            for x, y, label in zip(xs, ys, labels):
                ax.annotate(label, (x, y), textcoords="offset points", xytext=(5, 4), fontsize=7)
        plotted += 1
    ax.set_xscale("log")
    ax.set_xlabel("% trainable parameters (log scale)")
    ax.set_ylabel(f"average {result.split} micro-F1")
    ax.set_title("Average F1 vs. trainable parameters (the paper's Figure 2 layout)", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    if plotted:
        ax.legend(fontsize=7, loc="best")
    else:
        ax.text(0.5, 0.5, "no finished runs", ha="center", va="center", transform=ax.transAxes)
    fig.tight_layout()
    with atomic_write(path, "wb", encoding=None) as handle:
        fig.savefig(handle, format="png", dpi=150)
    plt.close(fig)


# -- helpers -----------------------------------------------------------------------------------
def _best(frame: pd.DataFrame) -> dict[str, list[str]]:
    """Row → its columns holding the row's maximum as printed (4 decimals), so ties are all bold."""
    best: dict[str, list[str]] = {}
    for row, values in frame.round(4).iterrows():
        values = values.dropna()
        best[row] = [c for c, v in values.items() if v == values.max()] if len(values) else []
    return best


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    records = []
    for row in frame.to_dict(orient="records"):
        records.append({k: (None if _missing(v) else (int(v) if k in ("total", "trainable") else v)) for k, v in row.items()})
    return records
