"""``hl convert``: write a corpus as SentT' (T5 input/target pairs) or as plain BIO records."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from hlcli.cli._common import DataDirOption, VerboseOption, err_console, handle_errors
from hlcli.errors import UsageError


def convert_command(
    source: str = typer.Argument(..., help="Corpus name (atis, snips, movie, movietrivia, restaurant, mtop, mtod) or a file path."),
    to: str = typer.Option("sentt", "--to", help="Target format: sentt (T5 input/target) or bio (tokens/tags)."),
    split: str = typer.Option("all", "--split", help="train, val, test or all (every split, each record tagged with its split)."),
    output: str = typer.Option(
        "-", "--output", "-o", help="Output file, '-' for stdout, or a folder ending in '/' for one file per split."
    ),
    output_format: str = typer.Option("jsonl", "--output-format", help="jsonl or csv."),
    input_format: Optional[str] = typer.Option(
        None,
        "--input-format",
        help="Format of a file SOURCE: conll, jsonl, bio (MIT-style word/tag columns), mit, goo, mtop or mtod (inferred from .jsonl, .conll, .bio).",
    ),
    old_format: Optional[str] = typer.Option(None, "--format", hidden=True, help="Deprecated: --input-format."),
    data_dir: Optional[Path] = DataDirOption,
    fraction: float = typer.Option(1.0, "--fraction", help="Keep this seeded fraction of train and val (test stays whole; a file source is sampled whole)."),
    seed: int = typer.Option(42, "--seed", help="Seed of the --fraction sample."),
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
        source,
        to=to,
        split=split,
        output=output,
        output_format=output_format,
        data_dir=data_dir,
        fraction=fraction,
        seed=seed,
        file_format=input_format,
    )
    splits = ", ".join(f"{name} {result.sentences[name]}" for name in result.sentences)
    where = "stdout" if result.outputs == ["-"] else ", ".join(result.outputs)
    # stderr, so that `-o -` output stays clean.
    err_console.print(
        f"{result.task}: {result.total_sentences} sentences ({splits}) → {result.total_records} {result.to} records in {where}",
        highlight=False,
        soft_wrap=True,
    )


def register(app: typer.Typer) -> None:
    app.command("convert")(handle_errors(convert_command))
