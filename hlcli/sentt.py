"""SentT': sequence labelling as text-to-text for T5 (HyperLoader, arXiv 2407.01411, §3).

The input interleaves the sentence's words with T5's sentinel tokens; the target interleaves
the same sentinels with *simplified BIO* (sBIO) labels, one per word (one line each, wrapped here)::

    input : <extra_id_0> play <extra_id_1> the <extra_id_2> song <extra_id_3> little
            <extra_id_4> robin <extra_id_5> redbreast <extra_id_6>
    target: <extra_id_0> O <extra_id_1> O <extra_id_2> MUSIC_ITEM <extra_id_3> TRACK
            <extra_id_4> I <extra_id_5> I <extra_id_6>

sBIO: the first word of a span carries the bare type name (exactly as spelled in the corpus),
``I`` continues the span, ``O`` is outside. ``L`` words use ``L + 1`` sentinels; the last one
closes the sentence. T5 has 100 sentinels, so at most :data:`MAX_WORDS` (99) words fit in one
sequence; longer sentences are cut into windows (:func:`windows`) and stitched back
(:func:`stitch`). See ``docs/sentt.md`` for the rules and the per-corpus round-trip figures.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Collection, Iterable, Sequence

from hlcli.data.example import Example
from hlcli.errors import HLError

SENTINELS = 100
MAX_WORDS = SENTINELS - 1
INSIDE = "I"
OUTSIDE = "O"

# Bounded digits: int() of a huge digit string would raise (and no real sentinel is that long).
_SENTINEL_RE = re.compile(r"<extra_id_(\d{1,6})>")
# What T5's tokenizer.decode leaves around the labels when special tokens are not skipped.
_ARTEFACT_RE = re.compile(r"</s>|<pad>|<s>")
# Any other special token (e.g. <unk>) is never a label.
_SPECIAL_RE = re.compile(r"<[^<>\s]*>")


def sentinel(i: int) -> str:
    """The ``i``-th T5 sentinel token, ``<extra_id_i>``."""
    if not 0 <= i < SENTINELS:
        raise ValueError(f"sentinel index {i} outside 0..{SENTINELS - 1}")
    return f"<extra_id_{i}>"


# --------------------------------------------------------------------------- BIO <-> sBIO


def _split_tag(tag: str) -> tuple[str, str]:
    """``"B-X"`` → ``("B", "X")``; ``"O"`` → ``("O", "")``; anything else is an HLError."""
    if tag == OUTSIDE:
        return OUTSIDE, ""
    if len(tag) > 2 and tag[1] == "-" and tag[0] in "BI":
        return tag[0], tag[2:]
    raise HLError(f"not a BIO tag: {tag!r}", expected="O, B-TYPE or I-TYPE")


def bio_to_sbio(tags: Sequence[str]) -> list[str]:
    """BIO tags → sBIO labels.

    ``B-X`` → ``X``; ``I-X`` continuing a span of type ``X`` → ``I``; ``O`` → ``O``.
    An ill-formed ``I-X`` (at the start, after ``O`` or after a span of another type) starts a
    new span, as seqeval and conlleval read it, so it becomes ``X``: the entities are kept,
    only the spelling of the tag changes (``O I-X`` comes back as ``O B-X``).
    """
    labels: list[str] = []
    current = ""  # type of the span the previous word belongs to, "" when outside
    for tag in tags:
        prefix, kind = _split_tag(tag)
        if prefix == OUTSIDE:
            labels.append(OUTSIDE)
            current = ""
        elif prefix == "I" and kind == current:
            labels.append(INSIDE)
        else:
            labels.append(kind)
            current = kind
    return labels


def sbio_to_bio(labels: Sequence[str]) -> list[str]:
    """sBIO labels → BIO tags.

    A type name ``X`` → ``B-X``; ``I`` → ``I-<type of the open span>``; ``O`` → ``O``.
    A stray ``I`` (first word, or after ``O``) continues nothing and becomes ``O``:
    :func:`bio_to_sbio` never produces one, so this only affects model output, where
    guessing a type would invent an entity.
    """
    tags: list[str] = []
    current = ""
    for label in labels:
        if label == OUTSIDE:
            tags.append(OUTSIDE)
            current = ""
        elif label == INSIDE:
            tags.append(f"I-{current}" if current else OUTSIDE)
        else:
            tags.append(f"B-{label}")
            current = label
    return tags


# --------------------------------------------------------------------------- encoding


def interleave(items: Sequence[str]) -> str:
    """``["a", "b"]`` → ``"<extra_id_0> a <extra_id_1> b <extra_id_2>"``."""
    if len(items) > MAX_WORDS:
        raise HLError(
            f"{len(items)} words do not fit in one SentT' sequence",
            expected=f"at most {MAX_WORDS} words (T5 has {SENTINELS} sentinels); use sentt.windows()",
        )
    parts: list[str] = []
    for i, item in enumerate(items):
        parts.append(sentinel(i))
        parts.append(item)
    parts.append(sentinel(len(items)))
    return " ".join(parts)


def encode_input(tokens: Sequence[str]) -> str:
    """The SentT' input of one sentence (at most :data:`MAX_WORDS` words)."""
    return interleave(tokens)


