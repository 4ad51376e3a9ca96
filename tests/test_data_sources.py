"""Own corpora as tasks: folders of files and Hugging Face datasets (built locally, offline)."""

from __future__ import annotations

import json
import os

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")  # before datasets is imported anywhere
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest

from _cli import invoke
from hlcli.compare import config_hash
from hlcli.config import TrainConfig, load_config
from hlcli.data.tasks import load_split, task_splits
from hlcli.data.sources import parse_spec, resolve_tasks
from hlcli.errors import HLError, UsageError

SENTENCES = [
    (["John", "lives", "in", "Paris"], ["B-PER", "O", "O", "B-LOC"]),
    (["Mary", "Ann", "left"], ["B-PER", "I-PER", "O"]),
    (["the", "New", "York", "office"], ["O", "B-ORG", "I-ORG", "O"]),
]


def write_conll(path, sentences, *, tag_first=False):
    blocks = ["\n".join(f"{tag}\t{tok}" if tag_first else f"{tok} NN {tag}" for tok, tag in zip(*s)) for s in sentences]
    path.write_text("\n\n".join(blocks) + "\n", encoding="utf-8")
    return path


def conll_folder(folder, *, train=30, dev=6, test=6, suffix="conll", dev_name="dev"):
    folder.mkdir(parents=True, exist_ok=True)
    for name, count in (("train", train), (dev_name, dev), ("test", test)):
        if count:
            write_conll(folder / f"{name}.{suffix}", (SENTENCES * count)[:count])
    return folder


@pytest.fixture
def hf_env(monkeypatch, tmp_path):
    """datasets offline, with its cache in tmp_path."""
    import datasets

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True, raising=False)
    return datasets


def hf_dict(datasets, *, train=20, tokens="tokens", tags="ner_tags", names=("O", "B-PER", "I-PER", "B-LOC")):
    from datasets import ClassLabel, Dataset, DatasetDict, Features, Sequence, Value

    features = Features({tokens: Sequence(Value("string")), tags: Sequence(ClassLabel(names=list(names)))})
    rows = lambda n: {tokens: [["Ann", "Lee", "in", "Rome"]] * n, tags: [[1, 2, 0, 3]] * n}  # noqa: E731
    return DatasetDict(
        {
            "train": Dataset.from_dict(rows(train), features=features),
            "validation": Dataset.from_dict(rows(4), features=features),
            "test": Dataset.from_dict(rows(3), features=features),
        }
    )


def test_conll_folder_splits_and_detection(tmp_path):
    name, entry = parse_spec(f"mine={conll_folder(tmp_path / 'mine')}")
    sources = {name: entry}
    splits = task_splits(name, sources=sources)
    assert {k: len(v) for k, v in splits.items()} == {"train": 30, "val": 6, "test": 6}
    assert splits["train"][0].tokens == ("John", "lives", "in", "Paris") and splits["train"][0].tags[-1] == "B-LOC"
    # What was read is recorded in the source table (config.json keeps it).
    assert entry["detected_format"] == "conll" and set(entry["sha256"]) == {"train", "val", "test"}
    assert entry["files"]["val"].endswith("dev.conll") and entry["held_out_val"] is False


def test_mit_layout_detected_and_missing_val_held_out(tmp_path):
    folder = tmp_path / "mit"
    folder.mkdir()
    write_conll(folder / "train.bio", (SENTENCES * 20)[:20], tag_first=True)
    sources = dict([parse_spec(f"m={folder}")])
    splits = task_splits("m", sources=sources)
    assert sources["m"]["detected_format"] == "mit" and sources["m"]["held_out_val"] is True
    assert (len(splits["train"]), len(splits["val"])) == (18, 2)
    whole = task_splits("m", sources={"m": {"train": str(folder / "train.bio"), "format": "mit"}})
    assert whole["val"] == splits["val"]  # the fixed seed: the same 10 % every time
    with pytest.raises(HLError, match=r"task 'm' has no test split \(expected one of its splits: train, val\)"):
        load_split("m", "test", sources=sources)


def test_iobes_converted_and_mixed_schemes_refused(tmp_path, caplog):
    folder = tmp_path / "iobes"
    folder.mkdir()
    write_conll(folder / "train.txt", [(["Ann", "Lee", "Rome"], ["B-PER", "E-PER", "S-LOC"])] * 10)
    sources = dict([parse_spec(f"i={folder}")])
    splits = task_splits("i", sources=sources)
    assert f"warning: {folder}: task 'i': IOBES tags converted to BIO" in caplog.text
    assert splits["train"][0].tags == ("B-PER", "I-PER", "B-LOC")
    assert sources["i"]["converted"] == "IOBES -> BIO"

    write_conll(folder / "train.txt", [(["Ann", "Lee"], ["U-PER", "S-LOC"])])
    with pytest.raises(HLError, match=r"mixed tag schemes: both S- and U- prefixes \(expected BIO/IOB2, IOB1, IOBES"):
        task_splits("i2", sources=dict([parse_spec(f"i2={folder}")]))


