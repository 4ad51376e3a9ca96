"""README promises about data, each tested through the command a user types:
``$HL_DOWNLOAD_BASE_URL`` (``hl data download`` reads from a mirror), ``NAME=FORMAT:FOLDER`` (a named
format instead of the detected one) and ``hf:ORG/NAME:CONFIG`` (a hub dataset from the local
datasets cache, as task ``NAME_CONFIG``). Offline: a loopback server and a datasets cache built here."""

from __future__ import annotations

import functools
import json
import shutil
import socket
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from _cli import invoke
from hlcli.config import TrainConfig
from hlcli.data.tasks import load_split
from hlcli.data.download import MANIFEST

# -- $HL_DOWNLOAD_BASE_URL -------------------------------------------------------------------------------
RESTAURANT = {  # upstream path (under https://) → the shared copy, which is the MIT release itself
    "groups.csail.mit.edu/sls/downloads/restaurant/restauranttrain.bio": "mit_restaurant/restauranttrain.bio",
    "groups.csail.mit.edu/sls/downloads/restaurant/restauranttest.bio": "mit_restaurant/restauranttest.bio",
}


class _RecordingHandler(SimpleHTTPRequestHandler):
    requested: list[str] = []

    def log_message(self, *args) -> None:  # keep pytest's output clean
        pass

    def do_GET(self) -> None:
        type(self).requested.append(self.path)
        super().do_GET()


@pytest.fixture
def mirror(tmp_path, data_dir):
    """A loopback server whose ``/mirror/<host>/<path>`` holds MIT Restaurant; yields its base URL."""
    for upstream, shared in RESTAURANT.items():
        (tmp_path / "served" / "mirror" / upstream).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(data_dir / shared, tmp_path / "served" / "mirror" / upstream)
    _RecordingHandler.requested = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_RecordingHandler, directory=str(tmp_path / "served")))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/mirror"
    httpd.shutdown()
    httpd.server_close()


def dead_url() -> str:
    with socket.socket() as sock:  # a loopback port nobody listens on
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_hl_download_base_url_makes_hl_data_download_read_from_the_mirror(mirror, tmp_path, monkeypatch):
    monkeypatch.setenv("HL_DOWNLOAD_BASE_URL", mirror)
    target = tmp_path / "corpora"
    result = invoke("data", "download", "restaurant", "--data-dir", target)  # no --base-url
    assert result.exit_code == 0, result.output
    assert "restaurant: downloaded and verified" in result.stdout
    # Every file came from the mirror, at BASE/<host>/<path> of its upstream URL.
    assert sorted(_RecordingHandler.requested) == sorted(f"/mirror/{path}" for path in RESTAURANT)
    sources = json.loads((target / MANIFEST).read_text())["restaurant"]["sources"]
    assert sorted(sources) == sorted(f"{mirror}/{path}" for path in RESTAURANT)
    assert len(load_split("restaurant", "test", data_dir=target)) == 1521


def test_base_url_flag_wins_over_the_variable(mirror, tmp_path, monkeypatch):
    monkeypatch.setenv("HL_DOWNLOAD_BASE_URL", dead_url())
    result = invoke("data", "download", "restaurant", "--data-dir", tmp_path / "corpora", "--base-url", mirror)
    assert result.exit_code == 0, result.output
    assert len(_RecordingHandler.requested) == len(RESTAURANT)
    # ... and the variable alone, pointing nowhere, is what is used without the flag.
    result = invoke("data", "download", "restaurant", "--data-dir", tmp_path / "other")
    assert result.exit_code == 1 and "cannot download" in result.stderr, result.output


# -- NAME=FORMAT:FOLDER ------------------------------------------------------------------------------
ROWS = [(["Ann", "lives", "in", "Rome"], ["B-PER", "O", "O", "B-LOC"]), (["Bob", "left"], ["B-PER", "O"])]


