"""Convert a corpus (or one file) to SentT' or to plain BIO records: the library side of ``hl convert``.

SentT' records hold one T5 input/target pair each (``hlcli.sentt``); a sentence longer than
``sentt.MAX_WORDS`` words becomes several consecutive records, one per window, so that every
record fits T5's 100 sentinels. BIO records hold one sentence each.

Everything is read and encoded before anything is written, and every file is written with
:func:`hlcli.io.atomic_write`, so bad input leaves no output file behind.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Iterable, Iterator

from hlcli import sentt
from hlcli.data.corpora import CORPORA, normalize_split, subsample
from hlcli.data.example import Example
from hlcli.data.hf_datasets import HF_PREFIX
from hlcli.data.readers import read_file
from hlcli.data.sources import parse_spec
from hlcli.data.tasks import load_split, task_splits
from hlcli.errors import UsageError, unknown_name
from hlcli.io import atomic_write

TARGETS = ("sentt", "bio")
OUTPUT_FORMATS = ("jsonl", "csv")
SPLITS = ("train", "val", "test")  # "all" = every one of them
FILE_FORMATS = ("conll", "jsonl", "bio", "mit", "goo", "mtop", "mtod")
# "bio" is the plain name of the MIT corpora's format (a word and its BIO tag per line, either order).
FORMAT_ALIASES = {"bio": "mit"}
FORMAT_BY_SUFFIX = {".jsonl": "jsonl", ".conll": "conll", ".bio": "bio"}

_CSV_COLUMNS = {"sentt": ("input", "target", "task", "split"), "bio": ("tokens", "tags", "task", "split", "intent")}


@dataclass
class ConvertResult:
    """What :func:`convert` wrote."""

    task: str
    to: str
    output_format: str
    sentences: dict[str, int] = field(default_factory=dict)  # per split
    records: dict[str, int] = field(default_factory=dict)  # per split (windows for SentT')
    outputs: list[str] = field(default_factory=list)  # paths written, "-" for stdout

    @property
    def total_sentences(self) -> int:
        return sum(self.sentences.values())

    @property
    def total_records(self) -> int:
        return sum(self.records.values())


def convert(
    source: str,
    *,
    to: str,
    split: str = "all",
    output: Path | str,
    output_format: str = "jsonl",
    data_dir: Path | str | None = None,
    fraction: float = 1.0,
    seed: int = 42,
    file_format: str | None = None,
) -> ConvertResult:
    """Convert ``source`` (a corpus name from ``CORPORA`` or a file path) and write it to ``output``.

    ``split`` is ``train``, ``val``, ``test`` or ``all``. ``output`` is a file (all splits in
    it, each record carrying its ``split``), ``"-"`` for stdout, or a folder (an existing one,
    or a path ending in ``/``) that receives one ``<task>.<split>.<ext>`` file per split.
    A file ``source`` is read with ``file_format`` (inferred from ``.jsonl``, ``.conll``, ``.bio``) and forms a single
    split named ``split``. Nothing is printed.
    """
    if to not in TARGETS:
        raise unknown_name("target format", to, TARGETS)
    if output_format not in OUTPUT_FORMATS:
        raise unknown_name("output format", output_format, OUTPUT_FORMATS)
    if split != "all":
        split = normalize_split(split)
    if not 0.0 < fraction <= 1.0:
        raise UsageError(f"--fraction must be in (0, 1], got {fraction}")

    task, examples_per_split = _read(
        source, split=split, data_dir=data_dir, fraction=fraction, seed=seed, file_format=file_format
    )
    rows_per_split = {name: list(_rows(examples, to=to, split=name)) for name, examples in examples_per_split.items()}

    result = ConvertResult(task=task, to=to, output_format=output_format)
    for name, examples in examples_per_split.items():
        result.sentences[name] = len(examples)
        result.records[name] = len(rows_per_split[name])

    destination = os.fspath(output)
    if destination != "-" and (destination.endswith(("/", os.sep)) or Path(destination).is_dir()):
        for name, rows in rows_per_split.items():
            path = Path(destination) / f"{task}.{name}.{output_format}"
            _write(path, rows, to=to, output_format=output_format)
            result.outputs.append(os.fspath(path))
    else:
        every_row = (row for rows in rows_per_split.values() for row in rows)
        _write(destination, every_row, to=to, output_format=output_format)
        result.outputs.append(destination)
    return result


def _read(
    source: str,
    *,
    split: str,
    data_dir: Path | str | None,
    fraction: float,
    seed: int,
    file_format: str | None,
) -> tuple[str, dict[str, list[Example]]]:
    if source in CORPORA and file_format is None:
        names = SPLITS if split == "all" else (split,)
        return source, {
            name: load_split(source, name, data_dir=data_dir, fraction=fraction, seed=seed) for name in names
        }

    path = Path(source)
    if "=" in source or source.startswith(HF_PREFIX) or (path.is_dir() and file_format is None):
        # Own data named like a task: NAME=FOLDER, hf:ORG/NAME, or a folder of train/dev/test files.
        task, entry = parse_spec(source if not path.is_dir() else f"{path.resolve().name}={source}")
        sources = {task: entry}
        names = [name for name in SPLITS if name in task_splits(task, sources=sources)] if split == "all" else [split]
        return task, {name: load_split(task, name, fraction=fraction, seed=seed, sources=sources) for name in names}
    if not path.exists():
        raise UsageError(
            f"{source!r} is neither a corpus nor an existing file; known corpora: {', '.join(sorted(CORPORA))}"
        )
    if file_format is None:
        # engtrain.bio.txt, as the MIT corpora name their files, is .bio too.
        suffix = next((s for s in reversed(path.suffixes) if s in FORMAT_BY_SUFFIX), None)
        if suffix is None:
            raise UsageError(f"cannot tell the format of {source!r}; pass --input-format ({'|'.join(FILE_FORMATS)})")
        file_format = FORMAT_BY_SUFFIX[suffix]
    if file_format not in FILE_FORMATS:
        raise unknown_name("format", file_format, FILE_FORMATS)
    file_format = FORMAT_ALIASES.get(file_format, file_format)
    task = path.name.split(".")[0] or "file"
    return task, {split: subsample(read_file(path, format=file_format, task=task), fraction, seed)}


def _rows(examples: Iterable[Example], *, to: str, split: str) -> Iterator[dict[str, str | list[str]]]:
    for example in examples:
        if to == "bio":
            row = {"tokens": list(example.tokens), "tags": list(example.tags), "task": example.task, "split": split}
            if example.intent is not None:
                row["intent"] = example.intent
            yield row
            continue
        for source_text, target_text in sentt.encode_windows(example):
            yield {"input": source_text, "target": target_text, "task": example.task, "split": split}


def _write(path: Path | str, rows: Iterable[dict], *, to: str, output_format: str) -> None:
    with atomic_write(path, "w") as handle:
        if output_format == "jsonl":
            for row in rows:
                handle.write(json.dumps(row, ensure_ascii=False))
                handle.write("\n")
        else:
            _write_csv(handle, rows, _CSV_COLUMNS[to])


def _write_csv(handle: IO[str], rows: Iterable[dict], columns: tuple[str, ...]) -> None:
    writer = csv.DictWriter(handle, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: " ".join(value) if isinstance(value, list) else value for key, value in row.items()})