def test_bad_tag_names_file_and_line(tmp_path):
    folder = conll_folder(tmp_path / "bad")
    (folder / "train.conll").write_text("John NN B-PER\nlives NN X-Y\n", encoding="utf-8")
    with pytest.raises(HLError) as error:
        task_splits("bad", sources=dict([parse_spec(f"bad={folder}")]))
    assert str(error.value) == f"{folder / 'train.conll'}:2: unknown tag 'X-Y' (expected BIO/IOB2, IOB1, IOBES (S-, E-) or BILOU (U-, L-) tags)"


def test_folder_errors(tmp_path):
    with pytest.raises(HLError, match="folder not found"):
        task_splits("x", sources=dict([parse_spec(f"x={tmp_path / 'nope'}")]))
    (tmp_path / "empty").mkdir()
    with pytest.raises(HLError, match=r"empty: no train file \(expected a folder with train"):
        task_splits("y", sources=dict([parse_spec(f"y={tmp_path / 'empty'}")]))
    folder = conll_folder(tmp_path / "two")
    write_conll(folder / "valid.txt", SENTENCES)
    with pytest.raises(HLError, match="two val files: dev.conll and valid.txt"):
        task_splits("z", sources=dict([parse_spec(f"z={folder}")]))
    with pytest.raises(UsageError, match="task 'atis' is a registered corpus"):
        resolve_tasks([f"atis={folder}"], None)
    with pytest.raises(UsageError, match="unknown format 'xml'"):
        resolve_tasks(["w"], {"w": {"path": "x", "format": "xml"}})


def test_unknown_task_hints_at_own_data():
    with pytest.raises(UsageError, match=r"unknown task 'wnut'; known tasks: .*; your own data is a task too: NAME=FOLDER"):
        load_split("wnut", "train")


def test_data_changed_since_recorded(tmp_path):
    folder = conll_folder(tmp_path / "mine")
    sources = dict([parse_spec(f"mine={folder}")])
    task_splits("mine", sources=sources)
    recorded = json.loads(json.dumps(sources))  # as config.json holds it
    write_conll(folder / "test.conll", SENTENCES[:1])
    with pytest.raises(HLError, match=r"task 'mine': data changed since it was recorded \(sha256 of test differs\)"):
        task_splits("mine", sources=recorded)


def test_recipe_tables_and_hash_of_registered_only_recipes(tmp_path):
    conll_folder(tmp_path / "corpora" / "mine")
    (tmp_path / "table.toml").write_text('[tasks.atis]\n[tasks.snips]\n', encoding="utf-8")
    (tmp_path / "list.toml").write_text('tasks = ["atis", "snips"]\n', encoding="utf-8")
    today = TrainConfig(tasks=["atis", "snips"])
    for recipe in ("table.toml", "list.toml"):
        config = load_config(tmp_path / recipe)
        assert config.to_dict() == today.to_dict() and config.task_sources == {}
    # The comparison hash of a registered-corpora config is the one it had before task_sources existed.
    identity = {"tasks": ["atis", "snips"]}
    import hashlib

    assert config_hash(today) == hashlib.sha1(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:8]

    (tmp_path / "own.toml").write_text(
        '[tasks.atis]\n[tasks.mine]\npath = "corpora/mine"\nformat = "conll"\n', encoding="utf-8"
    )
    config = load_config(tmp_path / "own.toml")
    assert config.tasks == ["atis", "mine"]
    assert config.task_sources == {"mine": {"path": str(tmp_path / "corpora" / "mine"), "format": "conll"}}
    # --tasks on the command line may reuse the recipe's source, or leave it out.
    assert load_config(tmp_path / "own.toml", {"tasks": ["mine"]}).task_sources.keys() == {"mine"}
    assert load_config(tmp_path / "own.toml", {"tasks": ["atis"]}).task_sources == {}
    (tmp_path / "typo.toml").write_text('[tasks.mine]\npth = "x"\n', encoding="utf-8")
    with pytest.raises(UsageError, match=r"typo.toml: task 'mine': unknown key 'pth' \(expected one of path, train"):
        load_config(tmp_path / "typo.toml")


def test_hf_save_to_disk_classlabel_names(tmp_path, hf_env):
    hf_dict(hf_env).save_to_disk(str(tmp_path / "ds"))
    name, entry = parse_spec(f"hf:{tmp_path / 'ds'}")
    assert name == "ds" and entry == {"hf": str(tmp_path / "ds")}
    splits = task_splits(name, sources={name: entry})
    assert {k: len(v) for k, v in splits.items()} == {"train": 20, "val": 4, "test": 3}
    assert splits["val"][0].tags == ("B-PER", "I-PER", "O", "B-LOC")
    assert set(entry["fingerprint"]) == {"train", "validation", "test"}


