"""Readers of utterances with slot spans: mTOP (a bracketed parse, or character spans) and mTOD.

Slots are character spans of the utterance; :func:`bio_from_char_spans` makes the tokens' BIO tags.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from hlcli.data.example import Example
from hlcli.data.readers.common import make_example, read_lines, tab_columns
from hlcli.errors import HLError


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
        _check_inside("slot", start, end, length=length, path=path, line=line)
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
        raise HLError(
            f"malformed tokens JSON: {error.msg} at column {error.pos + 1}", path=path, line=line, expected=expected
        ) from None
    except (KeyError, IndexError, TypeError, ValueError, AttributeError):
        raise HLError("malformed tokens JSON", path=path, line=line, expected=expected) from None
    if len(tokens) != len(spans) or not all(isinstance(token, str) and token for token in tokens):
        raise HLError(
            f"{len(tokens)} tokens but {len(spans)} token spans", path=path, line=line, expected=expected
        )
    for start, end in spans:
        _check_inside("token", start, end, length=length, path=path, line=line)
    return tokens, spans


def _check_inside(what: str, start: int, end: int, *, length: int, path: Path, line: int) -> None:
    if not 0 <= start < end <= length:
        raise HLError(
            f"{what} span {start}:{end} outside the utterance ({length} characters)",
            path=path,
            line=line,
            expected="0 <= start < end <= utterance length",
        )


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


def _align_parse(
    utterance: str, slots: list[tuple[str, list[str]]], *, path: Path, line: int
) -> list[tuple[int, int, str]]:
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
        columns = tab_columns(line, (5, 8) if width is None else width, path=path, number=number, expected=MTOP_LAYOUT)
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
        examples.append(make_example(task, tokens, tags, intent, path, number))
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
        intent, slot_field, utterance, _locale, tokenization = tab_columns(
            line, 5, path=path, number=number, expected=MTOD_LAYOUT
        )
        slot_spans = _parse_spans(slot_field, length=len(utterance), path=path, line=number)
        tokens, spans = _parse_tokenization(tokenization, length=len(utterance), path=path, line=number)
        tags = bio_from_char_spans(spans, slot_spans, path=path, line=number)
        examples.append(make_example(task, tokens, tags, intent, path, number))
    return examples
