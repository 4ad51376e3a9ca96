"""``hl data ...``: look at the corpora (``hl data stats`` prints the paper's Table 2) and fetch them
(``hl data download``)."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Annotated, Iterator, Optional

import typer

from hlcli.cli._common import (
    TABLE_FORMATS,
    DataDirOption,
    VerboseOption,
    console,
    err_console,
    handle_errors,
    parse_list,
    print_table,
)
from hlcli.errors import UsageError

data_app = typer.Typer(
    name="data",
    help="Inspect and download the corpora.\n\nExample:\n\n  hl data download\n\n  hl data stats --data-dir ~/corpora",
    no_args_is_help=True,
)
STATS_FORMATS = TABLE_FORMATS

TasksOption = Annotated[Optional[str], typer.Option("--tasks", help=(
    "Comma-separated tasks (default: the seven corpora); NAME=FOLDER and hf:ORG/NAME are your own data."
))]  # fmt: skip
FormatOption = Annotated[str, typer.Option("--format", help="Output format: table | markdown | json.")]
JsonOption = Annotated[bool, typer.Option("--json", hidden=True, help="Deprecated alias of --format json.")]
STATS_HELP = """Print split sizes and slot-type counts of the corpora (the paper's Table 2).

The MIT corpora have no validation split: val is a fixed 10 % of the released train file, so their train + val \
equals the paper's train figure.

The "adjacent" column counts sentences where a span directly follows a span of the same type.

Example:

  hl data stats --data-dir ~/corpora --tasks atis,movie

  hl data stats --tasks atis,mine=corpora/mine --format json
"""
CorporaArgument = Annotated[Optional[list[str]], typer.Argument(
    help="Corpora to fetch (default: all seven): atis snips movie movietrivia restaurant mtop mtod."
)]  # fmt: skip
ForceOption = Annotated[bool, typer.Option("--force", help="Fetch again even when a corpus is present and valid.")]
BaseUrlOption = Annotated[Optional[str], typer.Option(
    "--base-url", envvar="HL_DOWNLOAD_BASE_URL", help="Mirror laid out as BASE/<host>/<path> of the upstream URLs."
)]  # fmt: skip
DOWNLOAD_HELP = """Download the paper's corpora from their public sources and check them against Table 2.

Each corpus is unpacked into the data folder's layout, every split is parsed and its sentence count compared \
with the paper's Table 2; only then does the corpus appear in the folder. Corpora already present and valid are \
skipped. A SHA-256 manifest is written to hl-download-manifest.json in the data folder.

Example:

  hl data download

  hl data download atis snips --data-dir ~/corpora
"""


@data_app.command("stats", help=STATS_HELP)
@handle_errors
def stats(
    data_dir: Path | None = DataDirOption,
    tasks: TasksOption = None,
    output_format: FormatOption = "table",
    as_json: JsonOption = False,
    verbose: bool = VerboseOption,
) -> None:
    """``hl data stats`` (its help: :data:`STATS_HELP`)."""
    from hlcli.data.stats import corpus_stats

    if output_format not in STATS_FORMATS:
        raise UsageError(f"--format {output_format!r}", expected=" | ".join(STATS_FORMATS))
    if as_json:
        err_console.print("[yellow]warning:[/] --json is deprecated; use --format json", highlight=False)
        output_format = "json"
    results = corpus_stats(tasks=parse_list(tasks) or None, data_dir=data_dir)
    if output_format == "json":
        typer.echo(json.dumps([result.to_json() for result in results], indent=2))
        return
    _print_table(results, output_format)


def _print_table(results, fmt: str) -> None:
    rows: list[list[str] | None] = []
    notes = []
    for result in results:
        train = f"{result.train:,}"
        if result.held_out_val:
            train += "*"
        labels = f"{result.labels}"
        if result.paper_labels is not None and result.labels != result.paper_labels:
            labels += "†"
            notes.append(
                f"† {result.title}: {result.labels} slot types occur in the files; the paper reports "
                f"{result.paper_labels} (the types frequent enough in train)."
            )
        if result.source is not None:
            notes.append(f"{result.title}: {result.source}")
        test = "-" if result.test is None else f"{result.test:,}"
        rows.append([result.title, train, f"{result.val:,}", test, labels, f"{result.adjacent_same_type:,}"])
    print_table("Corpora (Table 2)", ["corpus", "train", "val", "test", "labels", "adjacent"], rows, fmt=fmt)
    footnotes = []
    held = [r for r in results if r.held_out_val and r.source is None]
    if held:
        sums = ", ".join(f"{r.title} {r.train + r.val:,}" for r in held)
        footnotes.append(f"* val = 10 % of the released train file (fixed seed); train + val = paper's train: {sums}.")
    if any(r.held_out_val and r.source is not None for r in results):
        footnotes.append("* your tasks without a val file: val = 10 % of their train file (fixed seed).")
    footnotes += notes
    footnotes.append(
        "Labels: slot types over train, val and test. adjacent: sentences where a span directly follows one of "
        "the same type (B-X B-X, B-X I-X B-X); sBIO writes them exactly."
    )
    # Markdown joins adjacent lines into one paragraph: a blank line keeps each note apart.
    separator = "\n\n" if fmt == "markdown" else "\n"
    console.print(separator.join(footnotes), highlight=False, markup=False, soft_wrap=True)


@data_app.command("download", help=DOWNLOAD_HELP)
@handle_errors
def download_command(
    corpora: CorporaArgument = None,
    data_dir: Path | None = DataDirOption,
    force: ForceOption = False,
    base_url: BaseUrlOption = None,
    verbose: bool = VerboseOption,
) -> None:
    """``hl data download`` (its help: :data:`DOWNLOAD_HELP`)."""
    from hlcli.data.download import download

    result = download(corpora or None, data_dir=data_dir, force=force, base_url=base_url, progress=_file_bar)
    for name in result.skipped:
        console.print(f"{name}: present and valid, skipped (--force fetches it again)", highlight=False)
    for name in result.fetched:
        console.print(f"{name}: downloaded and verified (Table 2 counts)", highlight=False)
    console.print(f"data folder: {result.data_dir}", highlight=False, soft_wrap=True)
    if result.fetched:
        console.print(f"manifest: {result.manifest}", highlight=False, soft_wrap=True)


@contextlib.contextmanager
def _file_bar(label: str, total: int | None) -> Iterator:
    """One rich download bar per file on stderr (none when stderr is not a terminal)."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    if not err_console.is_terminal:
        yield lambda n: None
        return
    columns = TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn()
    with Progress(*columns, console=err_console) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n: bar.advance(task, n)


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")
