"""Tagging raw text (``hl tag``): one sentence per input line, one result per input line.

Words are the maximal runs of non-whitespace characters of a line (``\\S+``: spaces, tabs and
Unicode spaces all separate words), so each word has exact character offsets into the line.

Output formats, and how "exactly one output per input line" holds for each:

``sbio`` (default)
    One line ``word/TAG word/TAG ...`` per input line, TAG in the paper's simplified BIO (the type
    on a span's first word, ``I`` on the words that continue it, ``O`` outside); an empty or
    whitespace-only input line gives an empty output line. (A word containing ``/`` is still split
    at its *last* ``/``.)
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

import torch
from seqeval.metrics.sequence_labeling import get_entities

from hlcli import checkpoint, runs
from hlcli.errors import unknown_name
from hlcli.methods.base import TaggingModel
from hlcli.sentt import bio_to_sbio

FORMATS = ("sbio", "conll", "jsonl")
_WORD = re.compile(r"\S+")
_LINE_SEPARATORS = {ord(c): f"\\u{ord(c):04x}" for c in "\x85\u2028\u2029"}


def load_tagger(run_or_checkpoint: str | Path) -> TaggingModel:
    """The model of a run folder (the checkpoint it stands for: ``select_checkpoint``) or of a
    checkpoint folder, ready to predict."""
    folder, _ = runs.resolve_checkpoint(run_or_checkpoint)
    model = checkpoint.load_model(folder)
    model.eval()
    return model


def strip_newline(line: str) -> str:
    """Remove one trailing line break (``\\n``, ``\\r\\n`` or ``\\r``), nothing else."""
    if line.endswith("\n"):
        line = line[:-1]
    if line.endswith("\r"):
        line = line[:-1]
    return line


@dataclass(frozen=True)
class Span:
    """One labelled chunk of a text: ``text[start:end] == span.text`` (``end`` exclusive)."""

    type: str
    start: int
    end: int
    text: str

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, "start": self.start, "end": self.end, "text": self.text}


@dataclass(frozen=True)
class Tagged:
    """One tagged text: its words (``\\S+`` runs), their BIO tags and the spans those tags make.

    ``to_json()`` is the record ``hl tag --format jsonl`` writes for the text.
    """

    text: str
    tokens: list[str]
    tags: list[str]
    spans: list[Span]

    def to_json(self) -> dict[str, Any]:
        return {"text": self.text, "tokens": self.tokens, "tags": self.tags, "spans": [s.to_json() for s in self.spans]}


def _tagged(text: str, words: list[re.Match], tags: list[str]) -> Tagged:
    spans = []
    # Chunks as the scorer reads them (seqeval's default, lenient IOB); ``last`` is inclusive.
    for kind, first, last in get_entities(list(tags)):
        start, end = words[first].start(), words[last].end()
        spans.append(Span(kind, start, end, text[start:end]))
    return Tagged(text, [w.group() for w in words], list(tags), spans)


def _render(tagged: Tagged, fmt: str) -> str:
    if fmt == "sbio":
        # The paper's simplified BIO: a span's first word carries its type, then I, I, ...
        return " ".join(f"{token}/{tag}" for token, tag in zip(tagged.tokens, bio_to_sbio(tagged.tags)))
    if fmt == "conll":
        return "".join(f"{token}\t{tag}\n" for token, tag in zip(tagged.tokens, tagged.tags))
    record = json.dumps(tagged.to_json(), ensure_ascii=False)
    # JSON allows these raw, but str.splitlines() and many JSONL readers break lines at them.
    return record.translate(_LINE_SEPARATORS)


def tag_texts(
    model: TaggingModel,
    task: str,
    texts: Iterable[str],
    *,
    batch_size: int = 64,
    chunk_size: int = 1024,
) -> Iterator[Tagged]:
    """Yield one :class:`Tagged` per text, in input order (offsets index the text as given).

    A text without words gives a ``Tagged`` with empty lists. Texts are read ``chunk_size`` at a
    time; inside a chunk they are predicted shortest first (little padding per batch).
    """
    known = [t.name for t in model.tasks]
    if task not in known:
        raise unknown_name("task", task, known)
    iterator = iter(texts)
    while chunk := list(itertools.islice(iterator, chunk_size)):
        words = [list(_WORD.finditer(text)) for text in chunk]
        todo = sorted((i for i in range(len(chunk)) if words[i]), key=lambda i: len(words[i]))
        predicted: list[list[str]] = []
        if todo:
            with torch.no_grad():
                predicted = model.predict(task, [[w.group() for w in words[i]] for i in todo], batch_size=batch_size)
        tags: list[list[str]] = [[] for _ in chunk]
        for i, sentence_tags in zip(todo, predicted, strict=True):
            if len(sentence_tags) != len(words[i]):
                raise RuntimeError(f"{model.method} predicted {len(sentence_tags)} tags for {len(words[i])} words")
            tags[i] = list(sentence_tags)
        for text, text_words, text_tags in zip(chunk, words, tags):
            yield _tagged(text, text_words, text_tags)


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
    texts = (strip_newline(line) for line in lines)
    for tagged in tag_texts(model, task, texts, batch_size=batch_size, chunk_size=chunk_size):
        yield _render(tagged, format)
