"""A new user's own data, end to end: ``hl train --tasks atis,mine=FOLDER`` → ``hl evaluate`` →
``hl tag --task mine`` on a tiny random T5 (few steps, one thread), and the same with a local
Hugging Face dataset folder. What is checked is the plumbing, not the scores."""

from __future__ import annotations

import json
import os
import shutil

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest

from _cli import invoke
from test_data_sources import conll_folder, hf_dict

TINY = ["--batch-size", 4, "--warmup-steps", 0, "--max-steps", 2, "--eval-every", 2, "--checkpoint-every", 2,
        "--max-val-examples", 2, "--no-progress"]  # fmt: skip


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: tiny models, one torch thread


def test_atis_and_own_conll_folder(tmp_path, tiny_t5, data_dir, monkeypatch):
    conll_folder(tmp_path / "work" / "mine", train=20, dev=4, test=3)
    monkeypatch.chdir(tmp_path / "work")  # a relative folder, as a user types it
    run = tmp_path / "run"
    result = invoke("train", "--tasks", "atis,mine=mine", "--model", tiny_t5, "--data-dir", data_dir,
                    "--fraction", 0.002, "--output-dir", run, *TINY)  # fmt: skip
    assert result.exit_code == 0, result.output
    config = json.loads((run / "config.json").read_text())
    assert config["tasks"] == ["atis", "mine"]
    source = config["task_sources"]["mine"]
    assert source["path"] == str(tmp_path / "work" / "mine") and source["detected_format"] == "conll"
    assert set(source["sha256"]) == {"train", "val", "test"}
    card = (run / "checkpoints" / "best" / "README.md").read_text()
    # The model card lists the own task's label set (the types in its train and val slices).
    row = next(line for line in card.splitlines() if line.startswith("| mine | "))
    assert set(row.split("|")[2].strip().split(", ")) <= {"LOC", "ORG", "PER"} and "PER" in row

    monkeypatch.chdir(tmp_path)  # the run finds its data again, from anywhere, without flags
    result = invoke("evaluate", run, "--tasks", "mine", "--output", tmp_path / "test.json")
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "test.json").read_text())["tasks"]["mine"]["sentences"] == 3
    result = invoke("evaluate", run, "--split", "val", "--data-dir", data_dir, "--output", tmp_path / "val.json")
    assert result.exit_code == 0, result.output
    scores = json.loads((tmp_path / "val.json").read_text())["tasks"]
    assert {task: s["sentences"] for task, s in scores.items()} == {"atis": 1, "mine": 1}  # the run's fraction

    result = invoke("tag", "--run", run, "--task", "mine", "--format", "conll", input=b"John lives in Paris\n")
    assert result.exit_code == 0, result.output
    assert [line.split("\t")[0] for line in result.stdout.splitlines() if line] == ["John", "lives", "in", "Paris"]


def test_local_hf_folder_without_test_split(tmp_path, tiny_t5, monkeypatch):
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")
    data = hf_dict(datasets, train=12)
    del data["test"]
    data.save_to_disk(str(tmp_path / "people"))
    run = tmp_path / "run"
    result = invoke("train", "--tasks", f"hf:{tmp_path / 'people'}", "--model", tiny_t5, "--output-dir", run, *TINY)
    assert result.exit_code == 0, result.output
    source = json.loads((run / "config.json").read_text())["task_sources"]["people"]
    assert source["hf"] == str(tmp_path / "people") and set(source["fingerprint"]) == {"train", "validation"}

    result = invoke("evaluate", run)  # default split: test, which this dataset lacks
    assert result.exit_code == 1
    assert "task 'people' has no test split (expected one of its splits: train, val)" in result.stderr
    result = invoke("evaluate", run, "--split", "val", "--output", tmp_path / "val.json")
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "val.json").read_text())["tasks"]["people"]["sentences"] == 4
    shutil.copytree(run / "checkpoints" / "best", tmp_path / "copied")  # a checkpoint without its run
    result = invoke("evaluate", tmp_path / "copied", "--split", "val")
    assert result.exit_code == 0 and "people" in result.stdout, result.output

    result = invoke("tag", "--run", run, "--task", "people", input=b"Ann Lee in Rome\n")
    assert result.exit_code == 0 and result.stdout.count("/") == 4, result.output
