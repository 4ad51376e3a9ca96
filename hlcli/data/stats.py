"""Corpus statistics: the paper's Table 2 (split sizes, slot types) measured on the files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hlcli.data.corpora import CORPORA, SPLITS, get_corpus, label_types, load_corpus
from hlcli.sentt import adjacent_same_type


@dataclass(frozen=True)
class CorpusStats:
    """Table 2 figures of one corpus, plus what simplified BIO cannot express."""

    task: str
    title: str
    train: int
    val: int
    test: int
    # Slot types over the union of train, val and test: that union is what gives the paper's
    # figures (ATIS: 79 types in train, 83 in all splits; mTOP: 74 in train, 75 in all).
    labels: int
    paper_labels: int
    # Sentences (all splits) where a span directly follows a span of the same type
    # (``B-X B-X``, ``B-X I-X B-X``); sBIO expresses them (see docs/sentt.md), an IO scheme would not.
    adjacent_same_type: int
    held_out_val: bool  # val is 10 % of the released train file (MIT corpora)


def corpus_stats(*, tasks: list[str] | None = None, data_dir: Path | str | None = None) -> list[CorpusStats]:
    """Statistics of ``tasks`` (default: every registered corpus), in registry order."""
    names = list(CORPORA) if not tasks else tasks
    results = []
    for task in names:
        corpus = get_corpus(task)
        splits = load_corpus(task, data_dir=data_dir)
        everything = [example for split in SPLITS for example in splits[split]]
        results.append(
            CorpusStats(
                task=task,
                title=corpus.title,
                train=len(splits["train"]),
                val=len(splits["val"]),
                test=len(splits["test"]),
                labels=len(label_types(everything)),
                paper_labels=corpus.paper_labels,
                adjacent_same_type=sum(adjacent_same_type(example.tags) > 0 for example in everything),
                held_out_val=corpus.held_out_val,
            )
        )
    return results
