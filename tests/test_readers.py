"""Readers on the real corpora (first sentences, exact round trips) and on small fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

from hlcli.data.readers import READERS, read_file, read_goo, read_mit, read_mtod, read_mtop
from hlcli.errors import UsageError

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="module")
def atis_train(data_dir):
    return read_goo(data_dir / "atis" / "train", task="atis")


@pytest.fixture(scope="module")
def mtop_train(data_dir):
    return read_mtop(data_dir / "mtop" / "en" / "train.txt", task="mtop")


def test_goo_first_sentence_and_round_trip(atis_train, data_dir):
    first = atis_train[0]
    assert first.tokens == ("i", "want", "to", "fly", "from", "baltimore", "to", "dallas", "round", "trip")
    assert first.tags == ("O", "O", "O", "O", "O", "B-fromloc.city_name", "O", "B-toloc.city_name", "B-round_trip", "I-round_trip")
    assert first.intent == "atis_flight"
    assert first.source == f"{data_dir / 'atis' / 'train' / 'seq.in'}:1"
    lines = (data_dir / "atis" / "train" / "seq.out").read_text().splitlines()
    assert [" ".join(e.tags) for e in atis_train] == [line.strip() for line in lines]


def test_goo_snips_trailing_spaces(data_dir):
    examples = read_goo(data_dir / "snips" / "valid", task="snips")
    lines = (data_dir / "snips" / "valid" / "seq.in").read_text(encoding="utf-8").splitlines()
    assert any(line.endswith(" ") for line in lines)
    assert [list(e.tokens) for e in examples] == [line.split() for line in lines]
    assert all(token.strip() == token and token for e in examples for token in e.tokens)


@pytest.mark.parametrize(
    ("folder", "name", "tag_first", "first_tokens", "first_tags"),
    [
        ("mit_movie", "engtrain.bio.txt", False, ("what", "movies", "star", "bruce", "willis"), ("O", "O", "O", "B-ACTOR", "I-ACTOR")),
        ("mit_movie_trivia", "trivia10k13train.bio", True, ("steve", "mcqueen", "provided"), ("B-Actor", "I-Actor", "O")),
        ("mit_restaurant", "restauranttrain.bio", True, ("2", "start", "restaurants"), ("B-Rating", "I-Rating", "O")),
    ],
)
def test_mit_column_detection_and_exact_round_trip(data_dir, folder, name, tag_first, first_tokens, first_tags):
    path = data_dir / folder / name
    examples = read_mit(path, task="x")
    assert examples[0].tokens[: len(first_tokens)] == first_tokens
    assert examples[0].tags[: len(first_tags)] == first_tags
    assert not any("\r" in token for e in examples for token in e.tokens)
    # Writing the examples back in the file's own column order gives the file (without CRs).
    def row(token: str, tag: str) -> str:
        return f"{tag}\t{token}" if tag_first else f"{token}\t{tag}"

    blocks = ["\n".join(row(token, tag) for token, tag in zip(e.tokens, e.tags)) for e in examples]
    original = path.read_bytes().decode("utf-8").replace("\r", "")
    assert "\n\n".join(blocks) == original.rstrip("\n")


def test_mtop_derived_alignment(mtop_train):
    assert len(mtop_train) == 15667
    first = mtop_train[0]
    assert first.tokens == ("Has", "Angelika", "Kratzer", "video", "messaged", "me", "?")
    assert first.tags == ("O", "B-CONTACT", "I-CONTACT", "B-TYPE_CONTENT", "O", "B-RECIPIENT", "O")
    assert first.intent == "GET_MESSAGE"
    # "7pm" in the utterance is "7 pm" in the parse; the token still lands inside the slot.
    reminder = next(e for e in mtop_train if "7pm" in e.tokens and "September" in e.tokens)
    assert reminder.tags[reminder.tokens.index("7pm")] == "I-DATE_TIME"
    # The possessive is split off so that "Emily" alone is the slot.
    emily = next(e for e in mtop_train if e.tokens[:4] == ("What", "is", "Emily", "'s"))
    assert emily.tags[2:4] == ("B-CONTACT", "O")


def test_mtop_original_eight_columns_matches_derived(mtop_train):
    examples = read_file(FIXTURES / "mtop_original.tsv", format="mtop", task="mtop")
    assert len(examples) == 3
    assert examples[0] == mtop_train[0]  # same utterance in both forms, same tokens, tags, intent
    assert examples[1].tags == ("B-LOCATION", "I-LOCATION", "O", "O", "B-DATE_TIME", "I-DATE_TIME", "I-DATE_TIME")
    assert examples[2].tags == ("O",) * 5 and examples[2].intent == "SET_UNAVAILABLE"


def test_mtod_tokens_from_json_and_duplicates_kept(data_dir):
    examples = read_mtod(data_dir / "mtod" / "en" / "eval-en.tsv", task="mtod")
    assert len(examples) == 4181
    first = examples[0]
    assert first.tokens and first.intent
    assert len({(e.tokens, e.tags) for e in examples}) < len(examples)  # duplicates are kept


def test_mtod_first_train_sentence(data_dir):
    first = read_mtod(data_dir / "mtod" / "en" / "train-en.tsv", task="mtod")[0]
    assert first.tokens == ("tell", "me", "the", "weather", "report", "for", "half", "moon", "bay")
    assert first.tags == ("O", "O", "O", "B-weather/noun", "I-weather/noun", "O", "B-location", "I-location", "I-location")
    assert first.intent == "weather/find"


def test_conll_fixture_skips_docstart():
    examples = read_file(FIXTURES / "conll_sample.conll", format="conll", task="mine")
    assert [e.tokens for e in examples] == [("EU", "rejects", "German", "call", "."), ("Peter", "Blackburn")]
    assert examples[0].tags == ("B-ORG", "O", "B-MISC", "O", "O")
    assert examples[0].source.endswith("conll_sample.conll:3")


def test_jsonl_fixture():
    examples = read_file(FIXTURES / "jsonl_sample.jsonl", format="jsonl", task="mine")
    assert len(examples) == 2
    assert examples[0].tags[-2:] == ("B-city", "I-city") and examples[0].intent == "BookRestaurant"
    assert examples[1].source.endswith("jsonl_sample.jsonl:3") and examples[1].intent is None


def test_mit_fixture_crlf_tag_first():
    examples = read_file(FIXTURES / "mit_tag_first_crlf.tsv", format="mit", task="mine")
    assert [e.tokens for e in examples] == [("jane", "doe", "stars"), ("funny", "comedy")]
    assert examples[1].tags == ("O", "B-Genre")


def test_unknown_format():
    with pytest.raises(UsageError, match="unknown format 'xml'; known formats: conll, goo, jsonl"):
        read_file(FIXTURES / "conll_sample.conll", format="xml", task="mine")
    assert set(READERS) == {"conll", "jsonl", "mit", "goo", "mtop", "mtod"}
