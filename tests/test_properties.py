"""Property-based tests (hypothesis): SentT' encode/decode, every reader's error path, tag_lines.

Random or mutated input must never raise anything but :class:`HLError` (anything else is a bug),
SentT' must round-trip well-formed BIO, and tagging must give one result per input line.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Sequence

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from _strategies import well_formed_bio
from hlcli import sentt
from hlcli.data.example import Example
from hlcli.data.readers import READERS, read_file
from hlcli.errors import HLError
from hlcli.methods.base import TaggingModel, TaskSpec
from hlcli.tagging import FORMATS, strip_newline, tag_lines

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# -- SentT' ---------------------------------------------------------------------------------------
TYPES = st.from_regex(r"[A-Za-z][A-Za-z0-9_.]{0,8}", fullmatch=True).filter(lambda t: t not in ("I", "O"))
WORD = st.text(st.characters(blacklist_categories=("Cs", "Zs", "Zl", "Zp", "Cc")), min_size=1, max_size=6).filter(
    lambda w: not any(c.isspace() for c in w) and "<" not in w
)


@st.composite
def bio_sentences(draw) -> tuple[list[str], list[str], list[str]]:
    """Tokens, well-formed BIO tags and the type list (sentences up to 250 words: several windows)."""
    types = draw(st.lists(TYPES, min_size=1, max_size=4, unique=True))
    tags = draw(well_formed_bio(st.sampled_from(types), max_size=250))
    tokens = draw(st.lists(WORD, min_size=len(tags), max_size=len(tags)))
    return tokens, tags, types


@SETTINGS
@given(bio_sentences())
def test_sentt_encode_then_decode_gives_the_bio_tags_back(sentence):
    tokens, tags, types = sentence
    example = Example("t", tuple(tokens), tuple(tags))
    spans = sentt.windows(len(tokens))
    pairs = sentt.encode_windows(example)
    assert len(pairs) == len(spans)
    labels = [sentt.decode(target, end - start, types=types) for (_, target), (start, end) in zip(pairs, spans)]
    assert sentt.sbio_to_bio(sentt.stitch(labels, spans, len(tokens))) == tags
    for (source, _), (start, end) in zip(pairs, spans):
        assert source.split()[1::2] == tokens[start:end]


@SETTINGS
@given(
    st.one_of(
        st.text(max_size=400),
        st.lists(st.one_of(st.sampled_from(["<extra_id_0>", "<extra_id_1>", "<extra_id_7>", "<extra_id_99999999>", "</s>",
                                            "<pad>", "<unk>", "I", "O", "LOC", " ", "<extra_id_"]), st.text(max_size=5))).map("".join),  # fmt: skip
    ),
    st.integers(0, 120),
    st.one_of(st.none(), st.lists(TYPES, max_size=3, unique=True)),
)
def test_sentt_decode_of_any_text_gives_exactly_n_known_labels(text, n, types):
    labels = sentt.decode(text, n, types=types)
    assert len(labels) == n
    if types is not None:
        assert set(labels) <= set(types) | {"I", "O"}
    assert len(sentt.sbio_to_bio(labels)) == n


# -- readers: random or mutated files never raise anything but HLError -------------------------------
MTOD_LINE = 'get_weather\t0:6:location\tLisbon weather today\ten\t{"tokens":["Lisbon","weather","today"],"tokenSpans":[{"start":0,"length":6},{"start":7,"length":7},{"start":15,"length":5}]}'
MTOP_LINE = ('1\tIN:GET_WEATHER\t0:6:SL:LOCATION\tLisbon weather\tweather\ten_XX\t[IN:GET_WEATHER [SL:LOCATION Lisbon ] weather ]\t'
             '{"tokens":["Lisbon","weather"],"tokenSpans":[{"start":0,"length":6},{"start":7,"length":7}]}')  # fmt: skip
VALID = {
    "conll": "-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\nrejects VBZ B-VP O\n\nPeter NNP B-NP B-PER\n",
    "jsonl": '{"tokens": ["book", "a", "table"], "tags": ["O", "O", "B-thing"], "intent": "Book"}\n\n{"tokens": ["hi"], "tags": ["O"]}\n',
    "mit": "B-Actor\tsteve\nI-Actor\tmcqueen\nO\tstars\n\nO\tfunny\nB-Genre\tcomedy\n",
    "mtop": MTOP_LINE + "\n" + MTOP_LINE + "\n",
    "mtod": MTOD_LINE + "\n",
}
GOO = {"seq.in": "show flights to boston \nhi\n", "seq.out": "O O O B-city \nO\n", "label": "atis_flight\ngreet\n"}
NOISE = st.sampled_from(["\t", "\n", " ", "\r", ":", ",", "[", "]", "{", "}", '"', "B-", "I-", "O", "IN:", "SL:",
                         "-1", "99", "\ufeff", "\x00", "é", "\\", "null", "[]", "{}"])  # fmt: skip


@st.composite
def mutated(draw, valid: str) -> bytes:
    """``valid`` with a few random cuts, insertions and replacements (or plain random bytes/text)."""
    kind = draw(st.sampled_from(["mutate", "mutate", "mutate", "text", "bytes"]))
    if kind == "bytes":
        return draw(st.binary(max_size=300))
    if kind == "text":
        return "".join(draw(st.lists(st.one_of(NOISE, st.text(max_size=4)), max_size=60))).encode("utf-8", "surrogatepass")
    text = valid
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(text)))
        j = draw(st.integers(i, min(len(text), i + 12)))
        insert = "".join(draw(st.lists(st.one_of(NOISE, st.text(max_size=3)), max_size=3)))
        text = text[:i] + insert + text[j:]
    data = text.encode("utf-8", "surrogatepass")
    if draw(st.booleans()) and data:  # sometimes cut the file short, even inside a UTF-8 sequence
        data = data[: draw(st.integers(0, len(data)))]
    return data


def check_read(path: Path, format: str) -> None:
    try:
        examples = read_file(path, format=format, task="t")
    except HLError as error:
        assert str(error)  # a message, not a crash
        return
    for example in examples:
        assert len(example.tokens) == len(example.tags)
        assert all(tag == "O" or tag[:2] in ("B-", "I-") for tag in example.tags)


def test_the_reader_seeds_are_valid(tmp_path):
    for format, text in VALID.items():
        (tmp_path / format).write_text(text, encoding="utf-8")
        assert read_file(tmp_path / format, format=format, task="t"), format
    for name, text in GOO.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    assert len(read_file(tmp_path, format="goo", task="t")) == 2
    assert set(VALID) | {"goo"} == set(READERS)


def _file_reader_test(format: str):
    @SETTINGS
    @given(data=mutated(VALID[format]))
    def test(data):
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / f"input.{format}"
            path.write_bytes(data)
            check_read(path, format)

    test.__name__ = f"test_{format}_reader_raises_only_hlerror"
    return test


test_conll_reader_raises_only_hlerror = _file_reader_test("conll")
test_jsonl_reader_raises_only_hlerror = _file_reader_test("jsonl")
test_mit_reader_raises_only_hlerror = _file_reader_test("mit")
test_mtop_reader_raises_only_hlerror = _file_reader_test("mtop")
test_mtod_reader_raises_only_hlerror = _file_reader_test("mtod")


@SETTINGS
@given(seq_in=mutated(GOO["seq.in"]), seq_out=mutated(GOO["seq.out"]), label=st.one_of(st.none(), mutated(GOO["label"])))
def test_goo_reader_raises_only_hlerror(seq_in, seq_out, label):
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "seq.in").write_bytes(seq_in)
        Path(folder, "seq.out").write_bytes(seq_out)
        if label is not None:
            Path(folder, "label").write_bytes(label)
        check_read(Path(folder), "goo")


# -- tag_lines: one result per input line, whatever the line holds ------------------------------------
class EveryWordIsAThing(TaggingModel):
    method = "rule"

    def __init__(self) -> None:
        super().__init__([TaskSpec("t", ["THING"])])

    def collate(self, task, examples):
        raise NotImplementedError

    def loss(self, task, batch, *, label_smoothing=0.0):
        raise NotImplementedError

    def predict(self, task: str, sentences: Sequence[Sequence[str]], *, batch_size: int = 32) -> list[list[str]]:
        return [["B-THING" if i % 2 == 0 else "I-THING" for i, _ in enumerate(s)] for s in sentences]


LINE = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\n"), max_size=40).map(lambda s: s + "\n")


@SETTINGS
@given(st.lists(LINE, max_size=12), st.sampled_from(FORMATS), st.integers(1, 5))
def test_tag_lines_gives_one_result_per_input_line(lines, format, chunk_size):
    model = EveryWordIsAThing()
    results = list(tag_lines(model, "t", lines, format=format, batch_size=2, chunk_size=chunk_size))
    assert len(results) == len(lines)
    for line, result in zip(lines, results):
        words = line[:-1].split()
        if format == "sbio":
            assert "\n" not in result and len(result.split(" ")) == len(words) if words else result == ""
        elif format == "conll":
            assert result.count("\n") == len(words) and "\n\n" not in result
        else:
            assert len(result.splitlines()) == 1  # no raw line separator (U+2028, U+0085 ...) in JSONL
            record = json.loads(result)
            assert record["tokens"] == words and record["text"] == strip_newline(line)
            assert all(record["text"][s["start"] : s["end"]] == s["text"] for s in record["spans"])
