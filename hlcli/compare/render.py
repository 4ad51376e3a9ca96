"""Writing comparison tables: Markdown, LaTeX, CSV (one row per cell) and JSON."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

import pandas as pd

from hlcli.compare.facts import SINGLE_TASK_MARK, display_name, is_single_task
from hlcli.compare.results import (
    AVERAGE,
    EDGE_MARK,
    TIE_MARK,
    TUNED_ROW,
    CompareResult,
    ComparisonTable,
    add_paper_columns,
    best_of,
    missing,
    tuning_frame,
)
from hlcli.compare.tune import TIE_DECIMALS, TUNE_SPLIT, describe
from hlcli.data.corpora import task_title
from hlcli.errors import UsageError, unknown_name
from hlcli.io import atomic_write

OUTPUT_FORMATS = ("markdown", "latex", "csv", "json")
_EXTENSIONS = {".md": "markdown", ".markdown": "markdown", ".tex": "latex", ".csv": "csv", ".json": "json"}


def to_markdown(table: ComparisonTable) -> str:
    header, body = table.cells(bold=lambda text: f"**{text}**")
    lines = [f"**{table.title}**", "", *_md_table(header, body)]
    delta = table.delta_paper()
    if delta is not None:
        rows = [[row] + [_signed(delta.at[row, m]) for m in delta.columns] for row in delta.index]
        header = ["Dataset"] + [display_name(m) for m in delta.columns]
        lines += ["", "Δ paper (ours − published, per cell):", "", *_md_table(header, rows)]
    return "\n".join(lines) + "\n"


def _md_table(header: Sequence[str], body: Sequence[Sequence[str]]) -> list[str]:
    return [_md_row(header), _md_row(["---"] + ["---:"] * (len(header) - 1))] + [_md_row(row) for row in body]


def _md_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


def _signed(value: float) -> str:
    return "—" if missing(value) else f"{value:+.4f}"


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
        if row[0] in (AVERAGE, TUNED_ROW):
            lines.append("\\midrule")
        lines.append(" & ".join(_latex_cell(c) for c in row) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}"]
    return "\n".join(lines) + "\n"


def _latex_cell(cell: str) -> str:
    """A cell in LaTeX: ``\\textbf{x}`` (a best score) keeps its command, its text escaped."""
    return f"\\textbf{{{_latex_escape(cell[8:-1])}}}" if cell.startswith("\\textbf") else _latex_escape(cell)


def _latex_escape(text: str) -> str:
    for char, escaped in (
        ("\\", "\\textbackslash{}"), ("&", "\\&"), ("%", "\\%"), ("_", "\\_"), ("#", "\\#"),
        ("†", "$^\\dagger$"), ("♣", "$^\\clubsuit$"), ("—", "--"), ("±", "$\\pm$"), (TIE_MARK, "$^\\approx$"),
    ):
        text = text.replace(char, escaped)
    return text


def output_format(path: str | Path, fmt: str | None = None) -> str:
    if fmt is not None:
        if fmt not in OUTPUT_FORMATS:
            raise unknown_name("format", fmt, OUTPUT_FORMATS)
        return fmt
    suffix = Path(path).suffix.lower()
    if suffix not in _EXTENSIONS:
        expected = "--format " + " | ".join(OUTPUT_FORMATS)
        raise UsageError(f"cannot tell the format of {str(path)!r} from its extension", expected=expected)
    return _EXTENSIONS[suffix]


def render_output(
    result: CompareResult | None, fmt: str, *, paper: bool = False, command: str | None = None
) -> str:
    """The tables as ``fmt`` text: Markdown/LaTeX (with footnotes), one row per cell (CSV) or
    everything (JSON). ``result=None``: the paper's published tables alone. ``command``: the
    command that made them (Markdown, LaTeX and JSON then say so, with hlcli's version and the date)."""
    tables = published_tables() if result is None else result.tables(paper=paper)
    stamp = made_with(command) if command else None
    if fmt == "markdown":
        notes = "".join(f"\n{line}\n" for line in footnotes(result, tables))
        text = "\n".join(to_markdown(t) for t in tables) + notes
        text += "\n" + tuning_markdown(result) if result is not None and result.tuning else ""
        return text + (f"\nMade with hlcli {stamp['hlcli']} on {stamp['date']}: `{command}`\n" if stamp else "")
    if fmt == "latex":
        notes = "".join(f"% {_latex_escape(line)}\n" for line in footnotes(result, tables))
        made = f"% Made with hlcli {stamp['hlcli']} on {stamp['date']}: {command}\n" if stamp else ""
        return "\n".join(to_latex(t) for t in tables) + notes + made
    if fmt == "csv":
        return cell_frame(tables).to_csv(index=False)
    data = result.to_json(paper=paper) if result is not None else {"tables": [t.to_json() for t in tables]}
    return json.dumps({**data, "made_with": stamp} if stamp else data, indent=2, ensure_ascii=False) + "\n"


def made_with(command: str) -> dict[str, str]:
    """What an output file records of how it was made: hlcli's version, the date (UTC), the command."""
    import hlcli

    return {"hlcli": hlcli.__version__, "date": datetime.now(timezone.utc).date().isoformat(), "command": command}


def write_output(
    result: CompareResult | None, path: str | Path, *, fmt: str | None = None, paper: bool = False,
    command: str | None = None,
) -> str:
    """Write :func:`render_output` to ``path`` (a CSV of a tuned comparison gets its grid points
    beside it, :func:`tuning_csv_path`). Returns the format."""
    fmt = output_format(path, fmt)
    with atomic_write(path) as handle:
        handle.write(render_output(result, fmt, paper=paper, command=command))
    if fmt == "csv" and result is not None and result.tuning:  # every grid point, beside the cells
        with atomic_write(tuning_csv_path(path)) as points:
            tuning_frame(result.tuning).to_csv(points, index=False)
    return fmt


def tuning_csv_path(path: str | Path) -> Path:
    """Where ``--output x.csv`` puts the grid points of a tuned comparison: ``x-tuning.csv``."""
    path = Path(path)
    return path.with_name(f"{path.stem}-tuning{path.suffix}")


def tuning_markdown(result: CompareResult) -> str:
    """Every grid point's average validation F1, the chosen one in bold."""
    rows = []
    for point in result.tuning:
        text = point.score_text()
        rows.append([
            display_name(point.method), f"{point.fraction:g}", describe(point.setting), str(point.seed),
            str(point.steps), f"**{text}**" if point.chosen else text,
            ("yes " + EDGE_MARK if point.at_edge else "yes") if point.chosen else "",
        ])
    header = ["Method", "Fraction", "Point", "Seed", "Steps", "Val avg F1", "Chosen"]
    align = _md_row(["---"] * 3 + ["---:"] * 3 + ["---"])
    lines = ["**Tuning: average validation F1 of every grid point**", "", _md_row(header), align]
    return "\n".join(lines + [_md_row(row) for row in rows]) + "\n"


def cell_frame(tables: list[ComparisonTable]) -> pd.DataFrame:
    """One row per (table, dataset, method): mean, std, seeds, 95 % interval, p vs the best, marks, Δ
    paper; then, with the paper's columns in the table, one row per published cell (``source``
    "paper", method ``paper:<column>``, best recomputed among the published columns)."""
    rows = []
    for table in tables:
        best, ties, delta = table.best(), table.tied(), table.delta_paper()
        where = {"fraction": table.fraction, "model": table.model, "split": table.split}
        for row in table.scores.index:
            for method in table.scores.columns:
                # A method that could not run (e.g. needs a decoder) has a column in no statistics frame.
                stat = (lambda frame: None if frame is None or method not in frame.columns or row not in frame.index
                        or missing(frame.at[row, method]) else float(frame.at[row, method]))  # fmt: skip
                rows.append({
                    **where, "dataset": row, "source": "ours", "method": method,
                    "f1": stat(table.scores), "std": stat(table.std), "seeds": table.seeds.get(method, 0),
                    "ci95_low": stat(table.stats.ci_low if table.stats else None),
                    "ci95_high": stat(table.stats.ci_high if table.stats else None),
                    "p_vs_best": stat(table.stats.p_value if table.stats else None),
                    "best": method in best[row], "tied_with_best": method in ties.get(row, []),
                    "delta_paper": stat(delta),
                    "note": table.notes.get(method),
                })  # fmt: skip
        rows += _published_cells(table, where)
    return pd.DataFrame(rows)


def _published_cells(table: ComparisonTable, where: dict) -> list[dict]:
    if table.paper is None:
        return []
    best = best_of(table.paper)
    return [
        {**where, "dataset": row, "source": "paper", "method": key, "f1": float(table.paper.at[row, key]),
         "best": key in best.get(row, [])}
        for row in table.paper.index for key in table.paper.columns if not missing(table.paper.at[row, key])
    ]  # fmt: skip


def published_tables() -> list[ComparisonTable]:
    """The paper's Tables 3 and 4 as printed, best of each row recomputed (``hl compare --paper`` alone)."""
    from hlcli.compare.paper import PAPER_TASK_ORDER, TABLE_FOR_FRACTION, TABLES

    tasks = list(PAPER_TASK_ORDER)
    index = [task_title(t) for t in tasks] + [AVERAGE]
    tables = []
    for fraction in TABLES:
        data = "full training data" if fraction == 1.0 else f"{fraction:.0%} of the training data"
        table = ComparisonTable(
            fraction=fraction, split="test", scores=pd.DataFrame(index=index, dtype=float), headers={},
            heading=f"The paper's {TABLE_FOR_FRACTION[fraction]} as published: test micro-F1, {data}",
        )
        add_paper_columns(table, tasks, mark="")
        tables.append(table)
    return tables


def footnotes(result: CompareResult | None, tables: list[ComparisonTable]) -> list[str]:
    """What the marks mean, for the marks the tables use."""
    from hlcli.compare.bootstrap import ALPHA, RESAMPLES
    from hlcli.compare.paper import CITATION, SINGLE_TASK_MARK as PAPER_SINGLE

    notes = [
        "Bold: the best of each row, among our runs and (separately) among the published columns, recomputed here."
    ]
    if result is not None and any(is_single_task(m) for m in result.methods):
        notes.append(
            f"{SINGLE_TASK_MARK} single-task: one model per dataset; "
            f"parameter counts summed over the {len(result.tasks)} models."
        )
    if any(t.std is not None for t in tables):
        notes.append("mean ± standard deviation over the seeds.")
    for table in tables:
        uneven = uneven_seeds(table)
        if uneven:
            where = f" in “{table.title}”" if len(tables) > 1 else ""
            notes.append(f"Seeds per dataset are not the same for every method{where} (a comparison still running?): "
                         f"{uneven}; each cell averages the seeds it has.")
    if any(t.stats is not None for t in tables):
        seeds = " and the training seeds" if any(t.std is not None for t in tables) else ""
        notes.append(
            f"{TIE_MARK} not significantly worse than the row's best: paired bootstrap over the {tables[0].split} "
            f"sentences{seeds}, {RESAMPLES} resamples, p ≥ {ALPHA} (intervals and p-values in the CSV/JSON output; "
            "docs/bootstrap.md)."
        )
    if result is not None and (result.grids or result.fixed):
        notes.append(tuning_footnote(result))
        shared = {p.seed for p in result.tuning} & {int(s) for s in result.results["seed"].dropna()}
        if result.split == TUNE_SPLIT and shared:
            tuning_seeds = "/".join(str(s) for s in sorted(shared))
            notes.append(f"Scored on the split the settings were chosen on, and seed {tuning_seeds}'s runs are the "
                         "chosen grid points' own: the tuned methods' scores here are optimistic; "
                         "compare them on test.")
    time_note = time_footnote(result) if result is not None else None
    if time_note:
        notes.append(time_note)
    if any(t.paper is not None for t in tables):
        notes.append(
            f"(paper): published figures, not run here; {PAPER_SINGLE} the paper's single-task mark. {CITATION}"
        )
    return notes


def uneven_seeds(table: ComparisonTable) -> str | None:
    """``HyperLoader 3, HyperFormer++ 1, UniPELT 1–3`` where the methods' datasets do not all have
    the same number of seeds (a comparison still running), else None."""
    ranges = {m: r for m, r in table.seed_range.items() if r[1] > 0}
    if len(set(ranges.values())) < 2 and all(low == high for low, high in ranges.values()):
        return None
    return ", ".join(
        f"{display_name(m)} {low}" + (f"–{high}" if high > low else "") for m, (low, high) in ranges.items()
    )


def time_footnote(result: CompareResult) -> str | None:
    """What the comparison's training took, per method (:meth:`CompareResult.training_time`); None
    before any step was logged."""
    from hlcli.compare.pace import spent_text

    spent = result.training_time()
    if not spent:
        return None
    grid = ", grid points included" if result.tuning else ""
    return (
        "Training time, as one process running one run after another (the steps each run reached × its method's "
        "seconds per step measured in the runs' train.log; validation included, start-up, pauses and scoring not"
        f"{grid}): {spent_text(spent, display_name)}."
    )


def tuning_footnote(result: CompareResult) -> str:
    """The grids, budgets and the rule that chose each tuned method's setting."""
    grids = []
    for method, spec in result.grids.items():
        points = [p for p in result.tuning if p.method == method]
        steps = "/".join(str(s) for s in dict.fromkeys(p.steps for p in points))
        seeds = "/".join(str(s) for s in dict.fromkeys(p.seed for p in points))
        budget = f" ({steps} steps, seed {seeds})" if points else ""
        grids.append(f"{display_name(method)}: {spec.describe()}{budget}")
    for (method, _), setting in result.fixed.items():
        grids.append(f"{display_name(method)}: {describe(setting)} (one value: not tuned)")
    edge = f" {EDGE_MARK}: chosen at the end of its grid, so the best setting may lie beyond it." if any(
        p.chosen and p.at_edge for p in result.tuning
    ) else ""
    return (
        f"{TUNED_ROW}: each method's setting is the grid point with the highest average validation F1 over its "
        f"datasets (one run per point at the grid's budget; an exact tie, to {TIE_DECIMALS} decimals, goes to the "
        f"point listed first), then trained over the seeds and scored on {result.split}. Grids: "
        + "; ".join(grids) + f".{edge} Every point: tuning.csv."
    )

