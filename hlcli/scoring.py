"""Scores of predicted tag sequences: seqeval micro-F1 per task, per entity type, and conlleval input.

seqeval is used in its *default* mode, which reproduces the conlleval script: chunks are read
leniently (an ``I-X`` after ``O`` or after another type opens a new ``X`` chunk), and F1 is the
micro average over all chunks of a task. The paper's "Average" is the plain mean of the per-task
F1 scores. :data:`SEQEVAL_MODE` is printed with every result so that scores are comparable.

Free of torch and of the model: ``hl evaluate`` (:mod:`hlcli.evaluation`) and the training loop's
validation both score with these functions.
"""

from __future__ import annotations

from typing import Any, Iterator, Sequence

from seqeval.metrics import classification_report, f1_score, precision_score, recall_score

SEQEVAL_MODE = "seqeval default mode (conlleval-compatible, lenient IOB chunks), micro-averaged per task"


def score(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> dict[str, float]:
    """Micro precision/recall/F1 over chunks (:data:`SEQEVAL_MODE`); 0 when there is nothing to score."""
    gold, pred = [list(s) for s in gold], [list(s) for s in pred]
    if not gold:  # seqeval refuses an empty corpus
        return {"f1": 0.0, "precision": 0.0, "recall": 0.0}
    return {
        "f1": float(f1_score(gold, pred, zero_division=0)),
        "precision": float(precision_score(gold, pred, zero_division=0)),
        "recall": float(recall_score(gold, pred, zero_division=0)),
    }


def score_per_label(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> dict[str, dict[str, float]]:
    """Per entity type: ``{"precision", "recall", "f1", "support"}`` (support = gold chunks).

    seqeval's ``classification_report`` in the same mode as :func:`score` (conlleval's per-type
    lines); types are those found in gold or predictions, sorted. The averages are left out:
    the micro average is :func:`score`.
    """
    gold, pred = [list(s) for s in gold], [list(s) for s in pred]
    if not any(tag != "O" for sentence in gold + pred for tag in sentence):
        return {}  # no chunk anywhere: seqeval would average an empty list
    report = classification_report(gold, pred, output_dict=True, zero_division=0)
    return {
        label: {"precision": float(r["precision"]), "recall": float(r["recall"]), "f1": float(r["f1-score"]),
                "support": int(r["support"])}  # fmt: skip
        for label, r in report.items()
        if not label.endswith(" avg")
    }


def conll_lines(records: Sequence[dict[str, Any]]) -> Iterator[str]:
    """conlleval's input for predictions ``{"tokens", "gold", "pred"}``: ``token gold pred`` per
    word, a blank line after each sentence (each line ends with ``\\n``)."""
    for record in records:
        for token, gold, pred in zip(record["tokens"], record["gold"], record["pred"], strict=True):
            # conlleval splits lines at whitespace: a token holding some would shift the columns.
            yield f"{'_'.join(token.split()) or '_'} {gold} {pred}\n"
        yield "\n"
