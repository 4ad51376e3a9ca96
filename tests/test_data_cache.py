"""The data cache keys on the files read: a file changed on disk after a first load is read again,
and an own task's recorded SHA-256 is that of the new content (issue 20, explicit state)."""

from __future__ import annotations

import os

import pytest

from hlcli.data import cache
from hlcli.data.cache import sha256_file
from hlcli.data.sources import load_source, parse_spec
from hlcli.data.tasks import load_split
from hlcli.errors import HLError


def write_conll(path, sentences):
    path.write_text("\n\n".join("\n".join(f"{w} NN {t}" for w, t in s) for s in sentences) + "\n", encoding="utf-8")


PARIS = [("John", "B-PER"), ("lives", "O"), ("in", "O"), ("Paris", "B-LOC")]
BONN = [("Mary", "B-PER"), ("lives", "O"), ("in", "O"), ("Bonn", "B-LOC")]


def test_own_data_changed_after_a_first_load_is_read_again_and_pinned_anew(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    write_conll(folder / "train.conll", [PARIS] * 20)
    write_conll(folder / "test.conll", [PARIS] * 4)
    first = dict([parse_spec(f"mine={folder}")])["mine"]
    assert [e.tokens[-1] for e in load_source("mine", first)["test"]] == ["Paris"] * 4
    old = first["sha256"]["test"]

    write_conll(folder / "test.conll", [BONN] * 3)  # another size
    again = dict([parse_spec(f"mine={folder}")])["mine"]
    assert [e.tokens[-1] for e in load_source("mine", again)["test"]] == ["Bonn"] * 3
    assert again["sha256"]["test"] == sha256_file(folder / "test.conll") != old
    with pytest.raises(HLError, match=r"data changed since it was recorded \(sha256 of test differs\)"):
        load_source("mine", first)  # the run that recorded the old file sees the change in this process too


def test_a_file_of_the_same_size_with_a_new_mtime_is_read_again(tmp_path):
    file = tmp_path / "all.conll"
    write_conll(file, [PARIS] * 30)
    entry = dict([parse_spec(f"mine={file}")])["mine"]
    assert load_source("mine", dict(entry))["train"][0].tokens[0] == "John"
    before = file.stat()
    write_conll(file, [[("Jane", "B-PER")] + PARIS[1:]] * 30)  # "John" -> "Jane": same size
    os.utime(file, ns=(before.st_atime_ns, before.st_mtime_ns + 1_000_000_000))
    assert file.stat().st_size == before.st_size
    assert load_source("mine", dict(entry))["train"][0].tokens[0] == "Jane"


def test_a_registered_corpus_changed_on_disk_is_read_again_and_an_unchanged_one_is_kept(tmp_path):
    folder = tmp_path / "data" / "mit_restaurant"
    folder.mkdir(parents=True)
    (folder / "restauranttrain.bio").write_text("B-Dish\tpizza\nO\tplease\n\n" * 20, encoding="utf-8")
    (folder / "restauranttest.bio").write_text("B-Dish\tpasta\n", encoding="utf-8")
    data_dir = tmp_path / "data"
    first = load_split("restaurant", "test", data_dir=data_dir)
    assert load_split("restaurant", "test", data_dir=data_dir)[0] is first[0]  # kept: not parsed again
    (folder / "restauranttest.bio").write_text("B-Dish\tsushi\nO\tnow\n", encoding="utf-8")
    kept = load_split("restaurant", "test", data_dir=data_dir)
    assert [e.tokens for e in kept] == [("sushi", "now")]
    cache.clear()  # the public way to forget every kept result
    assert load_split("restaurant", "test", data_dir=data_dir)[0] is not kept[0]
