"""Tasks' data: a task name (a registered corpus, or a user's own data) to its splits.

``load_split("movie", "val")`` finds the data folder (``--data-dir``, ``$HL_DATA_DIR`` or the
user cache folder), reads the corpus (kept while its files are unchanged: :mod:`hlcli.data.cache`)
and returns the split, optionally down-sampled (``fraction``) in a seeded, nested way. A task named
in ``sources`` is read by :mod:`hlcli.data.sources` instead. This module sits above both
:mod:`hlcli.data.corpora` and :mod:`hlcli.data.sources`, which do not import each other's loading.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from hlcli.data import cache
from hlcli.data.corpora import (
    CORPORA,
    SPLITS,
    check_fraction,
    get_corpus,
    normalize_split,
    read_corpus_folder,
    resolve_data_dir,
    subsample,
    task_fraction,
)
from hlcli.data.example import Example
from hlcli.data.sources import load_source
from hlcli.errors import HLError


def task_splits(
    task: str, *, data_dir: Path | str | None = None, sources: dict[str, dict] | None = None
) -> dict[str, tuple[Example, ...]]:
    """Every split a task has: the one place where a task name is looked up.

    A task named in ``sources`` (``TrainConfig.task_sources``: a user's folder or Hugging Face
    dataset) is read from there; any other name must be a registered corpus under the data folder.
    """
    if sources and task in sources:
        return load_source(task, sources[task])
    get_corpus(task)
    return corpus_splits(resolve_data_dir(data_dir, task=task), task)


def corpus_splits(root: Path, task: str) -> dict[str, tuple[Example, ...]]:
    """Every split of registered corpus ``task`` under data folder ``root`` (resolved), read once
    while its files are unchanged."""
    folder = root / CORPORA[task].folder
    paths = [folder / name for name in CORPORA[task].files.values()]
    return cache.READS.get(("corpus", root, task), paths, lambda: read_corpus_folder(folder, task))


def load_split(
    task: str,
    split: str,
    *,
    data_dir: Path | str | None = None,
    fraction: float | Mapping[str, float] = 1.0,
    seed: int = 42,
    sources: dict[str, dict] | None = None,
) -> list[Example]:
    """One split of a task (see :func:`task_splits`); ``fraction`` down-samples train and val (never test).

    ``fraction`` may be a per-task table (see :func:`hlcli.data.corpora.task_fraction`).
    """
    split = normalize_split(split)
    fraction = task_fraction(fraction, task)
    check_fraction(fraction)
    splits = task_splits(task, data_dir=data_dir, sources=sources)
    if split not in splits:
        # Only a user's own task can lack a split (test is optional for them).
        raise HLError(f"task {task!r} has no {split} split", expected=f"one of its splits: {', '.join(splits)}")
    examples = splits[split]
    return list(examples) if split == "test" else subsample(examples, fraction, seed)


def load_corpus(
    task: str,
    *,
    data_dir: Path | str | None = None,
    fraction: float | Mapping[str, float] = 1.0,
    seed: int = 42,
    sources: dict[str, dict] | None = None,
) -> dict[str, list[Example]]:
    """``{"train": ..., "val": ..., "test": ...}`` of one task, without the splits it lacks."""
    splits = task_splits(task, data_dir=data_dir, sources=sources)
    return {
        split: load_split(task, split, data_dir=data_dir, fraction=fraction, seed=seed, sources=sources)
        for split in SPLITS
        if split in splits
    }


def label_types(examples: list[Example] | tuple[Example, ...]) -> list[str]:
    """Sorted entity types (``X`` of ``B-X``/``I-X``) occurring in ``examples``."""
    return sorted({tag[2:] for example in examples for tag in example.tags if tag != "O"})
