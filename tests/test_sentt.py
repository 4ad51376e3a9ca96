"""SentT' encoding, robust decoding, windowing and the BIO ↔ sBIO round trip on the real corpora."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _strategies import well_formed_bio
from hlcli import sentt
from hlcli.data.example import Example
from hlcli.errors import HLError

REPO = Path(__file__).resolve().parent.parent

PAPER_TOKENS = "play the song little robin redbreast".split()
PAPER_BIO = ["O", "O", "B-MUSIC_ITEM", "B-TRACK", "I-TRACK", "I-TRACK"]
PAPER_INPUT = (
    "<extra_id_0> play <extra_id_1> the <extra_id_2> song <extra_id_3> little "
    "<extra_id_4> robin <extra_id_5> redbreast <extra_id_6>"
)
PAPER_TARGET = "<extra_id_0> O <extra_id_1> O <extra_id_2> MUSIC_ITEM <extra_id_3> TRACK <extra_id_4> I <extra_id_5> I <extra_id_6>"
PAPER_SBIO = ["O", "O", "MUSIC_ITEM", "TRACK", "I", "I"]
TYPES = ["MUSIC_ITEM", "TRACK"]


def test_paper_example_exactly():
    example = Example("snips", tuple(PAPER_TOKENS), tuple(PAPER_BIO))
    assert sentt.encode(example) == (PAPER_INPUT, PAPER_TARGET)
    assert sentt.decode(PAPER_TARGET, 6, types=TYPES) == PAPER_SBIO
    assert sentt.sbio_to_bio(sentt.decode(PAPER_TARGET, 6)) == PAPER_BIO


def test_sentinels():
    assert sentt.SENTINELS == 100 and sentt.MAX_WORDS == 99
    assert sentt.sentinel(0) == "<extra_id_0>" and sentt.sentinel(99) == "<extra_id_99>"
    with pytest.raises(ValueError):
        sentt.sentinel(100)


def test_bio_sbio_rules():
    # Adjacent spans of one type ARE expressible: the type name starts a new span.
    assert sentt.bio_to_sbio(["B-X", "B-X", "I-X", "B-X"]) == ["X", "X", "I", "X"]
    assert sentt.sbio_to_bio(["X", "X", "I", "X"]) == ["B-X", "B-X", "I-X", "B-X"]
    # Ill-formed I-X starts a span (seqeval/conlleval reading) and comes back as B-X.
    assert sentt.bio_to_sbio(["O", "I-X", "I-X", "B-Y", "I-X"]) == ["O", "X", "I", "Y", "X"]
    assert sentt.sbio_to_bio(["O", "X", "I", "Y", "X"]) == ["O", "B-X", "I-X", "B-Y", "B-X"]
    # A stray I (start, or after O) continues nothing: O.
    assert sentt.sbio_to_bio(["I", "O", "I", "X", "I", "O", "I"]) == ["O", "O", "O", "B-X", "I-X", "O", "O"]
    with pytest.raises(HLError, match="not a BIO tag"):
        sentt.bio_to_sbio(["O", "X"])


def test_label_vocabulary():
    assert sentt.label_vocabulary(["B", "A", "B"]) == ["B", "A", "I", "O"]
    for bad in ("I", "O", "two words", "<extra_id_3>", ""):
        with pytest.raises(HLError):
            sentt.label_vocabulary(["A", bad])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # missing sentinels → O for the missing words
        ("<extra_id_0> O <extra_id_2> MUSIC_ITEM <extra_id_6>", ["O", "O", "MUSIC_ITEM", "O", "O", "O"]),
        # shuffled order is read by index
        ("<extra_id_3> TRACK <extra_id_2> MUSIC_ITEM <extra_id_4> I", ["O", "O", "MUSIC_ITEM", "TRACK", "I", "O"]),
        # garbage: no sentinel at all
        ("this is not SentT' at all", ["O"] * 6),
        ("", ["O"] * 6),
        # unknown label → O, without shifting the neighbours
        ("<extra_id_2> ARTIST <extra_id_3> TRACK <extra_id_4> I", ["O", "O", "O", "TRACK", "I", "O"]),
        # more than one word in a slot → O
        ("<extra_id_2> MUSIC_ITEM TRACK <extra_id_3> TRACK", ["O", "O", "O", "TRACK", "O", "O"]),
        # T5 artefacts: <pad>, </s>, glued sentinels, extra spaces
        ("<pad> <extra_id_0> O<extra_id_1>O <extra_id_2>  MUSIC_ITEM<extra_id_3> TRACK </s><pad>", ["O", "O", "MUSIC_ITEM", "TRACK", "O", "O"]),
        # repeated index keeps the first; indices >= n ignored; text before the first sentinel ignored
        ("TRACK <extra_id_3> TRACK <extra_id_3> O <extra_id_5> I <extra_id_6> TRACK <extra_id_77> I", ["O", "O", "O", "TRACK", "O", "I"]),
        # other special tokens are not labels
        ("<extra_id_3> <unk> <extra_id_4> I", ["O", "O", "O", "O", "I", "O"]),
    ],
)
def test_decode_robustness(text, expected):
    assert sentt.decode(text, 6, types=TYPES) == expected


def test_decode_without_types_accepts_any_single_word():
    assert sentt.decode("<extra_id_0> whatever <extra_id_1> two words", 2) == ["whatever", "O"]
    assert sentt.decode("<extra_id_0> <unk> <extra_id_1> I", 2) == ["O", "I"]
    assert sentt.decode("<extra_id_0> A <extra_id_" + "9" * 5000 + "> B", 1) == ["O"]


def test_windows_rule():
    assert sentt.windows(0) == [(0, 0)]
    assert sentt.windows(99) == [(0, 99)]
    assert sentt.windows(100) == [(0, 50), (50, 100)]
    assert sentt.windows(250) == [(0, 84), (84, 167), (167, 250)]
    with pytest.raises(HLError, match="do not fit"):
        sentt.encode_input(["w"] * 100)


def test_long_sentence_windows_and_stitch():
    n = 250
    tokens = tuple(f"w{i}" for i in range(n))
    tags = ["O"] * n
    # spans crossing both window boundaries (84 and 167), each followed by a span of the same type
    tags[80:88] = ["B-LONG"] + ["I-LONG"] * 7
    tags[88] = "B-LONG"
    tags[160:170] = ["B-X"] + ["I-X"] * 9
    tags[170] = "B-X"
    tags[83] = "B-LONG"  # and a B-LONG B-LONG pair just before the boundary
    example = Example("long", tokens, tuple(tags))

    pairs = sentt.encode_windows(example)
    spans = sentt.windows(n)
    assert len(pairs) == 3
    for (source, target), (start, end) in zip(pairs, spans):
        assert source == sentt.encode_input(tokens[start:end])
        assert target.count("<extra_id_") == end - start + 1
    # The continued span keeps I on the next window's first word (168 - 167 → index 0 of window 3).
    third = sentt.decode(pairs[2][1], spans[2][1] - spans[2][0])
    assert third[0] == "I"

    decoded = [sentt.decode(target, end - start) for (_, target), (start, end) in zip(pairs, spans)]
    stitched = sentt.stitch(decoded, spans, n)
    assert sentt.sbio_to_bio(stitched) == tags


def test_stitch_checks_shapes():
    with pytest.raises(ValueError):
        sentt.stitch([["O"]], [(0, 1), (1, 2)], 2)
    with pytest.raises(ValueError):
        sentt.stitch([["O"], ["O", "O"]], [(0, 1), (1, 2)], 2)


# --------------------------------------------------------------------------- properties

_TOKEN = st.text(alphabet=st.characters(blacklist_categories=("Zs", "Cc", "Zl", "Zp")), min_size=1, max_size=6).filter(
    lambda t: not any(ch.isspace() for ch in t)
)


@given(well_formed_bio(max_size=sentt.MAX_WORDS))
def test_property_encode_decode_roundtrip(tags):
    target = sentt.encode_target(tags)
    labels = sentt.decode(target, len(tags), types={t[2:] for t in tags if t != "O"})
    assert labels == sentt.bio_to_sbio(tags)
    assert sentt.sbio_to_bio(labels) == tags


@settings(max_examples=100, deadline=None)
@given(well_formed_bio(max_size=300), st.data())
def test_property_windowed_roundtrip(tags, data):
    tokens = tuple(data.draw(_TOKEN) for _ in tags)
    pairs = sentt.encode_windows(Example("t", tokens, tuple(tags)))
    spans = sentt.windows(len(tags))
    decoded = [sentt.decode(target, end - start) for (_, target), (start, end) in zip(pairs, spans)]
    assert sentt.sbio_to_bio(sentt.stitch(decoded, spans, len(tags))) == tags
    inputs = " ".join(source for source, _ in pairs)
    assert re.sub(r"<extra_id_\d+>", " ", inputs).split() == list(tokens)


_NOISE = st.lists(
    st.one_of(
        st.sampled_from(["<extra_id_0>", "<extra_id_1>", "<extra_id_5>", "<extra_id_99>", "<extra_id_", "<pad>", "</s>", "I", "O", "A", " ", "<unk>"]),
        st.text(max_size=8),
    ),
    max_size=30,
).map("".join)


@settings(max_examples=300, deadline=None)
@given(_NOISE, st.integers(0, 120))
def test_property_decode_never_raises(text, n):
    labels = sentt.decode(text, n, types=["A"])
    assert len(labels) == n
    assert set(labels) <= {"A", "I", "O"}
    assert len(sentt.decode(text, n)) == n


# --------------------------------------------------------------------------- real corpora

CORPUS_NAMES = ("atis", "snips", "movie", "movietrivia", "restaurant", "mtop", "mtod")


def _documented_roundtrip() -> dict[str, list[int]]:
    """The figures of the round-trip table in docs/sentt.md, by corpus."""
    text = (REPO / "docs" / "sentt.md").read_text(encoding="utf-8")
    table = text.split("<!-- roundtrip-table -->")[1]
    rows = {}
    for line in table.splitlines():
        cells = [cell.strip().replace(",", "") for cell in line.strip().strip("|").split("|")]
        if len(cells) > 1 and cells[0].strip("`") in CORPUS_NAMES:
            rows[cells[0].strip("`")] = [int(cell) for cell in cells[1:]]
    return rows


def _all_examples(name: str, data_dir: Path) -> list[Example]:
    from hlcli.data.tasks import load_split

    return [ex for split in ("train", "val", "test") for ex in load_split(name, split, data_dir=data_dir)]


@pytest.mark.parametrize("name", CORPUS_NAMES)
def test_roundtrip_on_real_corpus(name, data_dir):
    examples = _all_examples(name, data_dir)
    report = sentt.roundtrip_report(examples)
    assert report.failed == 0
    assert report.exact + report.ill_formed == report.sentences == len(examples)
    # Every sentence not classified as ill-formed comes back exactly, window by window.
    for example in examples:
        labels = sentt.bio_to_sbio(example.tags)
        spans = sentt.windows(len(example.tags))
        targets = [sentt.interleave(labels[s:e]) for s, e in spans]
        decoded = [sentt.decode(t, e - s) for t, (s, e) in zip(targets, spans)]
        back = sentt.sbio_to_bio(sentt.stitch(decoded, spans, len(example.tags)))
        if not sentt._is_ill_formed(example.tags):
            assert back == list(example.tags), example.source
    documented = _documented_roundtrip()[name]
    assert documented == [
        report.sentences,
        report.exact,
        report.ill_formed,
        report.failed,
        report.adjacent_same_type,
        report.adjacent_same_type_pairs,
        report.longer_than_window,
    ]


def test_label_vocabulary_survives_the_t5_tokenizer(data_dir, t5_tokenizer_path):
    """Every corpus's sBIO labels come back from T5 tokenize → detokenize unchanged."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(t5_tokenizer_path)
    for name in CORPUS_NAMES:
        examples = _all_examples(name, data_dir)
        types = sorted({tag[2:] for ex in examples for tag in ex.tags if tag != "O"})
        vocabulary = sentt.label_vocabulary(types)
        target = sentt.interleave(vocabulary[: sentt.MAX_WORDS])
        ids = tokenizer(target).input_ids
        text = tokenizer.decode(ids, skip_special_tokens=False)
        assert sentt.decode(text, len(vocabulary[: sentt.MAX_WORDS]), types=types) == vocabulary[: sentt.MAX_WORDS], name
