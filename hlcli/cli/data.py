"""``hl data ...``: look at the corpora (``hl data stats`` prints the paper's Table 2)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import typer
from rich.table import Table

from hlcli.cli._common import DataDirOption, VerboseOption, console, handle_errors, parse_list
from hlcli.data.stats import corpus_stats

data_app = typer.Typer(
    name="data",
    help="Inspect the corpora.\n\nExample:\n\n  hl data stats --data-dir ~/corpora",
    no_args_is_help=True,
)


@data_app.command("stats")
@handle_errors
def stats(
    data_dir: Path | None = DataDirOption,
    tasks: str | None = typer.Option(None, "--tasks", help="Comma-separated corpora (default: all seven)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    verbose: bool = VerboseOption,
) -> None:
    """Print split sizes and slot-type counts of the corpora (the paper's Table 2).

    The MIT corpora have no validation split: val is a fixed 10 % of the released train file, so their train + val equals the paper's train figure.

    The "adjacent" column counts sentences where a span directly follows a span of the same type.

    Example:

      hl data stats --data-dir ~/corpora --tasks atis,movie
    """
    results = corpus_stats(tasks=parse_list(tasks) or None, data_dir=data_dir)
    if as_json:
        typer.echo(json.dumps([asdict(result) for result in results], indent=2))
        return
    table = Table(title="Corpora (Table 2)")
    for name in ("corpus", "train", "val", "test", "labels", "adjacent"):
        table.add_column(name, justify="left" if name == "corpus" else "right")
    notes = []
    for result in results:
        train = f"{result.train:,}"
        if result.held_out_val:
            train += "*"
        labels = f"{result.labels}"
        if result.labels != result.paper_labels:
            labels += "†"
            notes.append(
                f"† {result.title}: {result.labels} slot types occur in the files; the paper reports "
                f"{result.paper_labels} (the types frequent enough in train)."
            )
        table.add_row(
            result.title, train, f"{result.val:,}", f"{result.test:,}", labels, f"{result.adjacent_same_type:,}"
        )
    console.print(table)
    held = [r for r in results if r.held_out_val]
    if held:
        sums = ", ".join(f"{r.title} {r.train + r.val:,}" for r in held)
        console.print(f"* val = 10 % of the released train file (fixed seed); train + val = paper's train: {sums}.")
    for note in notes:
        console.print(note)
    console.print("Labels: slot types over train, val and test. adjacent: sentences where a span directly follows one of the same type (B-X B-X, B-X I-X B-X); sBIO writes them exactly.")


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")
