"""Readers of column formats: Goo et al.'s folders (ATIS, SNIPS), the MIT corpora, CoNLL and JSONL."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from hlcli.data.example import Example
from hlcli.data.readers.common import (
    ANY_SCHEME_TAG_RE,
    EXPECTED_TAG,
    TAG_RE,
    block_examples,
    check_counts,
    check_tag,
    is_word,
    make_example,
    read_lines,
    tab_columns,
)
from hlcli.errors import HLError

# --------------------------------------------------------------------------- Goo et al. (ATIS, SNIPS)

GOO_LAYOUT = "a folder with line-aligned seq.in (tokens), seq.out (BIO tags) and label (intent)"


def read_goo(folder: str | Path, *, task: str) -> list[Example]:
    folder = Path(folder)
    if not folder.is_dir():
        raise HLError("folder not found", path=folder, expected=GOO_LAYOUT)
    seq_in, seq_out, label = folder / "seq.in", folder / "seq.out", folder / "label"
    token_lines = read_lines(seq_in, expected=GOO_LAYOUT)
    tag_lines = read_lines(seq_out, expected=GOO_LAYOUT)
    intents: list[str | None] = read_lines(label, expected=GOO_LAYOUT) if label.exists() else [None] * len(token_lines)
    for other, lines in ((seq_out, tag_lines), (label, intents)):
        if len(lines) != len(token_lines):
            raise HLError(
                f"{len(lines)} lines but seq.in has {len(token_lines)}",
                path=other,
                expected="line-aligned seq.in, seq.out and label",
            )
    examples = []
    for number, (tokens, tags, intent) in enumerate(zip(token_lines, tag_lines, intents, strict=True), 1):
        # SNIPS lines end with a space: split on whitespace, never on " ".
        tokens, tags = tokens.split(), tags.split()
        check_counts(tokens, tags, path=seq_out, line=number, where=" in seq.in")
        example = make_example(task, tokens, tags, intent.strip() if intent else None, seq_out, number)
        examples.append(replace(example, source=f"{seq_in}:{number}"))
    return examples


# --------------------------------------------------------------------------- MIT corpora

MIT_LAYOUT = "one 'tag<TAB>token' or 'token<TAB>tag' line per token, blank line between sentences"


def read_mit(path: str | Path, *, task: str, schemes: bool = False) -> list[Example]:
    path = Path(path)
    lines = read_lines(path, expected=MIT_LAYOUT)
    rows = []
    for number, line in enumerate(lines, 1):
        if line.strip():
            rows.append((number, tab_columns(line, 2, path=path, number=number, expected=MIT_LAYOUT)))
    # The column order differs between the MIT folders: the tag column is the one whose values
    # look like BIO tags in the first lines (a token such as "O" can look like one, rarely).
    head = rows[:200]
    tag_re = ANY_SCHEME_TAG_RE if schemes else TAG_RE
    tag_first = sum(bool(tag_re.fullmatch(c[0])) for _, c in head)
    tag_last = sum(bool(tag_re.fullmatch(c[1])) for _, c in head)
    if not tag_first and not tag_last:
        raise HLError("no column of BIO tags found", path=path, line=rows[0][0], expected=MIT_LAYOUT)
    tag_column = 0 if tag_first > tag_last else 1
    by_line = dict(rows)

    def word(number: int, _line: str) -> tuple[str, str]:
        columns = by_line[number]
        tag, token = columns[tag_column], columns[1 - tag_column]
        check_tag(tag, path=path, line=number, schemes=schemes)
        if not token.strip():
            raise HLError("empty token", path=path, line=number, expected=MIT_LAYOUT)
        return token, tag

    return block_examples(lines, word, task=task, path=path, schemes=schemes)


# --------------------------------------------------------------------------- generic CoNLL / JSONL

CONLL_LAYOUT = "whitespace-separated columns with the token first and the BIO tag last, blank line between sentences"


def read_conll(path: str | Path, *, task: str, schemes: bool = False) -> list[Example]:
    path = Path(path)
    lines = read_lines(path, expected=CONLL_LAYOUT)

    def word(number: int, line: str) -> tuple[str, str] | None:
        columns = line.split()
        if columns[0] == "-DOCSTART-":
            return None
        if len(columns) < 2:
            raise HLError("only 1 column", path=path, line=number, expected=CONLL_LAYOUT)
        check_tag(columns[-1], path=path, line=number, schemes=schemes)
        return columns[0], columns[-1]

    examples = block_examples(lines, word, task=task, path=path, schemes=schemes)
    if not examples:
        raise HLError("no sentences", path=path, expected=CONLL_LAYOUT)
    return examples


JSONL_LAYOUT = 'one JSON object per line: {"tokens": [...], "tags": [...]} with one tag per token'


def read_jsonl(path: str | Path, *, task: str, schemes: bool = False) -> list[Example]:
    path = Path(path)
    examples = []
    for number, line in enumerate(read_lines(path, expected=JSONL_LAYOUT), 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as error:
            raise HLError(
                f"malformed JSON: {error.msg} at column {error.pos + 1}", path=path, line=number, expected=JSONL_LAYOUT
            ) from None
        if not isinstance(data, dict) or not all(isinstance(data.get(key), list) for key in ("tokens", "tags")):
            raise HLError('missing "tokens" or "tags" list', path=path, line=number, expected=JSONL_LAYOUT)
        tokens, tags, intent = data["tokens"], data["tags"], data.get("intent")
        if not all(is_word(t) for t in tokens):
            raise HLError(
                "tokens must be non-empty strings without spaces", path=path, line=number, expected=JSONL_LAYOUT
            )
        if not all(isinstance(t, str) for t in tags):
            raise HLError("tags must be strings", path=path, line=number, expected=EXPECTED_TAG)
        intent = intent if isinstance(intent, str) else None
        examples.append(make_example(task, tokens, tags, intent, path, number, schemes))
    if not examples:
        raise HLError("no sentences", path=path, expected=JSONL_LAYOUT)
    return examples
