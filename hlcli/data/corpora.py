"""The corpus registry: where each of the paper's seven corpora lives and how its splits are made.

The facts (:data:`CORPORA`), the data folder (``--data-dir``, ``$HL_DATA_DIR`` or the user cache
folder), reading one corpus folder, the split names and the seeded, nested down-sampling
(``fraction``). Loading a task by name (a corpus or a user's own data) is :mod:`hlcli.data.tasks`.
"""

from __future__ import annotations

import os
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hlcli.data.example import Example
from hlcli.data.readers import READERS
from hlcli.errors import HLError, UsageError, unknown_name

SPLITS = ("train", "val", "test")
SPLIT_ALIASES = {"validation": "val", "dev": "val", "eval": "val", "valid": "val"}
# The MIT corpora ship without a validation split; the paper holds out 10 % of train. The seed
# is fixed (independent of the run seed) so every run validates on the same sentences.
MIT_VAL_SHARE = 0.1
MIT_VAL_SEED = 42
DATA_DIR_ENV = "HL_DATA_DIR"
CACHE_DIR_ENV = "HL_CACHE_DIR"


@dataclass(frozen=True)
class Corpus:
    """One registered corpus: its folder under the data dir, reader format and split files."""

    name: str = field(metadata={"help": "Registry name, used as the task name."})
    folder: str = field(metadata={"help": "Folder under the data dir."})
    format: str = field(metadata={"help": "Reader format (see hlcli.data.readers.READERS)."})
    files: dict[str, str] = field(metadata={"help": "Split -> path relative to the folder; no 'val' = 10 % of train."})
    title: str = field(metadata={"help": "Name used in the paper's tables."})
    paper_labels: int = field(metadata={"help": "Number of slot types in the paper's Table 2."})

    def __post_init__(self) -> None:
        if self.format not in READERS:
            raise unknown_name("format", self.format, list(READERS))

    @property
    def held_out_val(self) -> bool:
        return "val" not in self.files


CORPORA: dict[str, Corpus] = {
    corpus.name: corpus
    for corpus in (
        Corpus("atis", "atis", "goo", {"train": "train", "val": "valid", "test": "test"}, "ATIS", 83),
        Corpus("snips", "snips", "goo", {"train": "train", "val": "valid", "test": "test"}, "SNIPS", 39),
        Corpus("movie", "mit_movie", "mit", {"train": "engtrain.bio.txt", "test": "engtest.bio.txt"}, "Movie", 12),
        Corpus(
            "movietrivia",
            "mit_movie_trivia",
            "mit",
            {"train": "trivia10k13train.bio", "test": "trivia10k13test.bio"},
            "MovieTrivia",
            12,
        ),
        Corpus(
            "restaurant",
            "mit_restaurant",
            "mit",
            {"train": "restauranttrain.bio", "test": "restauranttest.bio"},
            "Restaurant",
            8,
        ),
        Corpus(
            "mtop", "mtop", "mtop", {"train": "en/train.txt", "val": "en/eval.txt", "test": "en/test.txt"}, "mTOP", 75
        ),
        Corpus(
            "mtod",
            "mtod",
            "mtod",
            {"train": "en/train-en.tsv", "val": "en/eval-en.tsv", "test": "en/test-en.tsv"},
            "mTOD",
            9,
        ),
    )
}


OWN_DATA_HINT = "your own data is a task too: NAME=FOLDER, NAME=hf:ORG/DATASET or hf:ORG/DATASET (see README, Data)"


def get_corpus(task: str) -> Corpus:
    if task not in CORPORA:
        error = unknown_name("task", task, list(CORPORA))
        error.hint = OWN_DATA_HINT
        raise error
    return CORPORA[task]


def task_title(task: str) -> str:
    """The paper's name of a registered corpus; a user's own task is called by its own name."""
    return CORPORA[task].title if task in CORPORA else task


def default_data_dir() -> Path:
    """``$HL_CACHE_DIR/data``, else ``~/.cache/hlcli/data``."""
    cache = os.environ.get(CACHE_DIR_ENV)
    return (Path(cache) if cache else Path.home() / ".cache" / "hlcli") / "data"


