"""``hl evaluate``: predict each task's split with a checkpoint and score it, as in the papers.

The scores are :mod:`hlcli.scoring`'s (seqeval micro-F1 per task, :data:`SEQEVAL_MODE`); the paper's
"Average" is the plain mean of the per-task F1 scores. A run folder also gets the predictions, its
``eval.json`` and the scores in its checkpoint's model card.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import pandas as pd
import torch

from hlcli import runs
from hlcli.checkpoint import load_model, read_checkpoint_config, refresh_card
from hlcli.compare.bootstrap import f1_interval
from hlcli.config import read_config
from hlcli.data.corpora import SPLITS
from hlcli.data.example import Example
from hlcli.data.tasks import load_split
from hlcli.errors import unknown_name
from hlcli.io import atomic_write, locked, write_json
from hlcli.methods.base import TaggingModel
from hlcli.scoring import SEQEVAL_MODE, conll_lines, score, score_per_label

# Keys of a task's bootstrap interval in the scores (hl evaluate --ci).
CI_KEYS = ("ci95_low", "ci95_high")
# Sentences predicted per call when evaluating (bounded memory, progress updates).
PREDICT_CHUNK = 1024

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
    step: int | None = None  # the training step of the checkpoint scored (None: not written by hl train)
    average: float = field(init=False)

    def __post_init__(self) -> None:
        f1s = [s["f1"] for s in self.scores.values()]
        self.average = sum(f1s) / len(f1s) if f1s else 0.0

    def to_frame(self) -> pd.DataFrame:
        """Rows: tasks then ``Average`` (mean F1 only, like the paper's table)."""
        intervals = [c for c in CI_KEYS if any(c in s for s in self.scores.values())]
        columns = ["f1", "precision", "recall", "sentences", *intervals]
        frame = pd.DataFrame.from_dict(self.scores, orient="index", columns=columns)
        frame.loc["Average"] = [self.average] + [None] * (len(columns) - 1)
        frame.index.name = "task"
        return frame

    def to_json(self) -> dict[str, Any]:
        return {
            "checkpoint": str(self.checkpoint),
            "step": self.step,
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
    """Predict and score each task's ``split`` with a run's selected checkpoint
    (``runs.resolve_checkpoint``: best, or last) or a given checkpoint.

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
    data = _data_settings(checkpoint, run_dir, data_dir)
    step = runs.step_of_checkpoint(checkpoint)  # (read first: a training run may replace the folder)
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
        examples = load_split(task, split, **data)
        pred = _predict(model, task, examples, batch_size=batch_size, progress=progress)
        scores[task], per_label[task] = _task_scores(examples, pred, ci=ci)
        predictions[task] = [{"tokens": list(e.tokens), "gold": list(e.tags), "pred": p}
                             for e, p in zip(examples, pred)]  # fmt: skip

    result = EvalResult(
        checkpoint=checkpoint, split=split, scores=scores, per_label=per_label, predictions=predictions, step=step
    )
    if run_dir is not None:
        _write_run_files(result, run_dir)
        refresh_card(checkpoint, run_dir, step=step)  # the model card shows the scores eval.json now holds
    if output is not None:
        write_json(output, result.to_json())
    return result


def _data_settings(checkpoint: Path, run_dir: Path | None, data_dir: str | Path | None) -> dict[str, Any]:
    """``load_split``'s data settings for scoring ``checkpoint``: the run's (its data folder unless
    ``data_dir`` is given, its fraction and seed), else a whole split of the checkpoint's tasks."""
    config = read_config(run_dir / runs.CONFIG) if run_dir is not None else None
    if data_dir is None and config is not None:
        data_dir = config.data_dir
    # The run's own train/val slices (the readers never shrink test).
    fraction, seed = (config.fraction, config.seed) if config is not None else (1.0, 42)
    # Own tasks are found where the run read them (config.json records the folder or dataset).
    # A checkpoint copied out of its run keeps them in its own config.json (the run's settings).
    sources = _sources(config.to_dict()) if config is not None else _checkpoint_sources(checkpoint)
    return {"data_dir": data_dir, "fraction": fraction, "seed": seed, "sources": sources}


def _predict(model: TaggingModel, task: str, examples: Sequence[Example], *, batch_size: int,
             progress: Callable[[str, int, int], None] | None) -> list[list[str]]:  # fmt: skip
    """The model's tags for each example, one per word."""
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
    return pred


def _task_scores(examples: Sequence[Example], pred: list[list[str]], *, ci: bool) -> tuple[dict, dict]:
    """A task's scores (with ``sentences``, and the bootstrap interval if ``ci``) and its per-label scores."""
    gold = [e.tags for e in examples]
    scores = {**score(gold, pred), "sentences": len(examples)}
    if ci:
        low, high = f1_interval([e.tokens for e in examples], gold, pred)
        scores.update(ci95_low=low, ci95_high=high)
    return scores, score_per_label(gold, pred)


def _write_run_files(result: EvalResult, run_dir: Path) -> None:
    """``predictions/<split>/<task>.jsonl`` and the split's record in ``eval.json``."""
    result.predictions_dir = run_dir / runs.PREDICTIONS / result.split
    for task, records in result.predictions.items():
        with atomic_write(result.predictions_dir / f"{task}.jsonl") as handle:
            handle.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    _merge_scores(run_dir / runs.EVAL, result.split, result.to_json())


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
