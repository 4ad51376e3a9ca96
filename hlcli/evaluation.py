"""Scoring (``hl evaluate``): seqeval micro-F1 per task and their average, as in the papers.

seqeval is used in its *default* mode, which reproduces the conlleval script: chunks are read
leniently (an ``I-X`` after ``O`` or after another type opens a new ``X`` chunk), and F1 is the
micro average over all chunks of a task. The paper's "Average" is the plain mean of the per-task
F1 scores. :data:`SEQEVAL_MODE` is printed with every result so that scores are comparable.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import pandas as pd
import torch
from seqeval.metrics import classification_report, f1_score, precision_score, recall_score

from hlcli import runs
from hlcli.bootstrap import f1_interval
from hlcli.card import refresh_card
from hlcli.checkpoint import load_model, read_checkpoint_config
from hlcli.config import read_config
from hlcli.data.corpora import SPLITS, load_split
from hlcli.errors import unknown_name
from hlcli.io import atomic_write, locked, write_json
from hlcli.methods.base import TaggingModel

SEQEVAL_MODE = "seqeval default mode (conlleval-compatible, lenient IOB chunks), micro-averaged per task"

# Keys of a task's bootstrap interval in the scores (hl evaluate --ci).
CI_KEYS = ("ci95_low", "ci95_high")
# Sentences predicted per call when evaluating (bounded memory, progress updates).
PREDICT_CHUNK = 1024


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
        label: {"precision": float(r["precision"]), "recall": float(r["recall"]), "f1": float(r["f1-score"]), "support": int(r["support"])}
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


@dataclass
class EvalResult:
    """Scores of one checkpoint on one split: ``scores[task] = {"f1", "precision", "recall", "sentences"}``.

    ``per_label[task][type] = {"precision", "recall", "f1", "support"}`` (:func:`score_per_label`);
    ``predictions[task]`` holds ``{"tokens", "gold", "pred"}`` per sentence (not in ``to_json()``).
    """

    checkpoint: Path
    split: str
    scores: dict[str, dict[str, float]]
    mode: str = SEQEVAL_MODE
    predictions_dir: Path | None = None
    per_label: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    predictions: dict[str, list[dict[str, Any]]] = field(default_factory=dict, repr=False)
    average: float = field(init=False)

    def __post_init__(self) -> None:
        f1s = [s["f1"] for s in self.scores.values()]
        self.average = sum(f1s) / len(f1s) if f1s else 0.0

    def to_frame(self) -> pd.DataFrame:
        """Rows: tasks then ``Average`` (mean F1 only, like the paper's table)."""
        columns = ["f1", "precision", "recall", "sentences"] + [c for c in CI_KEYS if any(c in s for s in self.scores.values())]
        frame = pd.DataFrame.from_dict(self.scores, orient="index", columns=columns)
        frame.loc["Average"] = [self.average] + [None] * (len(columns) - 1)
        frame.index.name = "task"
        return frame

    def to_json(self) -> dict[str, Any]:
        return {
            "checkpoint": str(self.checkpoint),
            "split": self.split,
            "mode": self.mode,
            "tasks": self.scores,
            "average_f1": self.average,
            "per_label": self.per_label,
        }

    def conll(self, task: str) -> str:
        """The ``task``'s predictions as conlleval's input (:func:`conll_lines`), to score them elsewhere."""
        if task not in self.predictions:
            raise unknown_name("task", task, list(self.predictions))
        return "".join(conll_lines(self.predictions[task]))


def evaluate(
    run_or_checkpoint: str | Path,
    *,
    split: str = "test",
    tasks: Sequence[str] | None = None,
    data_dir: str | Path | None = None,
    batch_size: int = 64,
    output: str | Path | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    ci: bool = False,
    model: TaggingModel | None = None,
) -> EvalResult:
    """Predict and score each task's ``split`` with a run's selected checkpoint (``runs.resolve_checkpoint``: best, or last) or a given checkpoint.

    For a run folder, predictions go to ``predictions/<split>/<task>.jsonl`` and the scores are
    merged into ``eval.json``; ``output`` also receives the scores as JSON. ``split="train"`` (and
    ``"val"``) score the same slice the run trained (validated) on: its fraction and seed.
    ``progress(task, done, total)`` is called after each chunk of predicted sentences. ``ci`` adds
    each task's 95 % bootstrap interval of the F1 (``ci95_low``/``ci95_high``; docs/bootstrap.md).
    ``model``: the checkpoint's model, already loaded (``hlcli.load(...).evaluate``), else it is read.
    """
    if split not in SPLITS:
        raise unknown_name("split", split, SPLITS)
    checkpoint, run_dir = runs.resolve_checkpoint(run_or_checkpoint)
    config = read_config(run_dir / runs.CONFIG) if run_dir is not None else None
    if data_dir is None and config is not None:
        data_dir = config.data_dir
    # The run's own train/val slices (the readers never shrink test).
    fraction, seed = (config.fraction, config.seed) if config is not None else (1.0, 42)
    # Own tasks are found where the run read them (config.json records the folder or dataset).
    # A checkpoint copied out of its run keeps them in its own config.json (the run's settings).
    sources = _sources(config.to_dict()) if config is not None else _checkpoint_sources(checkpoint)

    if model is None:
        model = load_model(checkpoint)
    model.eval()
    known = [t.name for t in model.tasks]
    tasks = list(tasks) if tasks else known
    for task in tasks:
        if task not in known:
            raise unknown_name("task", task, known)

    scores: dict[str, dict[str, float]] = {}
    per_label: dict[str, dict[str, dict[str, float]]] = {}
    predictions: dict[str, list[dict[str, Any]]] = {}
    for task in tasks:
        examples = load_split(task, split, data_dir=data_dir, fraction=fraction, seed=seed, sources=sources)
        pred: list[list[str]] = []
        # Chunks keep memory bounded and let a progress bar move on long splits.
        for start in range(0, len(examples), PREDICT_CHUNK):
            chunk = examples[start : start + PREDICT_CHUNK]
            with torch.no_grad():
                pred.extend(model.predict(task, [list(e.tokens) for e in chunk], batch_size=batch_size))
            if progress is not None:
                progress(task, len(pred), len(examples))
        for example, tags in zip(examples, pred, strict=True):
            if len(tags) != len(example.tokens):
                raise RuntimeError(f"{model.method} predicted {len(tags)} tags for {len(example.tokens)} words")
        scores[task] = {**score([e.tags for e in examples], pred), "sentences": len(examples)}
        per_label[task] = score_per_label([e.tags for e in examples], pred)
        if ci:
            low, high = f1_interval([e.tokens for e in examples], [e.tags for e in examples], pred)
            scores[task].update(ci95_low=low, ci95_high=high)
        predictions[task] = [{"tokens": list(e.tokens), "gold": list(e.tags), "pred": p} for e, p in zip(examples, pred)]

    result = EvalResult(checkpoint=checkpoint, split=split, scores=scores, per_label=per_label, predictions=predictions)
    if run_dir is not None:
        result.predictions_dir = run_dir / runs.PREDICTIONS / split
        for task, records in predictions.items():
            with atomic_write(result.predictions_dir / f"{task}.jsonl") as handle:
                handle.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
        _merge_scores(run_dir / runs.EVAL, split, result.to_json())
        refresh_card(checkpoint, run_dir)  # the model card shows the scores eval.json now holds
    if output is not None:
        write_json(output, result.to_json())
    return result


def _checkpoint_sources(checkpoint: Path) -> dict[str, dict]:
    train_config = read_checkpoint_config(checkpoint).get("extra", {}).get("train_config", {})
    return _sources(train_config) if isinstance(train_config, dict) else {}


def _sources(train_config: dict[str, Any]) -> dict[str, dict]:
    """The run's own tasks' sources; an ``hl adapt`` run's also its base model's (scored without --replay)."""
    adapt = train_config.get("adapt") or {}
    return {**(adapt.get("base_sources") or {}), **(train_config.get("task_sources") or {})}


def _merge_scores(path: Path, split: str, record: dict[str, Any]) -> None:
    """Set ``split`` in ``eval.json``, keeping the other splits (another hl evaluate may be merging too)."""
    with locked(path.with_name(f".{path.name}.lock")):
        # eval.json only holds scores hl evaluate wrote: a damaged one is rebuilt, not fatal.
        merged = _read_scores(path)
        merged[split] = record
        write_json(path, merged)


def _read_scores(path: Path) -> dict[str, Any]:
    try:
        scores = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return scores if isinstance(scores, dict) else {}
