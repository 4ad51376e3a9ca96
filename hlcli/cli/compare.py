"""``hl compare``: every method of a recipe, trained (or collected) and tabled like the paper's
Tables 3 and 4; ``--plot`` draws its Figure 2."""

from __future__ import annotations

import math
import numbers
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape
from rich.table import Table

from hlcli.cli._common import DataDirOption, VerboseOption, console, err_console, handle_errors, parse_list
from hlcli.errors import UsageError


def compare_command(
    recipe: Optional[Path] = typer.Option(None, "--recipe", help="Recipe with a \\[compare] table (recipes/*.toml); not needed for --params alone."),
    fraction: Optional[list[float]] = typer.Option(None, "--fraction", help="Training-data fraction (repeatable); default: the recipe's fractions."),
    methods: Optional[str] = typer.Option(None, "--methods", help="Comma-separated methods (default: the recipe's)."),
    tasks: Optional[str] = typer.Option(None, "--tasks", help="Comma-separated datasets (default: the recipe's, else all seven)."),
    model: Optional[str] = typer.Option(None, "--model", help="Backbone override (name or local folder)."),
    max_steps: Optional[int] = typer.Option(None, "--max-steps", help="Training steps override for every run."),
    data_dir: Optional[Path] = DataDirOption,
    output_dir: Optional[Path] = typer.Option(None, "--output-dir", help="Compare folder: runs/ and results.csv/json (default compare/<recipe name>)."),
    collect_only: bool = typer.Option(False, "--collect-only", help="Train nothing: table the runs already finished."),
    paper: bool = typer.Option(False, "--paper", help="Add the paper's published numbers (Tables 3 and 4) beside ours."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Also write the tables/results here (.md, .tex, .csv, .json)."),
    fmt: Optional[str] = typer.Option(None, "--format", help="markdown | latex | csv | json (default: from --output's extension)."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Draw Figure 2 (average F1 vs. % trainable parameters) to this PNG."),
    params: bool = typer.Option(False, "--params", help="Also print the parameter-count table (T5-base/BERT-base vs. the paper)."),
    verbose: bool = VerboseOption,
) -> None:
    """Train every method of a recipe on its datasets and print one table per data fraction.

    Rows are the datasets and their Average, columns the methods with \\[total/trainable] parameters; the best score of each row is bold (the layout of the paper's Tables 3 and 4). Finished runs are skipped, so an interrupted compare continues where it stopped.

    Example:

      hl compare --recipe recipes/cpu-minilm.toml --fraction 0.1 --output table.md --plot fig2.png

      hl compare --recipe recipes/paper-table4.toml --collect-only --paper --output table4.tex

      hl compare --params
    """
    from hlcli.compare import compare, comparison_table, footnote, output_format, plot_figure2, write_output

    if recipe is None:
        if not params:
            raise UsageError("--recipe is required (e.g. --recipe recipes/cpu-minilm.toml); only --params works without one")
        _print_parameter_table(parse_list(methods) or None)
        return
    if output is not None:
        output_format(output, fmt)  # a bad --output/--format fails before hours of training
    elif fmt is not None:
        raise UsageError("--format needs --output")
    result = compare(
        recipe=recipe,
        methods=parse_list(methods) or None,
        fractions=fraction or None,
        tasks=parse_list(tasks) or None,
        data_dir=data_dir,
        output_dir=output_dir,
        model=model,
        max_steps=max_steps,
        collect_only=collect_only,
        log=lambda line: err_console.print(line, highlight=False, markup=False, soft_wrap=True),
    )
    if paper:
        from hlcli.paper import published, unavailable_message

        if not any(published(f) for f in result.fractions):
            err_console.print(f"[yellow]--paper:[/] {unavailable_message()}", highlight=False, soft_wrap=True)
    for fraction in result.fractions:
        table = comparison_table(result, fraction, paper=paper)
        header, body = table.cells(bold=lambda text: f"[bold]{text}[/bold]")
        rich_table = Table(title=table.title, title_justify="left")
        # Headers carry the parameter counts: never cut them (a narrow terminal scrolls instead).
        for index, name in enumerate(header):
            width = max(len(escape(name)), *(len(row[index]) for row in body))
            rich_table.add_column(escape(name), justify="left" if index == 0 else "right", min_width=width, no_wrap=True)
        for row in body:
            if row[0] == "Average":
                rich_table.add_section()
            rich_table.add_row(*row)
        console.print(rich_table)
    note = footnote(result)
    if note:
        console.print(note, highlight=False, soft_wrap=True)
    console.print(
        f"{len(result.trained)} trained, {len(result.skipped)} skipped (finished), "
        f"{len(result.missing)} missing; results: {result.output_dir / 'results.csv'}",
        highlight=False,
        soft_wrap=True,
    )
    if output is not None:
        written = write_output(result, output, fmt=fmt, paper=paper)
        console.print(f"{written}: {output}", highlight=False, soft_wrap=True)
    if plot is not None:
        plot_figure2(result, plot)
        console.print(f"figure: {plot}", highlight=False, soft_wrap=True)
    if params:
        _print_parameter_table(result.methods)


def _print_parameter_table(methods: list[str] | None) -> None:
    import pandas as pd

    from hlcli.params import parameter_table

    frame = parameter_table(methods=methods)
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
    if isinstance(value, numbers.Integral):
        return f"{int(value):,}"
    if isinstance(value, numbers.Real):
        return "" if math.isnan(value) else f"{float(value):.2f}"
    return "" if value is None else escape(str(value))


def register(app: typer.Typer) -> None:
    app.command("compare")(handle_errors(compare_command))
