"""``hl convert``: write a corpus as SentT' (T5 input/target pairs) or as plain BIO records."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from hlcli.cli._common import DataDirOption, VerboseOption, err_console, handle_errors
from hlcli.errors import UsageError


SourceArgument = Annotated[str, typer.Argument(
    help="Corpus name (atis, snips, movie, movietrivia, restaurant, mtop, mtod) or a file path."
)]  # fmt: skip
ToOption = Annotated[str, typer.Option("--to", help="Target format: sentt (T5 input/target) or bio (tokens/tags).")]
SplitOption = Annotated[str, typer.Option(
    "--split", help="train, val, test or all (every split, each record tagged with its split)."
)]  # fmt: skip
OutputOption = Annotated[str, typer.Option(
    "--output", "-o", help="Output file, '-' for stdout, or a folder ending in '/' for one file per split."
)]  # fmt: skip
OutputFormatOption = Annotated[str, typer.Option("--output-format", help="jsonl or csv.")]
InputFormatOption = Annotated[Optional[str], typer.Option("--input-format", help=(
    "Format of a file SOURCE: conll, jsonl, bio (MIT-style word/tag columns), mit, goo, mtop or mtod "
    "(inferred from .jsonl, .conll, .bio)."
))]  # fmt: skip
OldFormatOption = Annotated[Optional[str], typer.Option("--format", hidden=True, help="Deprecated: --input-format.")]
FractionOption = Annotated[float, typer.Option("--fraction", help=(
    "Keep this seeded fraction of train and val (test stays whole; a file source is sampled whole)."
))]  # fmt: skip
SeedOption = Annotated[int, typer.Option("--seed", help="Seed of the --fraction sample.")]


def convert_command(
    source: SourceArgument,
    to: ToOption = "sentt",
    split: SplitOption = "all",
    output: OutputOption = "-",
    output_format: OutputFormatOption = "jsonl",
    input_format: InputFormatOption = None,
    old_format: OldFormatOption = None,
    data_dir: Optional[Path] = DataDirOption,
    fraction: FractionOption = 1.0,
    seed: SeedOption = 42,
    verbose: bool = VerboseOption,
) -> None:
    """Convert a corpus or file to SentT' (T5 sentinels + simplified BIO) or to BIO JSONL.

    Sentences longer than 99 words become several SentT' records (one per window).

    Example:

      hl convert atis --to sentt --split train -o atis.train.jsonl

      hl convert snips --to sentt --output-format csv -o snips.csv

      hl convert my.conll --to bio -o -

      hl convert my.txt --input-format bio --to sentt -o my.jsonl
    """
    from hlcli.convert import convert

    if old_format is not None:
        # --format names the output format in hl tag and hl compare; here it meant the input's.
        if input_format is not None:
            raise UsageError("--format and --input-format given", expected="--input-format only")
        err_console.print("[yellow]warning:[/] hl convert --format is deprecated; use --input-format", highlight=False)
        input_format = old_format

    result = convert(
        source, to=to, split=split, output=output, output_format=output_format, data_dir=data_dir, fraction=fraction,
        seed=seed, file_format=input_format,
    )  # fmt: skip
    splits = ", ".join(f"{name} {result.sentences[name]}" for name in result.sentences)
    where = "stdout" if result.outputs == ["-"] else ", ".join(result.outputs)
    records = f"{result.total_records} {result.to} records in {where}"
    # stderr, so that `-o -` output stays clean.
    err_console.print(
        f"{result.task}: {result.total_sentences} sentences ({splits}) → {records}", highlight=False, soft_wrap=True
    )


def register(app: typer.Typer) -> None:
    app.command("convert")(handle_errors(convert_command))