def encode_target(tags_bio: Sequence[str]) -> str:
    """The SentT' target of one sentence's BIO tags (at most :data:`MAX_WORDS` words)."""
    return interleave(bio_to_sbio(tags_bio))


def encode(example: Example) -> tuple[str, str]:
    """``(input, target)`` of a sentence of at most :data:`MAX_WORDS` words."""
    return encode_input(example.tokens), encode_target(example.tags)


def encode_windows(example: Example, max_words: int = MAX_WORDS) -> list[tuple[str, str]]:
    """``(input, target)`` per window of ``example`` (one pair when it fits in one sequence).

    The target is the sentence's sBIO sliced per window, so a span cut by a window boundary
    keeps ``I`` on its first word in the next window (see :func:`windows`).
    """
    labels = bio_to_sbio(example.tags)
    return [
        (interleave(example.tokens[start:end]), interleave(labels[start:end]))
        for start, end in windows(len(example.tokens), max_words)
    ]


# --------------------------------------------------------------------------- decoding


def label_vocabulary(types: Iterable[str]) -> list[str]:
    """The sBIO labels a task with these entity types can produce: its types, then ``I``, ``O``."""
    vocabulary: list[str] = []
    for kind in types:
        if kind in (INSIDE, OUTSIDE):
            raise HLError(
                f"entity type {kind!r} cannot be written in sBIO",
                expected=f"a type other than {INSIDE!r} and {OUTSIDE!r}",
            )
        if not kind or any(ch.isspace() for ch in kind) or "<extra_id" in kind:
            raise HLError(
                f"entity type {kind!r} cannot be written in sBIO",
                expected="a non-empty type name without whitespace or '<extra_id'",
            )
        if kind not in vocabulary:
            vocabulary.append(kind)
    return vocabulary + [INSIDE, OUTSIDE]


def decode(text: str, n_words: int, *, types: Collection[str] | None = None) -> list[str]:
    """Generated SentT' text → exactly ``n_words`` sBIO labels; never raises on bad text.

    The text is read by sentinel index: the label of word ``i`` is whatever stands between
    ``<extra_id_i>`` and the next sentinel. A slot that is missing, empty, holds more than
    one word or a special token such as ``<unk>``, or (when ``types`` is given) a label
    outside :func:`label_vocabulary` gives ``O``; indices ``>= n_words`` and text before the
    first sentinel are ignored; a repeated index keeps its first occurrence. So one bad label
    never shifts the others. T5 decoding artefacts (``<pad>``, ``</s>``, missing or extra
    spaces) are ignored.
    """
    allowed = None if types is None else set(label_vocabulary(types))
    labels = [OUTSIDE] * n_words
    seen: set[int] = set()
    pieces = _SENTINEL_RE.split(_ARTEFACT_RE.sub(" ", text))
    # pieces = [before, index0, content0, index1, content1, ...]
    for index_text, content in zip(pieces[1::2], pieces[2::2]):
        index = int(index_text)
        if index >= n_words or index in seen:
            continue
        seen.add(index)
        words = content.split()
        if len(words) != 1:
            continue
        label = words[0]
        known = label in allowed if allowed is not None else not _SPECIAL_RE.fullmatch(label)
        if known:
            labels[index] = label
    return labels


# --------------------------------------------------------------------------- windows


