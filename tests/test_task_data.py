"""Per-task data settings: a fraction per task, CoNLL-2003's file names, one file as a task, and a
hub dataset that cannot be reached failing at once."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

import pytest

from _cli import invoke
from hlcli.config import load_config, parse_fraction
from hlcli.data.tasks import load_split
from hlcli.data.sources import load_source, parse_spec, split_of
from hlcli.errors import HLError, UsageError

pytestmark = pytest.mark.usefixtures("one_thread")

WORDS = ["alder", "birch", "cedar", "dogwood", "elm", "fir", "ginkgo", "hazel", "ironwood", "juniper"]


def write_conll(path: Path, sentences: int, *, offset: int = 0, docstart: bool = False) -> list[tuple[str, ...]]:
    """``sentences`` made-up sentences "plant the <tree> near <n>" (tree: B-TREE), CoNLL-2003's 4 columns."""
    blocks, tokens = (["-DOCSTART- -X- -X- O\n"] if docstart else []), []
    for i in range(offset, offset + sentences):
        words = [("plant", "O"), ("the", "O"), (WORDS[i % len(WORDS)], "B-TREE"), ("near", "O"), (f"gate{i}", "B-LOC")]
        blocks.append("".join(f"{w} NN B-NP {t}\n" for w, t in words))
        tokens.append(tuple(w for w, _ in words))
    path.write_text("\n".join(blocks), encoding="utf-8")
    return tokens


# -- per-task fractions ----------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "value"), [
    ("0.1", 0.1), ("0.1,mine=1.0", {"*": 0.1, "mine": 1.0}), ("atis=0.1, mine=1", {"atis": 0.1, "mine": 1.0}),
])  # fmt: skip
def test_fraction_flag_forms(text, value):
    assert parse_fraction(text) == value


@pytest.mark.parametrize("text", ["x", "atis=", "=0.5", "atis=0.1,atis=0.2"])
def test_bad_fraction_flags_are_usage_errors(text):
    with pytest.raises(UsageError, match="--fraction"):
        parse_fraction(text)


def test_recipe_task_tables_and_flags_set_fractions_per_task(tmp_path):
    write_conll(tmp_path / "mine.conll", 4)
    recipe = tmp_path / "r.toml"
    recipe.write_text('fraction = 0.1\n[tasks.atis]\n[tasks.snips]\n[tasks.mine]\npath = "mine.conll"\nfraction = 1.0\n')
    assert load_config(recipe).fraction == {"atis": 0.1, "snips": 0.1, "mine": 1.0}
    # A flag naming tasks changes only those; a bare number changes them all.
    assert load_config(recipe, {"fraction": parse_fraction("snips=0.5")}).fraction == {"atis": 0.1, "snips": 0.5, "mine": 1.0}
    assert load_config(recipe, {"fraction": parse_fraction("0.2")}).fraction == 0.2
    # The same fraction for every task is that number: the same run as before per-task fractions.
    assert load_config(recipe, {"fraction": parse_fraction("mine=0.1")}).fraction == 0.1

    recipe.write_text('tasks = ["atis", "snips"]\nfraction = {atis = 0.1}\n')
    assert load_config(recipe).fraction == {"atis": 0.1, "snips": 1.0}  # tasks not named: all their data
    with pytest.raises(UsageError, match="fraction given for task 'atsi', which is not trained"):
        load_config(recipe, {"fraction": parse_fraction("atsi=0.5")})
    recipe.write_text('tasks = ["atis", "snips"]\nfraction = {atis = 1.5}\n')
    with pytest.raises(UsageError, match="fraction of task 'atis' 1.5 out of range"):
        load_config(recipe)


