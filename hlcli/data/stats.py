"""Corpus statistics: the paper's Table 2 (split sizes, slot types) measured on the files."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from hlcli.data.corpora import CORPORA, SPLITS, task_title
from hlcli.data.sources import describe, resolve_tasks
from hlcli.data.tasks import label_types, load_corpus
from hlcli.sentt import adjacent_same_type


@dataclass(frozen=True)
class CorpusStats:
    """Table 2 figures of one corpus, plus what simplified BIO cannot express."""

    task: str
    title: str
    train: int
    val: int
    test: int | None  # None: a user's own task without a test split
    # Slot types over the union of train, val and test: that union is what gives the paper's
    # figures (ATIS: 79 types in train, 83 in all splits; mTOP: 74 in train, 75 in all).
    labels: int
    paper_labels: int | None  # None for a user's own task
    # Sentences (all splits) where a span directly follows a span of the same type
    # (``B-X B-X``, ``B-X I-X B-X``); sBIO expresses them (see docs/sentt.md), an IO scheme would not.
    adjacent_same_type: int
    held_out_val: bool  # val is 10 % of the released train file (MIT corpora, own data without val)
    source: str | None = None  # own tasks: folder or dataset, and any tag-scheme conversion

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        if self.source is None:
            del data["source"]  # registered corpora: the same record as before own tasks existed
        return data


def corpus_stats(*, tasks: list[str] | None = None, data_dir: Path | str | None = None) -> list[CorpusStats]:
    """Statistics of ``tasks`` (default: every registered corpus; ``NAME=FOLDER`` and
    ``hf:ORG/NAME`` items are own data), in the order given."""
    names, sources = resolve_tasks(list(CORPORA) if not tasks else tasks, None)
    return [_stats(task, data_dir=data_dir, sources=sources) for task in names]


def _stats(task: str, *, data_dir: Path | str | None, sources: dict[str, dict]) -> CorpusStats:
    splits = load_corpus(task, data_dir=data_dir, sources=sources)
    everything = [example for split in SPLITS for example in splits.get(split, [])]
    entry = sources.get(task)
    if entry is not None:
        source = describe(entry) + (f" ({entry['converted']})" if entry.get("converted") else "")
        paper_labels, held_out = None, bool(entry.get("held_out_val"))
    else:
        source, paper_labels, held_out = None, CORPORA[task].paper_labels, CORPORA[task].held_out_val
    return CorpusStats(
        task=task,
        title=task_title(task),
        train=len(splits["train"]),
        val=len(splits["val"]),
        test=len(splits["test"]) if "test" in splits else None,
        labels=len(label_types(everything)),
        paper_labels=paper_labels,
        adjacent_same_type=sum(adjacent_same_type(example.tags) > 0 for example in everything),
        held_out_val=held_out,
        source=source,
    )