def jsonl_in_txt_files(folder: Path) -> Path:
    """JSONL records in ``.txt`` files: detection (by suffix, then columns) takes them for CoNLL."""
    folder.mkdir()
    for split, count in (("train", 10), ("dev", 3), ("test", 2)):
        lines = [json.dumps({"tokens": ROWS[i % 2][0], "tags": ROWS[i % 2][1]}) for i in range(count)]
        (folder / f"{split}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def stats(*tasks: str):
    return invoke("data", "stats", "--tasks", ",".join(tasks), "--format", "json")


def test_name_format_folder_reads_the_named_format_instead_of_detecting_one(tmp_path):
    folder = jsonl_in_txt_files(tmp_path / "mine")
    detected = stats(f"mine={folder}")
    assert detected.exit_code == 1 and "unknown tag" in detected.stderr, detected.output  # read as CoNLL

    named = stats(f"mine=jsonl:{folder}")
    assert named.exit_code == 0, named.output
    (row,) = json.loads(named.stdout)
    assert (row["task"], row["train"], row["val"], row["test"], row["labels"]) == ("mine", 10, 3, 2, 2)
    config = TrainConfig(tasks=["atis", f"mine=jsonl:{folder}"])
    assert config.tasks == ["atis", "mine"]
    assert config.task_sources == {"mine": {"path": str(folder), "format": "jsonl"}}


def test_a_folder_whose_name_has_a_colon_is_a_folder_not_a_format(tmp_path, monkeypatch):
    jsonl_in_txt_files(tmp_path / "jsonl")  # not this one: "data:jsonl" below is one folder's name
    folder = tmp_path / "data:jsonl"
    folder.mkdir()
    (folder / "train.conll").write_text("Ann B-PER\nleft O\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    config = TrainConfig(tasks=["mine=data:jsonl"])
    assert config.task_sources == {"mine": {"path": str(folder)}}
    result = stats("mine=data:jsonl")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)[0]["source"] == str(folder)


# -- hf:ORG/NAME:CONFIG ------------------------------------------------------------------------------
TAG_NAMES = ["O", "B-PER", "I-PER", "B-LOC"]
SPLIT_ROWS = {"train": 6, "validation": 2, "test": 2}


@pytest.fixture
def wikiann_in_the_datasets_cache(tmp_path, monkeypatch):
    """``unimelb-nlp/wikiann`` config ``en`` in a fresh datasets cache, where a hub download leaves it
    (``<cache>/unimelb-nlp___wikiann/en/0.0.0/<revision>/``), written by a builder of that name: the
    hub is never asked (HF_DATASETS_OFFLINE), so only this cache can answer."""
    import datasets

    cache = tmp_path / "hf-datasets"
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", cache)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True, raising=False)

    class Wikiann(datasets.GeneratorBasedBuilder):
        BUILDER_CONFIGS = [datasets.BuilderConfig(name="en")]

        def _info(self):
            return datasets.DatasetInfo(features=datasets.Features({
                "tokens": datasets.Sequence(datasets.Value("string")),
                "ner_tags": datasets.Sequence(datasets.ClassLabel(names=TAG_NAMES)),
            }))  # fmt: skip

        def _split_generators(self, dl_manager):
            return [datasets.SplitGenerator(name=split, gen_kwargs={"rows": n}) for split, n in SPLIT_ROWS.items()]

        def _generate_examples(self, rows):
            for i in range(rows):
                yield i, {"tokens": ["Ann", "in", "Rome"], "ner_tags": [1, 0, 3]}

    Wikiann(cache_dir=str(cache), dataset_name="wikiann", repo_id="unimelb-nlp/wikiann", config_name="en",
            hash="0123456789abcdef").download_and_prepare()  # fmt: skip
    return cache


def test_hf_org_name_config_is_task_name_config_loaded_from_the_datasets_cache(wikiann_in_the_datasets_cache):
    config = TrainConfig(tasks=["atis", "hf:unimelb-nlp/wikiann:en"])
    assert config.tasks == ["atis", "wikiann_en"]
    assert config.task_sources == {"wikiann_en": {"hf": "unimelb-nlp/wikiann", "config": "en"}}
    assert TrainConfig(tasks=["ner=hf:unimelb-nlp/wikiann:en"]).tasks == ["ner"]  # or named by the user

    result = stats("hf:unimelb-nlp/wikiann:en")
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.stdout)
    assert (row["task"], row["train"], row["val"], row["test"], row["labels"]) == ("wikiann_en", 6, 2, 2, 2)
    # ClassLabel ids became their names.
    train = load_split("wikiann_en", "train", sources=config.task_sources)
    assert train[0].tokens == ("Ann", "in", "Rome") and train[0].tags == ("B-PER", "O", "B-LOC")


def test_hf_dataset_not_in_the_cache_names_the_id(wikiann_in_the_datasets_cache):
    result = stats("hf:unimelb-nlp/wikiann:fr")  # another config of a cached dataset: not there
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("error: hf:unimelb-nlp/wikiann: cannot load dataset")