def resolve_data_dir(data_dir: Path | str | None = None, *, task: str | None = None) -> Path:
    """The corpora folder: ``data_dir``, else ``$HL_DATA_DIR``, else :func:`default_data_dir`.

    With ``task``, the corpus' own subfolder must exist too.
    """
    if data_dir is not None and str(data_dir) != "":
        root, how = Path(data_dir), "--data-dir"
    elif os.environ.get(DATA_DIR_ENV):
        root, how = Path(os.environ[DATA_DIR_ENV]), f"${DATA_DIR_ENV}"
    else:
        root, how = default_data_dir(), "the default cache folder"
    fix = f"pass --data-dir or set {DATA_DIR_ENV} to the folder holding atis/, snips/, mit_movie/, ..."
    if not root.is_dir():
        raise HLError(f"data folder not found (from {how})", path=root, hint=fix)
    if task is not None:
        folder = root / get_corpus(task).folder
        if not folder.is_dir():
            raise HLError(f"corpus folder for task {task!r} not found (from {how})", path=folder, hint=fix)
    return root.resolve()


def normalize_split(split: str) -> str:
    split = SPLIT_ALIASES.get(split, split)
    if split not in SPLITS:
        raise unknown_name("split", split, list(SPLITS) + list(SPLIT_ALIASES))
    return split


def read_corpus_folder(folder: Path, task: str) -> dict[str, tuple[Example, ...]]:
    """Every split of registered corpus ``task`` read from ``folder`` (its folder in any data dir)."""
    corpus = CORPORA[task]
    reader = READERS[corpus.format]
    splits = {split: tuple(reader(folder / name, task=task)) for split, name in corpus.files.items()}
    if corpus.held_out_val:
        splits["train"], splits["val"] = hold_out_val(splits["train"])
    return splits


def hold_out_val(train: tuple[Example, ...]) -> tuple[tuple[Example, ...], tuple[Example, ...]]:
    """(train, val): a fixed-seed :data:`MIT_VAL_SHARE` of ``train`` becomes val, order kept."""
    order = list(range(len(train)))
    random.Random(MIT_VAL_SEED).shuffle(order)
    # At least one sentence when there are two (a user's tiny corpus); the MIT corpora are far larger.
    size = max(1, int(len(train) * MIT_VAL_SHARE)) if len(train) >= 2 else 0
    held = set(order[:size])
    return (
        tuple(example for i, example in enumerate(train) if i not in held),
        tuple(example for i, example in enumerate(train) if i in held),
    )


def subsample(examples: list[Example] | tuple[Example, ...], fraction: float, seed: int) -> list[Example]:
    """A seeded ``fraction`` of ``examples`` in their original order.

    One seeded permutation, then a prefix: the subset for a smaller fraction is contained in the
    subset for a larger one, and the same seed gives the same subset.
    """
    check_fraction(fraction)
    if fraction == 1.0:
        return list(examples)
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    keep = set(order[: max(1, round(len(examples) * fraction))])
    return [example for i, example in enumerate(examples) if i in keep]


OTHER_TASKS = "*"  # key of a fraction table for the tasks it does not name (--fraction 0.1,mine=1.0)


def check_fraction(value: Any, what: str = "fraction") -> None:
    """The one range check of a data fraction (flags, recipes, per-task tables, hl compare)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 < value <= 1.0:
        raise UsageError(f"{what} {value!r} out of range", expected="0 < fraction <= 1")


def task_fraction(fraction: float | Mapping[str, float], task: str) -> float:
    """One task's fraction from a run's ``fraction``: a number, or a per-task table whose ``"*"``
    (default 1.0) is for the tasks it does not name (``TrainConfig.fraction``)."""
    if isinstance(fraction, Mapping):
        return fraction.get(task, fraction.get(OTHER_TASKS, 1.0))
    return fraction


def merge_fractions(base: Any, update: Any) -> Any:
    """``update`` over ``base``: a number replaces everything, a table replaces the tasks it names."""
    if update is None:
        return base
    if base is None or not isinstance(update, dict):
        return update
    return {**(base if isinstance(base, dict) else {OTHER_TASKS: base}), **update}
