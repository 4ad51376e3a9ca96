"""``hl evaluate``: per-task seqeval F1 of a run's selected checkpoint (best, or last: select_checkpoint),
as a table like the paper's."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from hlcli.cli._common import (
    TABLE_FORMATS,
    BatchSizeOption,
    DataDirOption,
    VerboseOption,
    console,
    handle_errors,
    parse_list,
    print_table,
    progress_bar,
    which_run,
)
from hlcli import runs
from hlcli.errors import UsageError

FORMATS = (*TABLE_FORMATS, "conll")

RunArgument = Annotated[Optional[Path], typer.Argument(metavar="[RUN]", help=(
    "Run folder (uses the checkpoint its select_checkpoint names: checkpoints/best by default, or checkpoints/last) "
    "or a checkpoint folder. Default: $HL_RUN, else the newest finished run under ./runs (with --tasks, if given)."
))]  # fmt: skip
SplitOption = Annotated[str, typer.Option("--split", help="test, val or train (train = the run's own training slice).")]
TasksOption = Annotated[Optional[str], typer.Option("--tasks", help="Comma-separated subset of the model's tasks.")]
OutputOption = Annotated[Optional[Path], typer.Option("--output", "-o", help="Also write the scores as JSON here.")]
CiOption = Annotated[bool, typer.Option("--ci", help=(
    "Add each task's 95 % bootstrap interval of the F1 (1,000 resamples of the sentences, seeded)."
))]  # fmt: skip
PerLabelOption = Annotated[bool, typer.Option("--per-label", help=(
    "Also print P/R/F1/support per entity type (conlleval's per-type lines; always in eval.json and --format json)."
))]  # fmt: skip
FormatOption = Annotated[str, typer.Option("--format", help=(
    "table | markdown | json (the eval.json record) | conll (conlleval's input: 'token gold pred' per word, "
    "a blank line after each sentence; needs --tasks with one task)."
))]  # fmt: skip


def evaluate_command(
    run: RunArgument = None,
    split: SplitOption = "test",
    tasks: TasksOption = None,
    output: OutputOption = None,
    batch_size: int = BatchSizeOption,
    ci: CiOption = False,
    per_label: PerLabelOption = False,
    fmt: FormatOption = "table",
    data_dir: Optional[Path] = DataDirOption,
    verbose: bool = VerboseOption,
) -> None:
    """Score a trained run on a split: F1, precision and recall per task, and the average F1.

    Predictions are written to RUN/predictions/<split>/<task>.jsonl and scores to RUN/eval.json.

    Example:

      hl evaluate runs/hyperloader-atis+snips-0.1-20240701-120000

      hl evaluate runs/table3 --split val --tasks atis --output atis-val.json

      hl evaluate runs/quickstart --ci

      hl evaluate runs/quickstart --per-label --format markdown

      hl evaluate runs/quickstart --tasks atis --format conll > atis.conll
    """
    if fmt not in FORMATS:
        raise UsageError(f"--format {fmt!r}", expected=" | ".join(FORMATS))
    if fmt == "conll" and len(parse_list(tasks)) != 1:
        # conlleval pools every line it reads: two tasks in one file would be scored as one.
        raise UsageError("--format conll needs one task", expected="--tasks NAME")
    run = which_run(run, tasks=parse_list(tasks), usage="evaluate RUN")
    selected = parse_list(tasks) or None
    result = _evaluate(run, split=split, tasks=selected, data_dir=data_dir, batch_size=batch_size, output=output, ci=ci)
    if fmt == "json":
        typer.echo(json.dumps(result.to_json(), indent=2, ensure_ascii=False))
    elif fmt == "conll":
        (task,) = result.scores
        typer.echo(result.conll(task), nl=False)
    else:
        _print_scores(result, fmt=fmt, ci=ci, per_label=per_label)


def _evaluate(run: Path, **options):
    """:func:`hlcli.evaluation.evaluate` with a progress bar of the sentences predicted."""
    from hlcli.evaluation import evaluate

    with progress_bar("predicting", None) as advance:
        done: dict[str, int] = {}

        def report(task: str, count: int, total: int) -> None:
            advance(count - done.get(task, 0))
            done[task] = count

        return evaluate(run, **options, progress=report)


def _print_scores(result, *, fmt: str, ci: bool, per_label: bool) -> None:
    header = ["Task", "F1", "Precision", "Recall", "Sentences"] + (["95% CI of F1"] if ci else [])
    rows: list[list[str] | None] = []
    for task, s in result.scores.items():
        interval = [f"{s['ci95_low']:.4f}–{s['ci95_high']:.4f}"] if ci else []
        scores = [f"{s['f1']:.4f}", f"{s['precision']:.4f}", f"{s['recall']:.4f}"]
        rows.append([task, *scores, str(s["sentences"]), *interval])
    rows += [None, ["Average", f"{result.average:.4f}", "", "", "", *([""] if ci else [])]]
    # The checkpoint is printed below, not in the title: a title wraps at the table's width.
    print_table(f"{result.split} F1", header, rows, fmt=fmt)
    if per_label:
        rows = []
        for task, labels in result.per_label.items():
            rows += [None] if rows else []
            rows += [
                [task, label, f"{s['f1']:.4f}", f"{s['precision']:.4f}", f"{s['recall']:.4f}", str(s["support"])]
                for label, s in labels.items()
            ]
        header = ["Task", "Type", "F1", "Precision", "Recall", "Support"]
        print_table(f"{result.split} F1 per entity type (support = gold chunks)", header, rows, fmt=fmt, left=2)
    # Which model was scored, and why (the run's select_checkpoint: best, or last as the authors' runs).
    console.print(f"checkpoint: {result.checkpoint} — {runs.describe_checkpoint(result.checkpoint)}",
                  highlight=False, markup=False, soft_wrap=True)
    from hlcli.checkpoint import revision_note
    from hlcli.cli._common import err_console

    if (note := revision_note(result.checkpoint)) is not None:  # trained with earlier module code (CHANGELOG)
        err_console.print(f"note: {note}", highlight=False, markup=False, soft_wrap=True)
    console.print(f"scoring: {result.mode}", highlight=False, markup=False, soft_wrap=True)
    if result.predictions_dir is not None:
        console.print(f"predictions: {result.predictions_dir}", highlight=False, markup=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("evaluate")(handle_errors(evaluate_command))
