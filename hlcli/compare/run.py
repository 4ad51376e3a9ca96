"""Training and scoring the planned runs (skipping finished ones), and collecting finished runs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Callable, Sequence

import pandas as pd

from hlcli import runs
from hlcli.compare.plan import PlannedRun, plan
from hlcli.compare.results import RESULT_COLUMNS, CompareResult, records
from hlcli.io import atomic_write, write_json

Log = Callable[[str], None]


def compare(*, collect_only: bool = False, log: Log | None = None, **options: Any) -> CompareResult:
    """Train and evaluate every planned run that is not finished yet (none with ``collect_only``),
    then collect all results into ``<output dir>/results.csv`` and ``results.json``.

    ``options`` are :func:`~hlcli.compare.plan.plan`'s: ``recipe`` and the optional ``methods``,
    ``fractions``, ``tasks``, ``data_dir``, ``output_dir``, ``model``, ``max_steps``, ``seeds``.
    """
    say = log or (lambda line: None)
    the_plan = plan(**options)
    result = CompareResult(
        output_dir=the_plan.output_dir, split=the_plan.split, methods=the_plan.methods, fractions=the_plan.fractions,
        tasks=the_plan.tasks, results=pd.DataFrame(columns=RESULT_COLUMNS), model=the_plan.model,
    )
    rows: list[dict[str, Any]] = []
    todo = [r for r in the_plan.runs if r.unavailable is None]
    for index, run in enumerate(todo, 1):
        assert run.config is not None and run.run_dir is not None
        step = f"[{index}/{len(todo)}] {run.label}"
        if is_finished(run.run_dir, the_plan.split, run.tasks):
            result.skipped.append(run.run_dir)
            say(f"{step}: finished, skipped ({run.run_dir})")
        elif collect_only:
            result.missing.append(run.label)
            say(f"{step}: not finished, left out (--collect-only)")
            continue
        else:
            _train_and_evaluate(run, the_plan.split, result, say=lambda line, s=step: say(f"{s}: {line}"))
        rows.extend(_collect(run.run_dir, run.method, run.fraction, run.seed, run.tasks, the_plan.split, the_plan.model))
    for run in the_plan.runs:
        if run.unavailable is not None:
            result.unavailable[run.method] = run.unavailable

    result.results = pd.DataFrame(rows, columns=RESULT_COLUMNS)
    the_plan.output_dir.mkdir(parents=True, exist_ok=True)
    with atomic_write(the_plan.output_dir / "results.csv") as handle:
        result.results.to_csv(handle, index=False)
    write_json(the_plan.output_dir / "results.json", records(result.results))
    return result


def is_finished(run_dir: Path, split: str, tasks: Sequence[str]) -> bool:
    """True when ``eval.json`` scores every task of the run on ``split``."""
    scored = _scores(run_dir, split)
    return all(task in scored and "f1" in scored[task] for task in tasks)


def _scores(run_dir: Path, split: str) -> dict[str, Any]:
    try:
        scored = json.loads((run_dir / runs.EVAL).read_text(encoding="utf-8")).get(split, {}).get("tasks", {})
    except (OSError, json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        return {}
    return scored if isinstance(scored, dict) else {}


def _train_and_evaluate(run: PlannedRun, split: str, result: CompareResult, *, say: Log) -> None:
    from hlcli.evaluation import evaluate
    from hlcli.training import train

    assert run.config is not None and run.run_dir is not None
    last = runs.checkpoint_dir(run.run_dir, runs.LAST)
    if runs.is_checkpoint_dir(last):
        steps = runs.checkpoint_step(last)
        if steps < run.config.max_steps:
            say(f"resuming at step {steps} ({run.run_dir})")
            train(run.config, resume=True)
            result.trained.append(run.run_dir)
    else:
        if run.run_dir.exists():
            # Stopped before its first checkpoint: nothing to resume, start over.
            shutil.rmtree(run.run_dir)
        say(f"training {run.config.max_steps} steps ({run.run_dir})")
        train(run.config)
        result.trained.append(run.run_dir)
    say(f"evaluating on {split}")
    evaluate(run.run_dir, split=split, data_dir=run.config.data_dir, batch_size=run.config.eval_batch_size)
    result.evaluated.append(run.run_dir)


def _collect(run_dir: Path, method: str, fraction: float, seed: int | None, tasks: Sequence[str], split: str, model: str | None) -> list[dict[str, Any]]:
    from hlcli.checkpoint import read_checkpoint_config

    scores = _scores(run_dir, split)
    checkpoint, _ = runs.resolve_checkpoint(run_dir)
    parameters = read_checkpoint_config(checkpoint).get("parameters", {})
    return [
        {
            "method": method, "model": model, "fraction": fraction, "seed": seed, "task": task,
            "f1": float(scores[task]["f1"]), "total": parameters.get("total"),
            "trainable": parameters.get("trainable"), "run_dir": str(run_dir),
        }
        for task in tasks
    ]