def test_load_split_takes_each_tasks_own_fraction(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    write_conll(folder / "train.conll", 40)
    write_conll(folder / "dev.conll", 10, offset=40)
    write_conll(folder / "test.conll", 10, offset=50)
    _, entry = parse_spec(f"mine={folder}")
    sizes = [len(load_split("mine", "train", fraction=f, sources={"mine": entry})) for f in (0.25, {"mine": 0.5}, {"*": 0.1})]
    assert sizes == [10, 20, 4]
    assert len(load_split("mine", "test", fraction={"mine": 0.1}, sources={"mine": entry})) == 10  # test never shrinks


def test_hl_train_uses_each_tasks_fraction_and_names_the_folder_after_them(tmp_path, tiny_run, toy_tasks, monkeypatch):
    import hlcli.training.prepare

    asked: dict[tuple[str, str], float] = {}
    sizes: dict[tuple[str, str], int] = {}
    real_load_split = hlcli.training.prepare.load_split

    def spy(task, split, **kwargs):  # records what the run asks for; the real reader answers
        asked[task, split] = kwargs["fraction"]
        examples = real_load_split(task, split, **kwargs)
        sizes[task, split] = len(examples)
        return examples

    monkeypatch.setattr(hlcli.training.prepare, "load_split", spy)
    result = invoke("train", "--tasks", toy_tasks("flights", "music"), *tiny_run, "--fraction", "0.5,music=1", "--max-steps", 2)
    assert result.exit_code == 0, result.output
    assert asked == {("flights", "train"): 0.5, ("flights", "val"): 0.5, ("music", "train"): 1.0, ("music", "val"): 1.0}
    assert sizes[("flights", "train")] == 48 and sizes[("music", "train")] == 32  # of 96 and 32 toy sentences
    (folder,) = (tmp_path / "runs").iterdir()
    assert folder.name.startswith("hyperloader-flights+music-0.5+1-")
    result = invoke("train", "--tasks", "flights", "--fraction", "0.5,flights=oops")
    assert result.exit_code == 2 and "--fraction '0.5,flights=oops'" in result.stderr


# -- CoNLL-2003's file names and one file as a task -----------------------------------------------
@pytest.mark.parametrize(("name", "split"), [
    ("eng.train", "train"), ("eng.testa", "val"), ("eng.testb", "test"), ("deu.testb", "test"), ("train.conll", "train"),
    ("dev.txt", "val"), ("README.md", None), ("eng.list", None), ("notes", None),
])  # fmt: skip
def test_split_of_a_file_name(name, split):
    assert split_of(name) == split


def test_a_conll_2003_folder_is_read_with_testa_as_val_and_testb_as_test(tmp_path):
    folder = tmp_path / "conll03"
    folder.mkdir()
    train = write_conll(folder / "eng.train", 6, docstart=True)
    val = write_conll(folder / "eng.testa", 3, offset=6, docstart=True)
    test = write_conll(folder / "eng.testb", 2, offset=9, docstart=True)
    (folder / "eng.list").write_text("LOC gate0\n")  # CoNLL-2003 ships gazetteers too: not a split
    _, entry = parse_spec(f"c03={folder}")
    splits = load_source("c03", entry)
    assert {s: [e.tokens for e in examples] for s, examples in splits.items()} == {"train": train, "val": val, "test": test}
    assert entry["files"] == {"train": str(folder / "eng.train"), "val": str(folder / "eng.testa"), "test": str(folder / "eng.testb")}
    assert splits["train"][0].tags == ("O", "O", "B-TREE", "O", "B-LOC")  # the NER tag, the last of 4 columns


def test_one_file_is_split_into_train_val_and_test_with_the_mit_rule(tmp_path, caplog):
    sentences = write_conll(tmp_path / "all.conll", 50)
    _, entry = parse_spec(f"mine={tmp_path / 'all.conll'}")
    with caplog.at_level(logging.WARNING, logger="hlcli.data.sources"):
        splits = load_source("mine", entry)
    # 10 % of 50 = 5 sentences are test; 10 % of the other 45 = 4 are val (seed 42 both times).
    assert {s: len(e) for s, e in splits.items()} == {"train": 41, "val": 4, "test": 5}
    seen = [e.tokens for s in ("train", "val", "test") for e in splits[s]]
    assert sorted(seen) == sorted(sentences)
    assert entry["held_out_test"] is True and entry["held_out_val"] is True
    assert "one file: 10 % held out as test, then 10 % of the rest as val (fixed seed 42, as for the MIT corpora)" in caplog.text
    # Fixed seed, not the run's: the same split every time (another process would read it alike).
    from hlcli.data.corpora import hold_out_val
    from hlcli.data.readers import read_conll

    rest, test = hold_out_val(tuple(read_conll(tmp_path / "all.conll", task="mine")))
    assert [e.tokens for e in splits["test"]] == [e.tokens for e in test]


def test_a_missing_path_is_still_folder_not_found(tmp_path):
    _, entry = parse_spec(f"mine={tmp_path / 'nothing'}")
    with pytest.raises(HLError, match="folder not found"):
        load_source("mine", entry)


# -- a hub dataset without a hub --------------------------------------------------------------------
@pytest.fixture
def no_network(monkeypatch) -> list[str]:
    """No DNS (a machine without network), every host name looked up recorded; no offline variable set."""
    import datasets
    from huggingface_hub import constants

    from hlcli.hub import _hub_reachable

    for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", False)
    _hub_reachable.cache_clear()
    seen: list[str] = []

    def no_dns(host, *args, **kwargs):
        seen.append(host)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    yield seen
    _hub_reachable.cache_clear()


OFFLINE_ERROR = "cannot load dataset: ConnectionError: Couldn't reach 'someone/nothing' on the Hub (OfflineModeIsEnabled)"


def test_an_unreachable_hub_fails_at_once_after_one_probe(no_network, caplog):
    from huggingface_hub import constants
    from urllib.parse import urlparse

    name, entry = parse_spec("hf:someone/nothing")
    with caplog.at_level(logging.DEBUG), pytest.raises(HLError, match=OFFLINE_ERROR.replace("(", r"\(").replace(")", r"\)")):
        load_source(name, entry)
    # hlcli's reachability probe only: no request to the hub, so none of its retries.
    assert no_network == [urlparse(constants.ENDPOINT).hostname]
    assert "Retrying" not in caplog.text and "retry" not in caplog.text.lower()
    # Checked once per process: a second dataset does not probe again.
    with pytest.raises(HLError, match="Couldn't reach 'other/none'"):
        load_source(*parse_spec("hf:other/none"))
    assert len(no_network) == 1


def test_hf_datasets_offline_set_after_import_skips_even_the_probe(no_network, monkeypatch):
    import datasets

    assert datasets.config.HF_HUB_OFFLINE is False  # what the library read at import
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(HLError, match="OfflineModeIsEnabled"):
        load_source(*parse_spec("hf:someone/nothing"))
    assert no_network == [] and datasets.config.HF_HUB_OFFLINE is False  # restored after the call
