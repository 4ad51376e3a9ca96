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

import json
import re
from dataclasses import replace
from collections.abc import Callable, Iterator
from pathlib import Path

from hlcli.data.example import Example
from hlcli.errors import HLError, unknown_name

TAG_RE = re.compile(r"O|[BI]-\S+")
EXPECTED_TAG = "'O', 'B-TYPE' or 'I-TYPE'"
# Users' own data may come in IOBES (S-/E-) or BILOU (U-/L-): accepted by the readers of users'
# formats only with ``schemes=True``, then rewritten to BIO by :func:`to_bio` (which says so).
ANY_SCHEME_TAG_RE = re.compile(r"O|[BIESLU]-\S+")
ACCEPTED_SCHEMES = "BIO/IOB2, IOB1, IOBES (S-, E-) or BILOU (U-, L-) tags"


# --------------------------------------------------------------------------- shared helpers


def read_lines(path: Path, *, expected: str) -> list[str]:
    """The file's lines without ``\\n``/``\\r``; missing, empty and non-UTF-8 files are HLErrors.

    Bytes are decoded line by line only when the whole file fails to decode, so that the error
    names the right line at no cost for valid files.
    """
    path = Path(path)
    if path.is_dir():
        raise HLError("is a folder, not a file", path=path, expected=expected)
    if not path.is_file():
        raise HLError("file not found", path=path, expected=expected)
    data = path.read_bytes()
    if not data.strip():
        raise HLError("empty file", path=path, expected=expected)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        for number, raw in enumerate(data.split(b"\n"), 1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise HLError(
                    f"undecodable bytes at column {error.start + 1}", path=path, line=number, expected="UTF-8 text"
                ) from None
        raise  # unreachable: some line must fail when the whole file does
    text = text.removeprefix("\ufeff")
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return [line.rstrip("\r") for line in lines]


def check_tags(tags: list[str] | tuple[str, ...], *, path: Path, line: int, schemes: bool = False) -> None:
    """Validate BIO prefixes only: an ``I-X`` after ``O`` is kept as the corpus has it."""
    for tag in tags:
        _check_tag(tag, path=path, line=line, schemes=schemes)


def _check_tag(tag: str, *, path: Path | str, line: int | None, schemes: bool = False) -> None:
    if schemes:
        if not ANY_SCHEME_TAG_RE.fullmatch(tag):
            raise HLError(f"unknown tag {tag!r}", path=path, line=line, expected=ACCEPTED_SCHEMES)
    elif not TAG_RE.fullmatch(tag):
        raise HLError(f"unknown BIO tag {tag!r}", path=path, line=line, expected=EXPECTED_TAG)


def to_bio(examples: list[Example], *, where: str) -> tuple[list[Example], str | None]:
    """``examples`` with IOBES/BILOU tags rewritten to BIO, and the scheme converted (None: was BIO).

    ``S-X``/``U-X`` become ``B-X`` and ``E-X``/``L-X`` become ``I-X``: the same chunks. A file
    mixing IOBES and BILOU prefixes is refused rather than guessed at.
    """
    prefixes = {tag[0] for example in examples for tag in example.tags if tag != "O"}
    iobes, bilou = prefixes & {"S", "E"}, prefixes & {"U", "L"}
    if not iobes and not bilou:
        return examples, None
    if iobes and bilou:
        raise HLError(
            f"mixed tag schemes: both {'/'.join(sorted(iobes))}- and {'/'.join(sorted(bilou))}- prefixes",
            path=where,
            expected=ACCEPTED_SCHEMES + ", one scheme per task",
        )
    mapping = {"S": "B", "U": "B", "E": "I", "L": "I"}
    converted = [
        replace(example, tags=tuple(mapping.get(tag[0], tag[0]) + tag[1:] if tag != "O" else tag for tag in example.tags))
        for example in examples
    ]
    return converted, "IOBES" if iobes else "BILOU"


def _make(
    task: str, tokens: list[str], tags: list[str], intent: str | None, path: Path, line: int, schemes: bool = False
) -> Example:
    if not tokens:
        raise HLError("empty sentence", path=path, line=line, expected="at least one token")
    if len(tokens) != len(tags):
        raise HLError(
            f"token/tag count mismatch: {len(tokens)} tokens, {len(tags)} tags",
            path=path,
            line=line,
            expected="one tag per token",
        )
    check_tags(tags, path=path, line=line, schemes=schemes)
    return Example(task=task, tokens=tuple(tokens), tags=tuple(tags), intent=intent, source=f"{path}:{line}")


def _blocks(lines: list[str]) -> Iterator[tuple[int, list[tuple[int, str]]]]:
    """Blank-line separated sentences as (first line number, [(line number, line)])."""
    block: list[tuple[int, str]] = []
    for number, line in enumerate(lines, 1):
        if line.strip():
            block.append((number, line))
        elif block:
            yield block[0][0], block
            block = []
    if block:
        yield block[0][0], block


def bio_from_char_spans(
    token_spans: list[tuple[int, int]],
    slots: list[tuple[int, int, str]],
    *,
    path: Path,
    line: int,
) -> list[str]:
    """BIO tags of tokens given slot character spans ``[start, end)``: a token is inside a slot
    when their characters overlap; the first such token gets ``B-``. A token already claimed by
    an earlier slot keeps its tag (overlapping annotations cannot be expressed in BIO)."""
    tags = ["O"] * len(token_spans)
    for start, end, kind in sorted(slots):
        overlapping = [i for i, (s, e) in enumerate(token_spans) if s < end and e > start]
        if not overlapping:
            raise HLError(
                f"slot span {start}:{end} ({kind}) covers no token", path=path, line=line, expected="slots over tokens"
            )
        inside = [i for i in overlapping if tags[i] == "O"]
        for position, index in enumerate(inside):
            tags[index] = ("B-" if position == 0 else "I-") + kind
    return tags


def _parse_spans(field: str, *, length: int, path: Path, line: int, prefix: str = "") -> list[tuple[int, int, str]]:
    """``start:end:type`` spans joined by ``,`` (empty field: no slots)."""
    expected = f"comma-separated 'start:end:{prefix}TYPE' character spans"
    spans = []
    for item in filter(None, field.split(",")):
        parts = item.split(":", 2)
        if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit() or not parts[2]:
            raise HLError(f"malformed slot span {item!r}", path=path, line=line, expected=expected)
        start, end, kind = int(parts[0]), int(parts[1]), parts[2]
        if prefix:
            if not kind.startswith(prefix):
                raise HLError(f"malformed slot span {item!r}", path=path, line=line, expected=expected)
            kind = kind[len(prefix) :]
        if not 0 <= start < end <= length:
            raise HLError(
                f"slot span {start}:{end} outside the utterance ({length} characters)",
                path=path,
                line=line,
                expected="0 <= start < end <= utterance length",
            )
        spans.append((start, end, kind))
    return spans


def _parse_tokenization(field: str, *, length: int, path: Path, line: int) -> tuple[list[str], list[tuple[int, int]]]:
    """Tokens and their character spans from mTOD (``{"tokenizations": [{...}]}``) or mTOP
    (``{"tokens": [...], "tokenSpans": [...]}``) JSON."""
    expected = 'JSON with "tokens" and "tokenSpans" [{"start": .., "length": ..}]'
    try:
        data = json.loads(field)
        if "tokenizations" in data:
            data = data["tokenizations"][0]
        tokens = data["tokens"]
        spans = [(int(span["start"]), int(span["start"]) + int(span["length"])) for span in data["tokenSpans"]]
    except json.JSONDecodeError as error:
        raise HLError(f"malformed tokens JSON: {error.msg} at column {error.pos + 1}", path=path, line=line, expected=expected) from None
    except (KeyError, IndexError, TypeError, ValueError, AttributeError):
        raise HLError("malformed tokens JSON", path=path, line=line, expected=expected) from None
    if len(tokens) != len(spans) or not all(isinstance(token, str) and token for token in tokens):
        raise HLError(
            f"{len(tokens)} tokens but {len(spans)} token spans", path=path, line=line, expected=expected
        )
    for start, end in spans:
        if not 0 <= start < end <= length:
            raise HLError(
                f"token span {start}:{end} outside the utterance ({length} characters)",
                path=path,
                line=line,
                expected="0 <= start < end <= utterance length",
            )
    return tokens, spans


def _columns(line: str, count: int | tuple[int, ...], *, path: Path, number: int, expected: str) -> list[str]:
    columns = line.split("\t")
    counts = (count,) if isinstance(count, int) else count
    if len(columns) not in counts:
        raise HLError(f"{len(columns)} tab-separated columns", path=path, line=number, expected=expected)
    return columns


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
        if len(tokens) != len(tags):
            raise HLError(
                f"token/tag count mismatch: {len(tokens)} tokens in seq.in, {len(tags)} tags",
                path=seq_out,
                line=number,
                expected="one tag per token",
            )
        example = _make(task, tokens, tags, intent.strip() if intent else None, seq_out, number)
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
            rows.append((number, _columns(line, 2, path=path, number=number, expected=MIT_LAYOUT)))
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
    examples = []
    for first, block in _blocks(lines):
        tokens, tags = [], []
        for number, _ in block:
            columns = by_line[number]
            tag, token = columns[tag_column], columns[1 - tag_column]
            _check_tag(tag, path=path, line=number, schemes=schemes)
            if not token.strip():
                raise HLError("empty token", path=path, line=number, expected=MIT_LAYOUT)
            tokens.append(token)
            tags.append(tag)
        examples.append(_make(task, tokens, tags, None, path, first, schemes))
    return examples


# --------------------------------------------------------------------------- generic CoNLL / JSONL

CONLL_LAYOUT = "whitespace-separated columns with the token first and the BIO tag last, blank line between sentences"


def read_conll(path: str | Path, *, task: str, schemes: bool = False) -> list[Example]:
    path = Path(path)
    lines = read_lines(path, expected=CONLL_LAYOUT)
    examples = []
    for first, block in _blocks(lines):
        tokens, tags = [], []
        for number, line in block:
            columns = line.split()
            if columns[0] == "-DOCSTART-":
                continue
            if len(columns) < 2:
                raise HLError("only 1 column", path=path, line=number, expected=CONLL_LAYOUT)
            _check_tag(columns[-1], path=path, line=number, schemes=schemes)
            tokens.append(columns[0])
            tags.append(columns[-1])
        if tokens:
            examples.append(_make(task, tokens, tags, None, path, first, schemes))
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
        if not isinstance(data, dict) or not isinstance(data.get("tokens"), list) or not isinstance(data.get("tags"), list):
            raise HLError('missing "tokens" or "tags" list', path=path, line=number, expected=JSONL_LAYOUT)
        tokens, tags, intent = data["tokens"], data["tags"], data.get("intent")
        if not all(isinstance(t, str) and t and not any(c.isspace() for c in t) for t in tokens):
            raise HLError("tokens must be non-empty strings without spaces", path=path, line=number, expected=JSONL_LAYOUT)
        if not all(isinstance(t, str) for t in tags):
            raise HLError("tags must be strings", path=path, line=number, expected=EXPECTED_TAG)
        examples.append(_make(task, tokens, tags, intent if isinstance(intent, str) else None, path, number, schemes))
    if not examples:
        raise HLError("no sentences", path=path, expected=JSONL_LAYOUT)
    return examples


# --------------------------------------------------------------------------- mTOP

MTOP_LAYOUT = (
    "5 tab-separated columns (utterance, flat parse, nested parse, domain, locale) or the 8-column "
    "mTOP release (id, intent, slot spans, utterance, domain, locale, decoupled form, tokens JSON)"
)
# Output tokens: whitespace-separated words with leading/trailing punctuation and a possessive
# "'s" split off ("me?" -> "me", "?"; "a.m." -> "a.m", "."; "Emily's" -> "Emily", "'s"), as
# mTOP's own tokenizer does, so that slots such as "Emily" cover whole tokens.
_WORD_RE = re.compile(r"\w(?:\S*?\w)?(?=['’][sS]\b)|['’][sS]\b|\w(?:\S*\w)?|\S")
# Alignment boundaries: finer pieces, because the parse splits "7pm" into "7 pm" and "Trump's"
# into "Trump 's"; a slot must start and end on such a boundary ("me" must not match "messaged").
_PIECE_RE = re.compile(r"[^\W\d]+|\d+|[^\w\s]")


def _flat_slots(parse: str, *, path: Path, line: int) -> tuple[str | None, list[tuple[str, list[str]]]]:
    """Intent and top-level ``[SL:TYPE words ]`` slots (type, words) of an mTOP parse."""
    intent = None
    slots: list[tuple[str, list[str]]] = []
    depth = 0
    slot_depth = None  # depth at which the open top-level slot started
    for word in parse.split():
        if word.startswith("[IN:") or word.startswith("[SL:"):
            depth += 1
            if word.startswith("[IN:") and intent is None:
                intent = word[4:]
            elif word.startswith("[SL:") and slot_depth is None:
                slot_depth = depth
                slots.append((word[4:], []))
        elif word == "]":
            if depth == slot_depth:
                slot_depth = None
            depth -= 1
            if depth < 0:
                break
        elif slot_depth is not None:
            slots[-1][1].append(word)
    if depth != 0 or intent is None or not parse.startswith("[IN:"):
        raise HLError(
            "malformed parse", path=path, line=line, expected="a bracketed parse like '[IN:X [SL:TYPE words ] ]'"
        )
    return intent, slots


def _align_parse(utterance: str, slots: list[tuple[str, list[str]]], *, path: Path, line: int) -> list[tuple[int, int, str]]:
    """Character spans of the parse's slots in the utterance, found in order, ignoring spaces."""
    keep = [i for i, c in enumerate(utterance) if not c.isspace()]  # stripped index -> utterance index
    stripped = "".join(utterance[i] for i in keep)
    to_stripped = {original: index for index, original in enumerate(keep)}
    starts, ends = set(), set()
    for piece in _PIECE_RE.finditer(utterance):
        starts.add(to_stripped[piece.start()])
        ends.add(to_stripped[piece.end() - 1] + 1)
    spans, cursor = [], 0
    for kind, words in slots:
        target = "".join(words)
        if not target:
            continue
        found = -1
        # In order first; slots out of utterance order are searched from the start.
        for origin in (cursor, 0):
            at = stripped.find(target, origin)
            while at != -1 and not (at in starts and at + len(target) in ends):
                at = stripped.find(target, at + 1)
            if at != -1:
                found = at
                break
        if found == -1:
            raise HLError(
                f"slot text {' '.join(words)!r} ({kind}) not found in the utterance",
                path=path,
                line=line,
                expected="every slot's words in the utterance",
            )
        cursor = found + len(target)
        spans.append((keep[found], keep[found + len(target) - 1] + 1, kind))
    return spans


def read_mtop(path: str | Path, *, task: str) -> list[Example]:
    path = Path(path)
    lines = read_lines(path, expected=MTOP_LAYOUT)
    width = None
    examples = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        columns = _columns(line, (5, 8) if width is None else width, path=path, number=number, expected=MTOP_LAYOUT)
        width = len(columns)
        if width == 5:
            utterance, flat = columns[0], columns[1]
            intent, slots = _flat_slots(flat, path=path, line=number)
            words = list(_WORD_RE.finditer(utterance))
            tokens = [w.group() for w in words]
            spans = [(w.start(), w.end()) for w in words]
            slot_spans = _align_parse(utterance, slots, path=path, line=number)
        else:
            intent, utterance = columns[1].removeprefix("IN:"), columns[3]
            slot_spans = _parse_spans(columns[2], length=len(utterance), path=path, line=number, prefix="SL:")
            tokens, spans = _parse_tokenization(columns[7], length=len(utterance), path=path, line=number)
        tags = bio_from_char_spans(spans, slot_spans, path=path, line=number)
        examples.append(_make(task, tokens, tags, intent, path, number))
    return examples


# --------------------------------------------------------------------------- mTOD

MTOD_LAYOUT = "5 tab-separated columns: intent, 'start:end:type' slot spans, utterance, locale, tokenization JSON"


def read_mtod(path: str | Path, *, task: str) -> list[Example]:
    path = Path(path)
    examples = []
    # Duplicate utterances are kept, as in the paper.
    for number, line in enumerate(read_lines(path, expected=MTOD_LAYOUT), 1):
        if not line.strip():
            continue
        intent, slot_field, utterance, _locale, tokenization = _columns(
            line, 5, path=path, number=number, expected=MTOD_LAYOUT
        )
        slot_spans = _parse_spans(slot_field, length=len(utterance), path=path, line=number)
        tokens, spans = _parse_tokenization(tokenization, length=len(utterance), path=path, line=number)
        tags = bio_from_char_spans(spans, slot_spans, path=path, line=number)
        examples.append(_make(task, tokens, tags, intent, path, number))
    return examples


# --------------------------------------------------------------------------- dispatcher

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
