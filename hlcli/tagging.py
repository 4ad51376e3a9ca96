"""Tagging raw text (``hl tag``): one sentence per input line, one result per input line.

Words are the maximal runs of non-whitespace characters of a line (``\\S+``: spaces, tabs and
Unicode spaces all separate words), so each word has exact character offsets into the line.

Output formats, and how "exactly one output per input line" holds for each:

``sbio`` (default)
    One line ``word/TAG word/TAG ...`` per input line, TAG in the paper's simplified BIO (the type
    on a span's first word, ``I`` on the words that continue it, ``O`` outside); an empty or whitespace-only input line gives
    an empty output line. (A word containing ``/`` is still split at its *last* ``/``.)
``conll``
    One *block* per input line: a ``word<TAB>TAG`` line per word, then one blank line. An empty or
    whitespace-only input line gives an empty block, i.e. just the blank line — so the N-th
    blank line always closes the N-th input line.
``jsonl``
    One JSON object per input line: ``{"text", "tokens", "tags", "spans"}`` where each span is
    ``{"type", "start", "end", "text"}`` with ``start``/``end`` character offsets into ``text``
    (the line without its line break; ``text[start:end] == span text``). An empty or
    whitespace-only line gives an object with empty lists (a blank line would not be JSON).

Lines are processed in chunks (``chunk_size``), so output starts before the whole input is read
and memory stays bounded; inside a chunk sentences are sorted by length so that batches carry
little padding, and the input order is restored on output.
"""

from __future__ import annotations

import itertools
import json
import re
from typing import Iterable, Iterator

from pathlib import Path

import torch
from seqeval.metrics.sequence_labeling import get_entities

from hlcli import runs
from hlcli.errors import unknown_name
from hlcli.methods.base import TaggingModel
from hlcli.sentt import bio_to_sbio

FORMATS = ("sbio", "conll", "jsonl")
_WORD = re.compile(r"\S+")
_LINE_SEPARATORS = {ord(c): f"\\u{ord(c):04x}" for c in "\x85\u2028\u2029"}


def load_tagger(run_or_checkpoint: str | Path) -> TaggingModel:
    """The model of a run folder (its best checkpoint) or of a checkpoint folder, ready to predict."""
    from hlcli.evaluation import load_model

    checkpoint, _ = runs.resolve_checkpoint(run_or_checkpoint)
    model = load_model(checkpoint)
    model.eval()
    return model


def strip_newline(line: str) -> str:
    """Remove one trailing line break (``\\n``, ``\\r\\n`` or ``\\r``), nothing else."""
    if line.endswith("\n"):
        line = line[:-1]
    if line.endswith("\r"):
        line = line[:-1]
    return line


def _render(text: str, words: list[re.Match], tags: list[str], fmt: str) -> str:
    tokens = [w.group() for w in words]
    if fmt == "sbio":
        # The paper's simplified BIO: a span's first word carries its type, then I, I, ...
        return " ".join(f"{token}/{tag}" for token, tag in zip(tokens, bio_to_sbio(tags)))
    if fmt == "conll":
        return "".join(f"{token}\t{tag}\n" for token, tag in zip(tokens, tags))
    spans = []
    # Chunks as the scorer reads them (seqeval's default, lenient IOB); ``last`` is inclusive.
    for kind, first, last in get_entities(list(tags)):
        start, end = words[first].start(), words[last].end()
        spans.append({"type": kind, "start": start, "end": end, "text": text[start:end]})
    record = json.dumps({"text": text, "tokens": tokens, "tags": tags, "spans": spans}, ensure_ascii=False)
    # JSON allows these raw, but str.splitlines() and many JSONL readers break lines at them.
    return record.translate(_LINE_SEPARATORS)


def tag_lines(
    model: TaggingModel,
    task: str,
    lines: Iterable[str],
    *,
    format: str = "sbio",
    batch_size: int = 64,
    chunk_size: int = 1024,
) -> Iterator[str]:
    """Yield one rendered result per input line (see the module doc; no trailing newline)."""
    known = [t.name for t in model.tasks]
    if task not in known:
        raise unknown_name("task", task, known)
    if format not in FORMATS:
        raise unknown_name("format", format, FORMATS)
    iterator = iter(lines)
    while chunk := list(itertools.islice(iterator, chunk_size)):
        texts = [strip_newline(line) for line in chunk]
        words = [list(_WORD.finditer(text)) for text in texts]
        todo = sorted((i for i in range(len(texts)) if words[i]), key=lambda i: len(words[i]))
        with torch.no_grad():
            predicted = model.predict(task, [[w.group() for w in words[i]] for i in todo], batch_size=batch_size) if todo else []
        tags: list[list[str]] = [[] for _ in texts]
        for i, sentence_tags in zip(todo, predicted, strict=True):
            if len(sentence_tags) != len(words[i]):
                raise RuntimeError(f"{model.method} predicted {len(sentence_tags)} tags for {len(words[i])} words")
            tags[i] = list(sentence_tags)
        for text, line_words, line_tags in zip(texts, words, tags):
            yield _render(text, line_words, line_tags, format)
