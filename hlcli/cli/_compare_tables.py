"""The rich tables ``hl compare`` prints on a terminal: the planned runs (``--dry-run``), the
comparison and tuning tables, the convergence table (``--curves``) and the parameter counts
(``--params``). What they show is computed in :mod:`hlcli.compare`; here it is only laid out."""

from __future__ import annotations

import sys
from pathlib import Path

from rich.markup import escape
from rich.table import Table

from hlcli.cli._common import console, err_console


def print_status(**options) -> None:
    """``--dry-run``: every planned run, its state, steps left and F1; the time left; edge warnings."""
    from hlcli.compare import pace_report, plan_status

    the_plan, statuses, warnings = plan_status(**options)
    table = Table(title=f"Planned runs of {the_plan.recipe} in {the_plan.output_dir}/runs", title_justify="left")
    # The folder names the run (method, fraction, task, grid point, seed); runs waiting for their
    # method's tuning have no folder yet, and are named by their label.
    names = [s.run.run_dir.name if s.run.run_dir is not None else _waiting_name(s.run) for s in statuses]
    table.add_column("run", no_wrap=True, min_width=max([len(n) for n in names] + [3]))
    for name in ("split", "state", "steps left", "F1"):  # F1: finished runs, mean over the run's tasks
        table.add_column(name, justify="left" if name in ("split", "state") else "right", no_wrap=True)
    for name, status in zip(names, statuses):
        f1 = "—" if status.f1 is None else f"{status.f1:.4f}"
        table.add_row(escape(name), status.split, status.state, f"{status.steps_left:,}", f1)
    console.print(table)
    left = [s for s in statuses if s.state != "finished"]
    to_train = [s for s in left if s.steps_left > 0]
    steps = sum(s.steps_left for s in statuses)
    console.print(
        f"{len(statuses)} runs planned ({len(the_plan.points)} grid points): {len(statuses) - len(left)} finished, "
        f"{len(to_train)} to train or resume ({steps:,} steps), {len(left) - len(to_train)} to score only",
        highlight=False, soft_wrap=True,
    )
    for line in pace_report(statuses):
        console.print(line, highlight=False, markup=False, soft_wrap=True)
    for line in warnings:  # before the final runs start: a choice at a grid's edge
        err_console.print(f"[yellow]warning:[/] {escape(line)}", highlight=False, soft_wrap=True)


def _waiting_name(run) -> str:
    """``hyperloader-0.1 seed 43``: a final run whose folder depends on a point not chosen yet."""
    from hlcli.compare.facts import is_single_task

    task = f"-{run.tasks[0]}" if is_single_task(run.method) else ""
    return f"{run.method}-{run.fraction:g}{task} seed {run.config.seed}"


def print_convergence(result, path: Path) -> None:
    """``--curves PATH``: the figure, and the convergence table on stdout and in PATH's ``.csv``."""
    from hlcli.compare import curves
    from hlcli.io import atomic_write

    found = curves.curves_of(result)
    if not found:
        err_console.print(f"[yellow]warning:[/] --curves: no run has a validation loss yet, so {escape(str(path))} "
                          "is not drawn", highlight=False, soft_wrap=True)
        return
    finals = [curve for curve in found if curve.point is None]
    curves.plot_curves(finals or found, path)  # the grid points' curves where there is no final run yet
    frame = curves.convergence_frame(found)
    with atomic_write(Path(path).with_suffix(".csv")) as handle:
        frame.to_csv(handle, index=False)
    title = f"Best validation loss over the last fifth of each run (converged: fell < {curves.CONVERGED_DROP:.0%})"
    table = Table(title=title, title_justify="left")
    for name in curves.CONVERGENCE_HEADER:
        table.add_column(name, justify="left" if name in ("method", "tasks") else "right")
    for cells in curves.convergence_cells(frame):
        table.add_row(*cells)
    console.print(table)
    drawn = ""
    if not finals:
        drawn = " (the grid points' runs: no final run is tabled)"
    elif len(finals) < len(found):
        drawn = " (the final runs; the grid points' runs are in the table too)"
    console.print(f"curves: {path}{drawn}; table: {Path(path).with_suffix('.csv')}", highlight=False, soft_wrap=True)


def print_tables(tables, result) -> None:
    """The comparison tables (rich), their footnotes, and the tuning table of a tuned comparison."""
    from hlcli.compare import TUNED_ROW, footnotes, time_footnote, tuning_footnote

    for table in tables:
        header, body = table.cells(bold=lambda text: f"[bold]{escape(text)}[/bold]")
        rich_table = Table(title=escape(table.title), title_justify="left")
        # Headers carry the parameter counts: never cut them (a narrow terminal scrolls instead).
        for index, name in enumerate(header):
            width = max(len(name), *(len(row[index].replace("[bold]", "").replace("[/bold]", "")) for row in body))
            justify = "left" if index == 0 else "right"
            rich_table.add_column(escape(name), justify=justify, min_width=width, no_wrap=True)
        for row in body:
            if row[0] in ("Average", TUNED_ROW):
                rich_table.add_section()
            rich_table.add_row(*row)
        console.print(rich_table)
    if tables:
        notes = footnotes(result, tables)
    else:  # --tune-only: the grid, and what training it took
        notes = [tuning_footnote(result)] if result and result.grids else []
        notes += [note for note in [time_footnote(result) if result else None] if note]
    for line in notes:
        console.print(line, highlight=False, markup=False, soft_wrap=True)
    if result is not None and result.tuning:
        print_tuning(result)


def print_tuning(result) -> None:
    """Every grid point's average validation F1 (or "diverged"); the chosen one ticked."""
    from hlcli.compare import EDGE_MARK
    from hlcli.compare.facts import display_name
    from hlcli.compare.tune import describe

    table = Table(title="Tuning: average validation F1 of every grid point (chosen: ✓)", title_justify="left")
    for name in ("method", "fraction", "point", "seed", "steps", "val avg F1", "chosen"):
        table.add_column(name, justify="left" if name in ("method", "point") else "right")
    for point in result.tuning:
        text = point.score_text()
        cells = [escape(display_name(point.method)), f"{point.fraction:g}", escape(describe(point.setting))]
        cells += [str(point.seed), str(point.steps), f"[bold]{text}[/bold]" if point.chosen else text]
        table.add_row(*cells, ("✓ " + EDGE_MARK if point.at_edge else "✓") if point.chosen else "")
    console.print(table)


def print_parameter_table(methods: list[str] | None, *, fmt: str | None = None) -> None:
    """``--params``: a rich table, or with ``--format`` (alone) csv / json / markdown text on stdout."""
    import pandas as pd

    from hlcli.compare.param_counts import parameter_table, parameter_text

    frame = parameter_table(methods=methods)
    if fmt is not None:
        sys.stdout.write(parameter_text(frame, fmt))
        return
    table = Table(title="Parameters for the seven tasks (ours beside the papers')", title_justify="left")
    rows = [[_cell(value) for value in row] for _, row in frame.iterrows()]
    for index, column in enumerate(frame.columns):
        numeric = pd.api.types.is_numeric_dtype(frame[column])
        # Counts are never cut short: a narrow terminal makes the table wider than the screen.
        width = max([len(row[index]) for row in rows] + [1])
        table.add_column(escape(str(column)), justify="right" if numeric else "left", min_width=width, no_wrap=True)
    for row in rows:
        table.add_row(*row)
    console.print(table)


def _cell(value: object) -> str:
    from hlcli.compare.param_counts import format_count_cell

    return escape(format_count_cell(value))
