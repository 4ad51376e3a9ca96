"""Readers for the corpora of the HyperLoader paper (Table 2) and for users' own data.

Every reader returns ``list[Example]`` with BIO tags exactly as the file holds them: tags are
validated (``O``, ``B-X`` or ``I-X``) but never repaired, so writing the examples back gives
the same file. Every problem in a file is an :class:`HLError` naming ``path:line``.

Formats (``read_file(path, format=...)``):

- ``goo``   — ATIS/SNIPS layout of Goo et al. 2018: a folder with line-aligned ``seq.in``
  (tokens), ``seq.out`` (tags) and optional ``label`` (intent).
- ``mit``   — MIT Movie/MovieTrivia/Restaurant: ``tag<TAB>token`` or ``token<TAB>tag`` (the order
  is detected per file), blank line between sentences, CRLF tolerated.
- ``conll`` — whitespace-separated columns, token first, tag last, ``-DOCSTART-`` skipped.
- ``jsonl`` — one ``{"tokens": [...], "tags": [...]}`` object per line (``intent`` optional).
- ``mtop``  — mTOP, either the derived 5-column form (utterance, flat parse, nested parse,
  domain, locale) or the original 8-column release (id, intent, ``start:end:SL:TYPE`` spans,
  utterance, domain, locale, decoupled form, tokens JSON); the column count is detected.
- ``mtod``  — Schuster et al. 2019 TSV: intent, ``start:end:type`` spans, utterance, locale,
  tokenization JSON.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from hlcli.data.example import Example
from hlcli.data.readers.columns import read_conll, read_goo, read_jsonl, read_mit
from hlcli.data.readers.spans import read_mtod, read_mtop
from hlcli.errors import unknown_name

__all__ = ["READERS", "read_conll", "read_file", "read_goo", "read_jsonl", "read_mit", "read_mtod", "read_mtop"]

READERS: dict[str, Callable[..., list[Example]]] = {
    "conll": read_conll,
    "jsonl": read_jsonl,
    "mit": read_mit,
    "goo": read_goo,
    "mtop": read_mtop,
    "mtod": read_mtod,
}


def read_file(path: str | Path, *, format: str, task: str) -> list[Example]:
    """Read one file (a folder for ``goo``) in ``format`` (one of :data:`READERS`)."""
    if format not in READERS:
        raise unknown_name("format", format, list(READERS))
    return READERS[format](Path(path), task=task)
