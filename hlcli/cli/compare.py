"""``hl compare``: every method of a recipe, trained (or collected) and tabled like the paper's
Tables 3 and 4; ``--plot`` draws its Figure 2.

One command, four modes, each a library call of :mod:`hlcli.compare`: ``--dry-run`` lists the
planned runs (:func:`~hlcli.compare.plan_status`); ``--recipe`` trains and tables them
(:func:`~hlcli.compare.compare`); without a recipe the finished runs of a folder are tabled
(:func:`~hlcli.compare.collect_runs`), or the paper's own tables (``--paper``) and the
parameter counts (``--params``) printed alone. The rich tables are laid out in
:mod:`hlcli.cli._compare_tables`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.markup import escape

from hlcli.cli._common import (
    DataDirOption,
    VerboseOption,
    command_line,
    console,
    err_console,
    handle_errors,
    log_line,
    parse_list,
)
from hlcli.cli import _compare_tables as layout
from hlcli.cli._settings import command_settings, with_settings
from hlcli.errors import UsageError

RecipeOption = Annotated[Optional[Path], typer.Option("--recipe", help=(
    "Recipe with a \\[compare] table (recipes/*.toml); without one, the finished runs under --runs-dir are tabled."
))]  # fmt: skip
FractionOption = Annotated[Optional[list[float]], typer.Option(
    "--fraction", help="Training-data fraction (repeatable); default: the recipe's fractions."
)]  # fmt: skip
MethodsOption = Annotated[
    Optional[str], typer.Option("--methods", help="Comma-separated methods (default: the recipe's).")
]
SeedsOption = Annotated[Optional[str], typer.Option("--seeds", help=(
    "Comma-separated seeds, e.g. 1,2,3: every run once per seed, cells show mean ± std "
    "(default: the recipe's seeds, else one run)."
))]  # fmt: skip
OutputDirOption = Annotated[Optional[Path], typer.Option(
    "--output-dir", help="Compare folder: runs/ and results.csv/json (default compare/<recipe name>)."
)]  # fmt: skip
RunsDirOption = Annotated[Path, typer.Option("--runs-dir", help="Without --recipe: where to look for finished runs.")]
SplitOption = Annotated[Optional[str], typer.Option("--split", help=(
    "The split to score and table: train | val | test (default: the recipe's split, else test). "
    "Without --recipe: the split the runs were scored on (hl evaluate --split)."
))]  # fmt: skip
CollectOnlyOption = Annotated[
    bool, typer.Option("--collect-only", help="Train nothing: table the runs already finished.")
]
TuneOnlyOption = Annotated[bool, typer.Option("--tune-only", help=(
    "Train and score only the grid points of \\[compare.tune] "
    "(e.g. to widen a grid whose best point is at its edge before the final runs)."
))]  # fmt: skip
JobsOption = Annotated[int, typer.Option("--jobs", "-j", min=1, help=(
    "Runs trained at a time, each in a process of its own with a share of the torch threads."
))]  # fmt: skip
DryRunOption = Annotated[bool, typer.Option("--dry-run", help=(
    "Train nothing: list every planned run (grid points of \\[compare.tune] too), whether it is finished, "
    "to resume or to train, its steps left and F1, then the time left at the pace measured so far."
))]  # fmt: skip
PaperOption = Annotated[bool, typer.Option(
    "--paper", help="Add the paper's published numbers (Tables 3 and 4) beside ours; alone, print them."
)]  # fmt: skip
OutputOption = Annotated[Optional[Path], typer.Option("--output", "-o", help=(
    "Also write the tables here (.md, .tex; .csv one row per cell with intervals and p-values; .json everything)."
))]  # fmt: skip
FormatOption = Annotated[
    Optional[str], typer.Option("--format", help="markdown|latex|csv|json, for --output (default: suffix) or stdout")
]
PlotOption = Annotated[Optional[Path], typer.Option(
    "--plot", help="Draw Figure 2 (average F1 vs. % trainable parameters) to this PNG."
)]  # fmt: skip
CurvesOption = Annotated[Optional[Path], typer.Option("--curves", help=(
    "Draw every run's validation-loss curve to this PNG; print whether each converged (its best validation loss "
    "fell < 2% over the last fifth; grid points' runs too) in a table, also in its .csv."
))]  # fmt: skip
ArchiveOption = Annotated[Optional[Path], typer.Option("--archive", help=(
    "Also copy every finished run, without its tensors (settings, scores, logs, gzipped predictions), to "
    "DIR/runs: a comparison folder that --output-dir DIR tables again, intervals and choices included."
))]  # fmt: skip
ParamsOption = Annotated[bool, typer.Option(
    "--params", help="Also print the parameter-count table (T5-base/BERT-base vs. the paper)."
)]  # fmt: skip
# The training settings hl compare overrides for every run: TrainConfig's flags (hlcli.cli._settings).
SETTINGS_HELP = {
    "tasks": "Comma-separated datasets (default: the recipe's, else all seven).",
    "model": "Backbone override (name or local folder).",
    "max_steps": "Training steps override for every run.",
}
COMPARE_HELP = """Train every method of a recipe on its datasets and print one table per data fraction.