def windows(n_words: int, max_words: int = MAX_WORDS) -> list[tuple[int, int]]:
    """Cut ``n_words`` words into ``[start, end)`` windows that fit in one SentT' sequence.

    Rule: ``k = ceil(n_words / max_words)`` consecutive, non-overlapping windows whose sizes
    differ by at most one (the first ones take the extra word): 250 words → 84 + 83 + 83, not
    99 + 99 + 52, so no window is left with almost no context. A sentence that fits gives one
    window ``(0, n_words)``, an empty sentence ``[(0, 0)]``.
    """
    if max_words < 1 or max_words > MAX_WORDS:
        raise ValueError(f"max_words must be in 1..{MAX_WORDS}, got {max_words}")
    if n_words < 0:
        raise ValueError(f"n_words must be >= 0, got {n_words}")
    count = max(1, -(-n_words // max_words))
    size, extra = divmod(n_words, count)
    spans: list[tuple[int, int]] = []
    start = 0
    for i in range(count):
        end = start + size + (1 if i < extra else 0)
        spans.append((start, end))
        start = end
    return spans


def stitch(labels_per_window: Sequence[Sequence[str]], windows: Sequence[tuple[int, int]], n_words: int) -> list[str]:
    """Put the sBIO labels of each window back into one sentence of ``n_words`` labels.

    Windows are consecutive and non-overlapping, so this is a concatenation. Labels are
    stitched in sBIO, *before* :func:`sbio_to_bio`: an ``I`` at the start of a window then
    continues the span the previous window ended in, which is exactly how the training targets
    of a cut span look (``encode_windows`` slices the sentence's sBIO). Hence
    ``sbio_to_bio(stitch([labels[s:e] for s, e in w], w, n))`` gives back the BIO tags.
    """
    if len(labels_per_window) != len(windows):
        raise ValueError(f"{len(labels_per_window)} label lists for {len(windows)} windows")
    labels = [OUTSIDE] * n_words
    for window_labels, (start, end) in zip(labels_per_window, windows):
        if len(window_labels) != end - start:
            raise ValueError(f"window [{start}, {end}) has {len(window_labels)} labels")
        labels[start:end] = window_labels
    return labels


# --------------------------------------------------------------------------- round-trip report


@dataclass
class RoundTrip:
    """How BIO → sBIO → BIO fares on a set of sentences (see :func:`roundtrip_report`)."""

    sentences: int = 0
    exact: int = 0
    # Ill-formed BIO (an I-X that continues no X span): sBIO cannot spell the stray I-X, it comes
    # back as B-X; seqeval reads both the same way, so the entities are unchanged.
    ill_formed: int = 0
    # Anything else that does not come back; must stay 0.
    failed: int = 0
    # B-X directly after a span of type X (B-X B-X, B-X I-X B-X): expressible in sBIO (X X,
    # X I X) and counted to show it: sentences that have one, and occurrences.
    adjacent_same_type: int = 0
    adjacent_same_type_pairs: int = 0
    longer_than_window: int = 0
    reasons: Counter = field(default_factory=Counter)


def roundtrip_report(examples: Iterable[Example]) -> RoundTrip:
    """Classify every sentence's BIO → sBIO (windowed) → BIO round trip."""
    from seqeval.metrics.sequence_labeling import get_entities

    report = RoundTrip()
    for example in examples:
        tags = list(example.tags)
        report.sentences += 1
        spans = windows(len(tags))
        report.longer_than_window += len(spans) > 1
        labels = bio_to_sbio(tags)
        back = sbio_to_bio(stitch([labels[s:e] for s, e in spans], spans, len(tags)))
        pairs = adjacent_same_type(tags)
        report.adjacent_same_type += pairs > 0
        report.adjacent_same_type_pairs += pairs
        if back == tags:
            report.exact += 1
        elif _is_ill_formed(tags) and get_entities(back) == get_entities(tags):
            report.ill_formed += 1
            report.reasons["I-X continuing no X span"] += 1
        else:
            report.failed += 1
            report.reasons["entities changed"] += 1
    return report


def _is_ill_formed(tags: Sequence[str]) -> bool:
    previous = OUTSIDE
    for tag in tags:
        if tag.startswith("I-") and (previous == OUTSIDE or previous[2:] != tag[2:]):
            return True
        previous = tag
    return False


def adjacent_same_type(tags: Sequence[str]) -> int:
    """How many spans directly follow a span of the same type (``B-X B-X``, ``B-X I-X B-X``)."""
    return sum(
        tag.startswith("B-") and previous != OUTSIDE and previous[2:] == tag[2:]
        for previous, tag in zip(tags, tags[1:])
    )
