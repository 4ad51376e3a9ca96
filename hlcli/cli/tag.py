"""``hl tag``: label raw sentences (one per line) with a trained run."""

from __future__ import annotations

import contextlib
import gc
import sys
from pathlib import Path
from typing import Annotated, BinaryIO, Iterator, Optional

import typer

from hlcli.cli._common import BatchSizeOption, VerboseOption, err_console, handle_errors, progress_bar, which_run
from hlcli.errors import HLError, UsageError


def decode_lines(stream: BinaryIO, name: str) -> Iterator[str]:
    """Lines of a byte stream as text; invalid UTF-8 becomes U+FFFD, reported once on stderr."""
    warned = False
    for number, raw in enumerate(stream, start=1):
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError:
            if not warned:
                err_console.print(
                    f"[yellow]warning:[/] {name}:{number}: invalid UTF-8 replaced by U+FFFD "
                    "(further lines not reported)",
                    highlight=False,
                    soft_wrap=True,
                )
                warned = True
            yield raw.decode("utf-8", errors="replace")


RunArgument = Annotated[Optional[Path], typer.Argument(metavar="RUN", show_default=False, help=(
    "Run folder (its best checkpoint) or checkpoint folder. "
    "Default: $HL_RUN, else the newest finished run under ./runs with --task."
))]  # fmt: skip
TaskOption = Annotated[
    str, typer.Option("--task", help="Which of the model's tasks labels the text (e.g. restaurant).")
]
InputOption = Annotated[str, typer.Option("--input", "-i", help="Text file, one sentence per line; '-' = stdin.")]
OutputOption = Annotated[str, typer.Option("--output", "-o", help="Output file; '-' = stdout.")]
FormatOption = Annotated[str, typer.Option("--format", help=(
    "Output format: sbio (word/TAG), conll (word<TAB>TAG, blank line after each sentence) "
    "or jsonl (spans with character offsets)."
))]  # fmt: skip
RunOption = Annotated[Optional[Path], typer.Option("--run", hidden=True, help="Deprecated: name the run positionally.")]


def tag_command(
    run: RunArgument = None,
    task: TaskOption = ...,
    input: InputOption = "-",
    output: OutputOption = "-",
    format: FormatOption = "sbio",
    batch_size: int = BatchSizeOption,
    run_option: RunOption = None,
    verbose: bool = VerboseOption,
) -> None:
    """Tag sentences, one per line: exactly one result per input line, in input order.

    Example:

      echo "book a table for two at an italian place" | hl tag --task restaurant

      hl tag runs/mine --task atis --input questions.txt --format jsonl -o tagged.jsonl
    """
    from hlcli.io import atomic_write
    from hlcli.tagging import FORMATS, load_tagger, tag_lines

    run = _which_run(run, run_option, task)
    if format not in FORMATS:
        raise UsageError(f"unknown format {format!r}", expected=" | ".join(FORMATS))
    if batch_size < 1:
        raise UsageError(f"--batch-size {batch_size}", expected="a positive integer")
    model = load_tagger(run)
    # torch and transformers keep hundreds of thousands of objects alive; without this the
    # garbage collector walks them again and again while tagging a long input.
    gc.freeze()
    try:
        # stdin is not ours to close.
        opened = contextlib.nullcontext(sys.stdin.buffer) if input == "-" else open(input, "rb")
    except OSError as error:
        raise HLError(f"cannot read input: {error.strerror}", path=input) from None
    with opened as source, atomic_write(output) as sink:
        # Typed at a terminal: answer each line at once; piped: batch 1024 lines at a time.
        interactive = source.isatty()
        chunk_size = 1 if interactive else 1024
        lines = decode_lines(source, "<stdin>" if input == "-" else input)
        # A bar for long files only: stdin has no known length and may be typed by hand.
        total = None if input == "-" else _count_lines(input)
        with progress_bar("tagging", total, min_total=1024, enabled=total is not None) as advance:
            for count, result in enumerate(
                tag_lines(model, task, lines, format=format, batch_size=batch_size, chunk_size=chunk_size), start=1
            ):
                sink.write(result + "\n")
                advance()
                if interactive or count % chunk_size == 0:
                    sink.flush()  # results leave chunk by chunk through pipes


def _which_run(run: Path | None, run_option: Path | None, task: str) -> Path:
    """RUN, else the deprecated --run, else $HL_RUN, else the newest finished run with ``task``."""
    if run_option is not None:
        if run is not None:
            raise UsageError("two runs given", expected="RUN or --run, not both")
        err_console.print(
            "[yellow]warning:[/] --run is deprecated; name the run first: hl tag RUN --task ...", highlight=False
        )
        return run_option
    return which_run(run, tasks=[task], usage=f"tag RUN --task {task}")


def _count_lines(path: str) -> int:
    with open(path, "rb") as handle:
        return sum(block.count(b"\n") for block in iter(lambda: handle.read(1 << 20), b""))


def register(app: typer.Typer) -> None:
    app.command("tag")(handle_errors(tag_command))