Rows are the datasets and their Average, columns the methods with \\[total/trainable] parameters; the best \
score of each row is bold (the layout of the paper's Tables 3 and 4), and ≈ marks methods a paired bootstrap \
cannot tell from the best. Finished runs are skipped, so an interrupted compare continues where it stopped; \
a run made before its method's modules changed (CHANGELOG: module revisions) is trained again, the old one kept \
in superseded/. Without --recipe, every finished run under ./runs is tabled.

A recipe's \\[compare.tune] grid (e.g. lr = \\[3e-5, 1e-4, 3e-4]) first trains every grid point of each method \
and scores it on validation; each method is then compared at its point with the best average validation F1 \
(the "Tuned (val)" row).

Example:

  hl compare --recipe recipes/cpu-minilm.toml --fraction 0.1 --output table.md --plot fig2.png

  hl compare --recipe recipes/smoke.toml --seeds 1,2,3 --output table.csv

  hl compare --recipe recipes/cpu-minilm-tuned.toml --dry-run

  hl compare --paper

  hl compare --runs-dir runs --paper --output table.md
"""


def compare_command(
    ctx: typer.Context,
    recipe: RecipeOption = None,
    fraction: FractionOption = None,
    methods: MethodsOption = None,
    *,
    seeds: SeedsOption = None,
    data_dir: Optional[Path] = DataDirOption,
    output_dir: OutputDirOption = None,
    runs_dir: RunsDirOption = Path("runs"),
    split: SplitOption = None,
    collect_only: CollectOnlyOption = False,
    tune_only: TuneOnlyOption = False,
    jobs: JobsOption = 1,
    dry_run: DryRunOption = False,
    paper: PaperOption = False,
    output: OutputOption = None,
    fmt: FormatOption = None,
    plot: PlotOption = None,
    curves: CurvesOption = None,
    archive: ArchiveOption = None,
    params: ParamsOption = False,
    verbose: bool = VerboseOption,
    **settings: Any,
) -> None:
    """``hl compare`` (its help: :data:`COMPARE_HELP`); ``settings``: the options of :data:`SETTINGS_HELP`."""
    _check_output(output, fmt, params=params and (recipe is not None or paper))
    command = command_line(ctx)  # what the tables written say they were made with
    # What every recipe mode (--dry-run, training) takes from the command line; None: the recipe's.
    selection = dict(
        recipe=recipe, methods=parse_list(methods) or None, fractions=fraction or None,
        tasks=parse_list(settings["tasks"]) or None, data_dir=data_dir, output_dir=output_dir, model=settings["model"],
        max_steps=settings["max_steps"], split=split,
    )  # fmt: skip
    if dry_run:
        if recipe is None:
            raise UsageError("--dry-run needs --recipe")
        layout.print_status(**selection, seeds=_seeds(seeds))
        return
    if recipe is None:
        if params and not paper:  # --params alone
            layout.print_parameter_table(selection["methods"], fmt=fmt)
            return
        result = _collected(runs_dir, split=split or "test", paper=paper)
        if result is None:  # no finished runs, --paper: the paper's own tables
            from hlcli.compare import published_tables

            _show(published_tables(), None, output=output, fmt=fmt, paper=paper, command=command)
            _write(None, output, fmt, paper, command)
            return
    else:
        result = _compared(selection, seeds=_seeds(seeds), collect_only=collect_only, tune_only=tune_only, jobs=jobs)
    _report(
        result, trained=recipe is not None, tune_only=tune_only, paper=paper, output=output, fmt=fmt, command=command
    )
    _files(result, plot=plot, curves=curves, archive=archive, runs_dir=runs_dir)
    if params:
        layout.print_parameter_table(result.methods)


with_settings(compare_command, command_settings(SETTINGS_HELP), before="seeds")


def _check_output(output: Path | None, fmt: str | None, *, params: bool) -> None:
    """A bad ``--output``/``--format`` fails before hours of training; ``params``: --params prints
    its own table beside the comparison's."""
    from hlcli.compare import output_format

    if output is not None or fmt is not None:
        output_format(output or "", fmt)
    if fmt is not None and output is None and params:
        raise UsageError("--format without --output prints one document on stdout, and --params is another",
                         expected="--params alone, or --output FILE for the comparison's tables")


def _compared(selection: dict[str, Any], *, seeds: list[int] | None, collect_only: bool, tune_only: bool, jobs: int):
    """Mode ``--recipe``: train (or collect) every planned run of the recipe, then table them."""
    from hlcli.compare import compare

    return compare(**selection, seeds=seeds, collect_only=collect_only, tune_only=tune_only, jobs=jobs, log=log_line)


def _collected(runs_dir: Path, *, split: str, paper: bool):
    """Mode without a recipe: the finished runs under ``runs_dir`` (None if there are none and
    ``--paper`` prints the paper's own tables instead)."""
    from hlcli.compare import collect_runs

    result = collect_runs(runs_dir=runs_dir, split=split, log=log_line)
    if not len(result.results) and not paper:
        raise UsageError(
            f"no finished runs under {runs_dir} (scored on {split})",
            hint="pass --recipe recipes/cpu-minilm.toml to train some, --runs-dir DIR, "
            "or --paper for the published tables",
        )
    return result if len(result.results) else None


def _report(
    result, *, trained: bool, tune_only: bool, paper: bool, output: Path | None, fmt: str | None, command: str
) -> None:
    """The tables of ``result`` on stdout (and in ``output``), its warnings on stderr."""
    if paper:
        from hlcli.compare.paper import published, unavailable_message

        if not any(published(f) for f in result.fractions):
            unavailable = unavailable_message(result.fractions)
            err_console.print(f"[yellow]--paper:[/] {unavailable}", highlight=False, soft_wrap=True)
    tables = [] if tune_only else result.tables(paper=paper)  # --tune-only: no final runs, only the grid
    _show(tables, result, output=output, fmt=fmt, paper=paper, command=command)
    for line in result.stale + result.edge_warnings():
        err_console.print(f"[yellow]warning:[/] {escape(line)}", highlight=False, soft_wrap=True)
    if trained:
        count = len(result.superseded)
        again = f" ({count} again: made with an earlier module revision, kept in superseded/)" if count else ""
        results = result.output_dir / ("tuning.csv" if tune_only else "results.csv")
        diverged = sum(p.diverged is not None for p in result.tuning)
        diverged_text = f", {diverged} grid points diverged" if diverged else ""
        busy = f" ({len(result.busy)} being trained by another process)" if result.busy else ""
        (console if fmt is None or output is not None else err_console).print(  # stdout: only the --format text
            f"{len(result.trained)} trained{again}, {len(result.skipped)} skipped (finished), "
            f"{len(result.missing)} missing{busy}{diverged_text}; results: {results}",
            highlight=False,
            soft_wrap=True,
        )
    _write(result, output, fmt, paper, command)


def _files(result, *, plot: Path | None, curves: Path | None, archive: Path | None, runs_dir: Path) -> None:
    """``--plot`` (the paper's Figure 2), ``--curves`` (validation loss, convergence table) and
    ``--archive`` (the runs without tensors; from the recipe's folder, else from ``runs_dir``)."""
    if plot is not None:
        from hlcli.compare import plot_figure2

        plot_figure2(result, plot)
        console.print(f"figure: {plot}", highlight=False, soft_wrap=True)
    if curves is not None:
        layout.print_convergence(result, curves)
    if archive is not None:
        from hlcli.compare.archive import archive_runs

        source = result.output_dir / "runs" if result.output_dir is not None else runs_dir
        kept = archive_runs(source, archive)
        console.print(f"archive: {len(kept)} finished runs without tensors in {archive / 'runs'}", highlight=False,
                      soft_wrap=True)


def _seeds(value: str | None) -> list[int] | None:
    try:
        return [int(s) for s in parse_list(value)] or None
    except ValueError:
        raise UsageError(f"--seeds {value!r} is not a list of integers", expected="e.g. --seeds 1,2,3") from None


def _write(result, output: Path | None, fmt: str | None, paper: bool, command: str) -> None:
    from hlcli.compare import write_output

    if output is not None:
        written = write_output(result, output, fmt=fmt, paper=paper, command=command)
        console.print(f"{written}: {output}", highlight=False, soft_wrap=True)
        if written == "csv" and result is not None and result.tuning:
            from hlcli.compare.render import tuning_csv_path

            console.print(f"grid points: {tuning_csv_path(output)}", highlight=False, soft_wrap=True)


def _show(tables, result, *, output: Path | None, fmt: str | None, paper: bool, command: str) -> None:
    """The tables on stdout: rich tables, or with ``--format`` and no ``--output`` that format's text
    alone (``hl compare --paper --format json | jq``; anything else goes to stderr)."""
    if fmt is not None and output is None:
        from hlcli.compare import render_output

        sys.stdout.write(render_output(result, fmt, paper=paper, command=command))
        sys.stdout.flush()
        return
    layout.print_tables(tables, result)


def register(app: typer.Typer) -> None:
    app.command("compare", help=COMPARE_HELP)(handle_errors(compare_command))
