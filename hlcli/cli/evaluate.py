"""``hl evaluate``: per-task seqeval F1 of a run's best checkpoint, as a table like the paper's."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from hlcli.cli._common import BatchSizeOption, DataDirOption, VerboseOption, console, handle_errors, parse_list, progress_bar, which_run


def evaluate_command(
    run: Optional[Path] = typer.Argument(
        None, metavar="[RUN]",
        help="Run folder (uses checkpoints/best) or a checkpoint folder. Default: $HL_RUN, else the newest finished run under ./runs (with --tasks, if given).",
    ),
    split: str = typer.Option("test", "--split", help="test, val or train (train = the run's own training slice)."),
    tasks: Optional[str] = typer.Option(None, "--tasks", help="Comma-separated subset of the model's tasks."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Also write the scores as JSON here."),
    batch_size: int = BatchSizeOption,
    ci: bool = typer.Option(False, "--ci", help="Add each task's 95 % bootstrap interval of the F1 (1,000 resamples of the sentences, seeded)."),
    data_dir: Optional[Path] = DataDirOption,
    verbose: bool = VerboseOption,
) -> None:
    """Score a trained run on a split: F1, precision and recall per task, and the average F1.

    Predictions are written to RUN/predictions/<split>/<task>.jsonl and scores to RUN/eval.json.

    Example:

      hl evaluate runs/hyperloader-atis+snips-0.1-20240701-120000

      hl evaluate runs/table3 --split val --tasks atis --output atis-val.json

      hl evaluate runs/quickstart --ci
    """
    from hlcli.evaluation import evaluate

    run = which_run(run, tasks=parse_list(tasks), usage="evaluate RUN")

    with progress_bar("predicting", None) as advance:
        done: dict[str, int] = {}

        def report(task: str, count: int, total: int) -> None:
            advance(count - done.get(task, 0))
            done[task] = count

        result = evaluate(
            run,
            split=split,
            tasks=parse_list(tasks) or None,
            data_dir=data_dir,
            batch_size=batch_size,
            output=output,
            progress=report,
            ci=ci,
        )
    table = Table(title=f"{result.split} F1 — {result.checkpoint}", title_justify="left")
    for name, justify in (("Task", "left"), ("F1", "right"), ("Precision", "right"), ("Recall", "right"), ("Sentences", "right")):
        table.add_column(name, justify=justify)
    if ci:
        table.add_column("95% CI of F1", justify="right")
    for task, s in result.scores.items():
        interval = [f"{s['ci95_low']:.4f}–{s['ci95_high']:.4f}"] if ci else []
        table.add_row(task, f"{s['f1']:.4f}", f"{s['precision']:.4f}", f"{s['recall']:.4f}", str(s["sentences"]), *interval)
    table.add_section()
    table.add_row("Average", f"{result.average:.4f}", "", "", "", *([""] if ci else []))
    console.print(table)
    console.print(f"scoring: {result.mode}", highlight=False, soft_wrap=True)
    if result.predictions_dir is not None:
        console.print(f"predictions: {result.predictions_dir}", highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("evaluate")(handle_errors(evaluate_command))
