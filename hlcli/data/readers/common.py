"""What every reader shares: a file's lines, tag checks, tab columns, blank-line sentences, one
:class:`Example` per sentence, and IOBES/BILOU → BIO for users' own data."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

from hlcli.data.example import Example
from hlcli.errors import HLError

TAG_RE = re.compile(r"O|[BI]-\S+")
EXPECTED_TAG = "'O', 'B-TYPE' or 'I-TYPE'"
# Users' own data may come in IOBES (S-/E-) or BILOU (U-/L-): accepted by the readers of users'
# formats only with ``schemes=True``, then rewritten to BIO by :func:`to_bio` (which says so).
ANY_SCHEME_TAG_RE = re.compile(r"O|[BIESLU]-\S+")
ACCEPTED_SCHEMES = "BIO/IOB2, IOB1, IOBES (S-, E-) or BILOU (U-, L-) tags"


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
        check_tag(tag, path=path, line=line, schemes=schemes)


def check_tag(tag: str, *, path: Path | str, line: int | None, schemes: bool = False) -> None:
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
        replace(example, tags=tuple(mapping[tag[0]] + tag[1:] if tag[0] in mapping else tag for tag in example.tags))
        for example in examples
    ]
    return converted, "IOBES" if iobes else "BILOU"


def is_word(token: object) -> bool:
    """A token as a list of tokens may hold it: a non-empty string without white space."""
    return isinstance(token, str) and bool(token) and not any(c.isspace() for c in token)


def make_example(
    task: str, tokens: list[str], tags: list[str], intent: str | None, path: Path, line: int, schemes: bool = False
) -> Example:
    if not tokens:
        raise HLError("empty sentence", path=path, line=line, expected="at least one token")
    check_counts(tokens, tags, path=path, line=line)
    check_tags(tags, path=path, line=line, schemes=schemes)
    return Example(task=task, tokens=tuple(tokens), tags=tuple(tags), intent=intent, source=f"{path}:{line}")


def check_counts(tokens: list[str], tags: list[str], *, path: Path, line: int, where: str = "") -> None:
    if len(tokens) != len(tags):
        raise HLError(
            f"token/tag count mismatch: {len(tokens)} tokens{where}, {len(tags)} tags",
            path=path,
            line=line,
            expected="one tag per token",
        )


def block_examples(
    lines: list[str],
    word: Callable[[int, str], tuple[str, str] | None],
    *,
    task: str,
    path: Path,
    schemes: bool = False,
) -> list[Example]:
    """One Example per blank-line separated sentence; ``word(line number, line)`` gives a line's
    (token, tag), None for a line to skip, or raises. A sentence of skipped lines only is dropped."""
    examples = []
    for first, block in sentence_blocks(lines):
        words = [pair for pair in (word(number, line) for number, line in block) if pair is not None]
        if words:
            tokens, tags = [token for token, _ in words], [tag for _, tag in words]
            examples.append(make_example(task, tokens, tags, None, path, first, schemes))
    return examples


def sentence_blocks(lines: list[str]) -> Iterator[tuple[int, list[tuple[int, str]]]]:
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


def tab_columns(line: str, count: int | tuple[int, ...], *, path: Path, number: int, expected: str) -> list[str]:
    columns = line.split("\t")
    counts = (count,) if isinstance(count, int) else count
    if len(columns) not in counts:
        raise HLError(f"{len(columns)} tab-separated columns", path=path, line=number, expected=expected)
    return columns
