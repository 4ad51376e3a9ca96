"""Corpus registry: Table 2 counts, the MIT validation split, down-sampling, data-dir lookup."""

from __future__ import annotations

import pytest

from hlcli.data.corpora import CORPORA, resolve_data_dir
from hlcli.data.tasks import label_types, load_corpus, load_split
from hlcli.errors import HLError, UsageError

# Table 2 of the paper (MIT corpora: the released train file is train + val, val = 10 %).
TABLE_2 = {
    "atis": (4478, 500, 893, 83),
    "snips": (13084, 700, 700, 39),
    "movie": (8798, 977, 2443, 12),
    "movietrivia": (7035, 781, 1953, 12),
    "restaurant": (6894, 766, 1521, 8),
    "mtop": (15667, 2235, 4386, 75),
    "mtod": (30521, 4181, 8621, 16),  # paper: 9 (types with >= 200 train examples)
}
PAPER_TRAIN_PLUS_VAL = {"movie": 9775, "movietrivia": 7816, "restaurant": 7660}


@pytest.fixture(scope="module")
def corpora(data_dir):
    return {task: load_corpus(task, data_dir=data_dir) for task in CORPORA}


@pytest.mark.parametrize("task", list(TABLE_2))
def test_table_2_counts(corpora, task):
    train, val, test, labels = TABLE_2[task]
    splits = corpora[task]
    assert (len(splits["train"]), len(splits["val"]), len(splits["test"])) == (train, val, test)
    # Label counts are taken over all splits: ATIS has 79 types in train, 83 in all three.
    assert len(label_types(splits["train"] + splits["val"] + splits["test"])) == labels
    if task in PAPER_TRAIN_PLUS_VAL:
        assert train + val == PAPER_TRAIN_PLUS_VAL[task]
    assert all(example.task == task for example in splits["test"])


def test_atis_label_union(corpora):
    atis = corpora["atis"]
    assert len(label_types(atis["train"])) == 79
    assert "fromloc.city_name" in label_types(atis["train"])


@pytest.mark.parametrize("task", ["movie", "movietrivia", "restaurant"])
def test_mit_val_is_disjoint_and_deterministic(corpora, data_dir, task):
    splits = corpora[task]
    train_sources = {e.source for e in splits["train"]}
    val_sources = {e.source for e in splits["val"]}
    assert not train_sources & val_sources
    # The held-out val does not depend on the run seed.
    assert load_split(task, "val", data_dir=data_dir, seed=7) == splits["val"]


def test_split_aliases(corpora, data_dir):
    for alias in ("validation", "dev", "eval", "valid"):
        assert load_split("atis", alias, data_dir=data_dir) == corpora["atis"]["val"]
    with pytest.raises(UsageError, match="unknown split 'holdout'"):
        load_split("atis", "holdout", data_dir=data_dir)


def test_fraction_is_seeded_and_nested(corpora, data_dir):
    small = load_split("snips", "train", data_dir=data_dir, fraction=0.1, seed=3)
    again = load_split("snips", "train", data_dir=data_dir, fraction=0.1, seed=3)
    large = load_split("snips", "train", data_dir=data_dir, fraction=0.5, seed=3)
    other = load_split("snips", "train", data_dir=data_dir, fraction=0.1, seed=4)
    assert small == again
    assert len(small) == round(13084 * 0.1) and len(large) == round(13084 * 0.5)
    assert {e.source for e in small} <= {e.source for e in large}
    assert small != other
    # Original order is kept.
    full_order = {e.source: i for i, e in enumerate(corpora["snips"]["train"])}
    assert [full_order[e.source] for e in small] == sorted(full_order[e.source] for e in small)
    # val is down-sampled too, test never.
    assert len(load_split("snips", "val", data_dir=data_dir, fraction=0.1)) == 70
    assert len(load_split("snips", "test", data_dir=data_dir, fraction=0.1)) == 700


@pytest.mark.parametrize("fraction", [0.0, -0.5, 1.5])
def test_fraction_out_of_range(data_dir, fraction):
    with pytest.raises(UsageError, match="fraction"):
        load_split("atis", "train", data_dir=data_dir, fraction=fraction)


def test_unknown_task(data_dir):
    with pytest.raises(UsageError, match="unknown task 'conll03'; known tasks: atis, movie"):
        load_split("conll03", "train", data_dir=data_dir)


def test_resolve_data_dir_order(tmp_path, monkeypatch, data_dir):
    explicit, env, cache = tmp_path / "explicit", tmp_path / "env", tmp_path / "cache"
    for folder in (explicit, env, cache / "data"):
        folder.mkdir(parents=True)
    monkeypatch.setenv("HL_CACHE_DIR", str(cache))
    assert resolve_data_dir(None) == (cache / "data").resolve()
    monkeypatch.setenv("HL_DATA_DIR", str(env))
    assert resolve_data_dir(None) == env.resolve()
    assert resolve_data_dir(explicit) == explicit.resolve()
    monkeypatch.setenv("HL_DATA_DIR", str(data_dir))
    assert len(load_split("atis", "val")) == 500


def test_resolve_data_dir_missing(tmp_path):
    with pytest.raises(HLError, match=r"data folder not found \(from the default cache folder\).*HL_DATA_DIR"):
        resolve_data_dir(None)
    with pytest.raises(HLError, match=r"corpus folder for task 'atis' not found.*--data-dir"):
        resolve_data_dir(tmp_path, task="atis")
    with pytest.raises(HLError, match=f"{tmp_path / 'nope'}: data folder not found"):
        load_split("atis", "train", data_dir=tmp_path / "nope")


def test_label_types_sorted():
    from hlcli.data.example import Example

    examples = [Example("t", ("a", "b", "c"), ("B-z", "I-z", "B-a")), Example("t", ("d",), ("O",))]
    assert label_types(examples) == ["a", "z"]