def test_hf_parquet_folder_with_named_columns(tmp_path, hf_env):
    folder = tmp_path / "pq"
    folder.mkdir()
    data = hf_dict(hf_env, tokens="words", tags="labels")
    data["train"].to_parquet(str(folder / "train.parquet"))
    data["test"].to_parquet(str(folder / "test.parquet"))
    with pytest.raises(HLError, match=r"split train: no tags column \(expected a column named ner_tags or tags or tags = COLUMN"):
        task_splits("pq", sources=dict([parse_spec(f"pq=hf:{folder}")]))
    names, sources = resolve_tasks({"pq": {"hf": str(folder), "tags": "labels"}}, None)
    splits = task_splits("pq", sources=sources)
    assert (len(splits["train"]), len(splits["val"]), len(splits["test"])) == (18, 2, 3)  # val held out
    assert splits["test"][0].tags == ("B-PER", "I-PER", "O", "B-LOC")
    assert set(sources["pq"]["sha256"]) == {"train.parquet", "test.parquet"}


def test_hf_row_errors_name_dataset_split_row_column(tmp_path, hf_env):
    from datasets import Dataset, DatasetDict

    rows = {"tokens": [["a", "b"], ["c", "d"]], "tags": [["O", "B-X"], ["O"]]}
    DatasetDict({"train": Dataset.from_dict(rows)}).save_to_disk(str(tmp_path / "bad"))
    with pytest.raises(HLError) as error:
        task_splits("bad", sources=dict([parse_spec(f"bad=hf:{tmp_path / 'bad'}")]))
    assert str(error.value) == f"hf:{tmp_path / 'bad'} split train row 1 column 'tags': 1 tags for 2 tokens (expected one tag per token)"


def test_hf_hub_id_offline_without_cache_is_one_line(hf_env):
    with pytest.raises(HLError, match=r"^hf:someone/no-such-dataset: cannot load dataset: .*offline, a hub dataset must already be in the datasets cache"):
        task_splits("x", sources=dict([parse_spec("x=hf:someone/no-such-dataset")]))


def test_stats_row_per_task_and_format_json(tmp_path, data_dir):
    folder = conll_folder(tmp_path / "mine", test=0)
    result = invoke("data", "stats", "--data-dir", data_dir, "--tasks", f"atis,mine={folder}", "--format", "json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [r["task"] for r in rows] == ["atis", "mine"] and "source" not in rows[0]
    assert rows[1] | {"source": None} == {
        "task": "mine", "title": "mine", "train": 30, "val": 6, "test": None, "labels": 3,
        "paper_labels": None, "adjacent_same_type": 0, "held_out_val": False, "source": None,
    }  # fmt: skip
    assert rows[1]["source"] == str(folder)
    table = invoke("data", "stats", "--data-dir", data_dir, "--tasks", f"mine={folder}")
    assert table.exit_code == 0 and "│ mine   │    30 │   6 │    - │" in table.stdout
    old = invoke("data", "stats", "--data-dir", data_dir, "--tasks", "atis", "--json")
    assert old.exit_code == 0 and json.loads(old.stdout)[0]["train"] == 4478
    assert "--json is deprecated; use --format json" in old.stderr
    bad = invoke("data", "stats", "--format", "xml")
    assert bad.exit_code == 2 and "--format 'xml' (expected table | markdown | json)" in bad.stderr


def test_convert_own_folder(tmp_path):
    folder = conll_folder(tmp_path / "mine")
    result = invoke("convert", f"mine={folder}", "--to", "bio", "--output", tmp_path / "out.jsonl")
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert len(rows) == 42 and rows[0]["task"] == "mine" and {r["split"] for r in rows} == {"train", "val", "test"}


def test_compare_plan_with_own_task(tmp_path):
    from hlcli.compare import plan

    conll_folder(tmp_path / "mine")
    recipe = tmp_path / "cmp.toml"
    recipe.write_text(
        '[tasks.atis]\n[tasks.mine]\npath = "mine"\n\n[compare]\nmethods = ["hyperloader", "unipelt"]\n', encoding="utf-8"
    )
    planned = plan(recipe=recipe)
    assert planned.tasks == ["atis", "mine"]
    shared = next(r for r in planned.runs if r.method == "hyperloader").config
    assert shared.tasks == ["atis", "mine"] and shared.task_sources["mine"]["path"] == str(tmp_path / "mine")
    # A single-task method trains one run per task, each with only its own source.
    single = {tuple(r.config.tasks): r.config.task_sources for r in planned.runs if r.method == "unipelt"}
    assert single == {("atis",): {}, ("mine",): {"mine": {"path": str(tmp_path / "mine")}}}


def test_hf_json_folder_with_string_tags(tmp_path, hf_env):
    folder = tmp_path / "js"
    folder.mkdir()
    rows = [{"words": ["Ann", "in", "Rome"], "tags": ["B-PER", "O", "U-LOC"]}] * 10
    (folder / "train.json").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    (folder / "validation.json").write_text(json.dumps(rows[0]) + "\n", encoding="utf-8")
    sources = dict([parse_spec(f"js={folder}")])  # a folder of .json files goes to datasets
    splits = task_splits("js", sources=sources)
    assert (len(splits["train"]), len(splits["val"])) == (10, 1) and "test" not in splits
    assert splits["val"][0].tags == ("B-PER", "O", "B-LOC") and sources["js"]["converted"] == "BILOU -> BIO"
