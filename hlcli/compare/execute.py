"""Training and scoring the planned runs (skipping finished ones), and collecting finished runs."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from hlcli import runs
from hlcli.compare.jobs import BUSY, train_and_score, train_in_processes
from hlcli.compare.plan import ComparePlan, PlannedRun, final_runs, plan
from hlcli.compare.results import RESULT_COLUMNS, CompareResult, edge_warnings, records, tuning_frame
from hlcli.compare.tune import TUNE_SPLIT, TuningPoint, choose, grid_edges
from hlcli.errors import UsageError
from hlcli.io import Log, atomic_write, write_json


def compare(
    *, collect_only: bool = False, tune_only: bool = False, jobs: int = 1, log: Log | None = None, **options: Any
) -> CompareResult:
    """Train and evaluate every planned run that is not finished yet (none with ``collect_only``),
    then collect all results into ``<output dir>/results.csv`` and ``results.json``.

    With a ``[compare.tune]`` grid, every grid point is trained and scored on validation first
    (``tuning.csv``/``tuning.json``: every point, its average validation F1, the chosen one), then
    each tuned method's chosen point is trained over the seeds and scored on the split (not with
    ``tune_only``: then nothing but the grid points is trained or tabled).

    ``jobs`` > 1 trains that many runs at a time, each in a process of its own (:mod:`hlcli.compare.jobs`):
    the same runs and scores as one at a time, in less wall time on a machine with the cores for it.

    ``options`` are :func:`~hlcli.compare.plan.plan`'s: ``recipe`` and the optional ``methods``,
    ``fractions``, ``tasks``, ``data_dir``, ``output_dir``, ``model``, ``max_steps``, ``seeds``, ``split``.
    """
    if not isinstance(jobs, int) or jobs < 1:
        raise UsageError(f"jobs={jobs!r}", expected="a positive number of runs trained at a time")
    say = log or (lambda line: None)
    the_plan = plan(**options)
    result = CompareResult(
        output_dir=the_plan.output_dir, split=the_plan.split, methods=the_plan.methods, fractions=the_plan.fractions,
        tasks=the_plan.tasks, results=pd.DataFrame(columns=RESULT_COLUMNS), model=the_plan.model,
    )
    _run_all(the_plan.points, TUNE_SPLIT, result, collect_only=collect_only, say=say, prefix="tune ", jobs=jobs)
    result.tuning, chosen = score_points(the_plan)
    result.fixed = dict(the_plan.fixed)
    result.grids = {method: tuned.spec for (method, _), tuned in the_plan.tuned.items()}
    for (method, fraction), tuned in the_plan.tuned.items():
        if (method, fraction) not in chosen:
            points = [p for p in result.tuning if p.method == method and p.fraction == fraction]
            scored = sum(p.val_avg_f1 is not None for p in points)
            if points and all(p.diverged for p in points):
                result.missing.append(f"{method} (fraction {fraction:g}): every grid point diverged")
                continue
            of = f"{scored} of {len(tuned.spec.points())} grid points scored"
            result.missing.append(f"{method} (fraction {fraction:g}): tuning unfinished ({of})")
    finals = [] if tune_only else _in_table_order(the_plan.runs + final_runs(the_plan, chosen), the_plan)
    rows: list[dict[str, Any]] = []
    for run in _run_all(finals, the_plan.split, result, collect_only=collect_only, say=say, jobs=jobs):
        assert run.run_dir is not None
        rows.extend(
            _collect(run.run_dir, run.method, run.fraction, run.seed, run.tasks, the_plan.split, the_plan.model)
        )
    for run in the_plan.runs:
        if run.unavailable is not None:
            result.unavailable[run.method] = run.unavailable

    result.results = pd.DataFrame(rows, columns=RESULT_COLUMNS)
    the_plan.output_dir.mkdir(parents=True, exist_ok=True)
    if not tune_only:  # (an earlier comparison's results stay)
        with atomic_write(the_plan.output_dir / "results.csv") as handle:
            result.results.to_csv(handle, index=False)
        write_json(the_plan.output_dir / "results.json", records(result.results))
    if result.tuning:
        with atomic_write(the_plan.output_dir / "tuning.csv") as handle:
            tuning_frame(result.tuning).to_csv(handle, index=False)
        write_json(the_plan.output_dir / "tuning.json", [p.to_json() for p in result.tuning])
    return result


def _run_all(
    todo: list[PlannedRun], split: str, result: CompareResult, *, collect_only: bool, say: Log, prefix: str = "",
    jobs: int = 1,
) -> list[PlannedRun]:
    """Train and score (on ``split``) each run not finished yet; the runs that are finished now.
    With ``jobs`` > 1 the runs to train are handed to that many worker processes after the loop."""
    done, queued = [], []
    todo = [r for r in todo if r.unavailable is None]
    for index, run in enumerate(todo, 1):
        assert run.config is not None and run.run_dir is not None
        step = f"{prefix}[{index}/{len(todo)}] {run.label}"
        stale = stale_revision(run.run_dir)
        if stale is not None and collect_only:
            result.missing.append(f"{run.label}: {stale}")
            say(f"{step}: {stale}; left out (--collect-only: run without it to retrain)")
            continue
        if stale is not None:
            aside = set_aside(run.run_dir, stale)
            result.superseded.append(aside)
            say(f"{step}: {stale}, so its scores are not this hlcli's: moved to {aside}, training again")
        if is_finished(run.run_dir, split, run.tasks):
            result.skipped.append(run.run_dir)
            say(f"{step}: finished, skipped ({run.run_dir})")
        elif collect_only:
            result.missing.append(run.label)
            say(f"{step}: not finished, left out (--collect-only)")
            continue
        elif jobs > 1:
            queued.append((step, run))
        else:
            _train_here(step, run, split, result, say)
        done.append(run)
    if len(queued) == 1:  # nothing to run beside it: here, with all of this process's threads
        _train_here(*queued[0], split, result, say)
    elif queued:
        for run, trained in train_in_processes(queued, split, jobs=jobs, say=say):
            _record(result, run, trained)
    busy = set(result.busy)
    return [run for run in done if run.run_dir not in busy]


def _train_here(step: str, run: PlannedRun, split: str, result: CompareResult, say: Log) -> None:
    """Train and score ``run`` in this process, its log lines prefixed with its ``step`` label."""
    _record(result, run, train_and_score(run, split, say=lambda line: say(f"{step}: {line}")))


def _record(result: CompareResult, run: PlannedRun, trained: bool | str) -> None:
    if trained == BUSY:  # another process trains it: neither scored nor tabled by this one
        result.busy.append(run.run_dir)
        result.missing.append(f"{run.label}: being trained by another process")
        return
    if trained:
        result.trained.append(run.run_dir)
    result.evaluated.append(run.run_dir)


def score_points(the_plan: ComparePlan) -> tuple[list[TuningPoint], dict[tuple[str, float], dict[str, Any]]]:
    """Every grid point with its validation scores (read from its runs' ``eval.json``), and each
    tuned method's chosen setting (only where every point of its grid is scored)."""
    points: list[TuningPoint] = []
    chosen: dict[tuple[str, float], dict[str, Any]] = {}
    for (method, fraction), tuned in the_plan.tuned.items():
        mine = []
        for setting in tuned.spec.points():
            planned = [p for p in tuned.points if p.setting == setting]
            first = planned[0].config
            assert first is not None
            tasks = [t for p in planned for t in p.tasks]
            run_dirs = [p.run_dir for p in planned if p.run_dir is not None]
            point = TuningPoint(method, fraction, setting, first.seed, first.max_steps, tasks, run_dirs)
            for run in planned:
                assert run.run_dir is not None
                # A point trained with other modules is not scored (compare retrains it; --collect-only leaves it out).
                scored = _scores(run.run_dir, TUNE_SPLIT) if stale_revision(run.run_dir) is None else {}
                point.scores.update({t: float(scored[t]["f1"]) for t in run.tasks if t in scored and "f1" in scored[t]})
                point.diverged = point.diverged or runs.diverged(run.run_dir)
            mine.append(point)
        best = choose(mine)
        if best is not None:
            best.chosen = True
            best.at_edge = grid_edges(tuned.spec, best.setting)
            chosen[method, fraction] = best.setting
        points.extend(mine)
    return points, chosen


def _in_table_order(planned: list[PlannedRun], the_plan: ComparePlan) -> list[PlannedRun]:
    """Fractions as the recipe lists them, then methods in the comparison's order (stable within)."""
    return sorted(planned, key=lambda r: (the_plan.fractions.index(r.fraction), the_plan.methods.index(r.method)))


SUPERSEDED = "superseded"  # <compare dir>/superseded/: runs trained with an earlier module revision


@dataclass(frozen=True)
class StaleRun:
    """A run folder trained with other modules than this hlcli's (:class:`hlcli.methods.ModuleRevision`)."""

    method: str
    recorded: int
    current: int

    def __str__(self) -> str:
        return f"trained with {self.method} module revision {self.recorded}, this hlcli's is {self.current}"


def stale_revision(run_dir: Path) -> StaleRun | None:
    """How a run folder's checkpoints (any of them) differ from this hlcli's module revision, or None.

    The revision is not part of the run's config hash (folder names stay), so an unchanged recipe
    finds a folder trained before its method's modules changed: :func:`compare` never reuses,
    resumes or tables such a run; it moves it to ``superseded/`` and trains the run again.
    """
    from hlcli.checkpoint import read_checkpoint_config
    from hlcli.errors import HLError
    from hlcli.revisions import current_revision, recorded_revision

    for which in (runs.LAST, runs.BEST):
        folder = runs.checkpoint_dir(run_dir, which)
        if not (folder / runs.MODEL_CONFIG).is_file():  # (not the weights: an archived run has none)
            continue
        try:
            config = read_checkpoint_config(folder)
        except HLError:
            continue  # a damaged checkpoint: training or scoring it reports that
        recorded, current = recorded_revision(config), current_revision(config)
        if recorded != current:
            return StaleRun(config["method"], recorded, current)
    return None


def set_aside(run_dir: Path, stale: StaleRun) -> Path:
    """Move a stale run to ``<compare dir>/superseded/<name>-rev<N>``: kept for contrast, never reused
    or tabled (the run's own lock is taken first, so a run being trained is never moved)."""
    folder = run_dir.parent.parent / SUPERSEDED
    target, n = folder / f"{run_dir.name}-rev{stale.recorded}", 2
    while target.exists():
        target, n = folder / f"{run_dir.name}-rev{stale.recorded}-{n}", n + 1
    folder.mkdir(parents=True, exist_ok=True)
    lock = runs.RunLock(run_dir).acquire()
    try:
        run_dir.rename(target)
    finally:
        lock.release()
    return target


def is_finished(run_dir: Path, split: str, tasks: Sequence[str]) -> bool:
    """True when ``eval.json`` scores every task of the run on ``split``, or the run is a grid point
    that diverged (nothing more to do for it: :func:`~hlcli.compare.jobs.train_and_score`)."""
    return mean_f1(run_dir, split, tasks) is not None or runs.diverged(run_dir) is not None


def mean_f1(run_dir: Path, split: str, tasks: Sequence[str]) -> float | None:
    """The mean F1 of ``tasks`` on ``split`` from the run's ``eval.json``; None unless every task is scored."""
    scored = _scores(run_dir, split)
    if not all(task in scored and "f1" in scored[task] for task in tasks):
        return None
    return sum(float(scored[task]["f1"]) for task in tasks) / len(tasks)


def _scores(run_dir: Path, split: str) -> dict[str, Any]:
    try:
        scored = json.loads((run_dir / runs.EVAL).read_text(encoding="utf-8")).get(split, {}).get("tasks", {})
    except (OSError, json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        return {}
    return scored if isinstance(scored, dict) else {}


def _collect(
    run_dir: Path, method: str, fraction: float, seed: int | None, tasks: Sequence[str], split: str, model: str | None
) -> list[dict[str, Any]]:
    from hlcli.checkpoint import read_checkpoint_config

    scores = _scores(run_dir, split)
    parameters = read_checkpoint_config(_scored_checkpoint(run_dir)).get("parameters", {})
    return [
        {
            "method": method, "model": model, "fraction": fraction, "seed": seed, "task": task,
            "f1": float(scores[task]["f1"]), "total": parameters.get("total"),
            "trainable": parameters.get("trainable"), "run_dir": str(run_dir),
        }
        for task in tasks
    ]


def _scored_checkpoint(run_dir: Path) -> Path:
    """The checkpoint the run is scored with (:func:`hlcli.runs.resolve_checkpoint`); in an archived
    run, which kept no tensors (:mod:`hlcli.compare.archive`), the first of the same order whose
    ``config.json`` is there."""
    from hlcli.errors import HLError

    try:
        return runs.resolve_checkpoint(run_dir)[0]
    except HLError:
        for which in runs.scoring_order(run_dir):
            folder = runs.checkpoint_dir(run_dir, which)
            if (folder / runs.MODEL_CONFIG).is_file():
                return folder
        raise


@dataclass
class RunStatus:
    """Where one planned run stands (``hl compare --dry-run``)."""

    run: PlannedRun
    split: str  # the split it is scored on: val for grid points
    # finished | to score | resume at step N | to train | to train again (module revision 1 → 2)
    # | after tuning[: score]
    state: str
    steps_left: int
    f1: float | None = None  # finished runs: the mean F1 of its tasks on ``split`` (grid points: val)


def plan_status(**options: Any) -> tuple[ComparePlan, list[RunStatus], list[str]]:
    """Every run the comparison needs (grid points, then final runs), what is left of each, and the
    warnings of the choices made so far (a point at its grid's edge: :func:`edge_warnings`).

    The final runs of a method whose grid is not scored yet are planned at its first point (the
    count and steps are the same at any point) and marked "after tuning".
    """
    the_plan = plan(**options)
    statuses = [_status(run, TUNE_SPLIT) for run in the_plan.points]
    tuning, chosen = score_points(the_plan)
    points = {p.run_dir for p in the_plan.points}
    for run in _in_table_order(the_plan.runs + final_runs(the_plan, chosen), the_plan):
        if run.unavailable is None:
            statuses.append(_status(run, the_plan.split))
    waiting = {key: tuned.spec.points()[0] for key, tuned in the_plan.tuned.items() if key not in chosen}
    for run in final_runs(the_plan, waiting):
        reused = run.run_dir in points
        assert run.config is not None
        state = "after tuning: score" if reused else "after tuning"
        run.setting, run.run_dir = None, None  # the point is not chosen yet: neither is shown
        statuses.append(RunStatus(run, the_plan.split, state, 0 if reused else run.config.max_steps))
    return the_plan, statuses, edge_warnings(tuning)


def _status(run: PlannedRun, split: str) -> RunStatus:
    assert run.config is not None and run.run_dir is not None
    stale = stale_revision(run.run_dir)
    if stale is not None:
        again = f"to train again (module revision {stale.recorded} → {stale.current})"
        return RunStatus(run, split, again, run.config.max_steps)
    f1 = mean_f1(run.run_dir, split, run.tasks)
    if f1 is not None:
        return RunStatus(run, split, "finished", 0, f1)
    if runs.diverged(run.run_dir) is not None:
        return RunStatus(run, split, "diverged", 0)
    last = runs.checkpoint_dir(run.run_dir, runs.LAST)
    step = runs.checkpoint_step(last) if runs.is_checkpoint_dir(last) else None
    if step is not None and step >= run.config.max_steps:
        return RunStatus(run, split, "to score", 0)
    left = run.config.max_steps - (step or 0)
    trainer = runs.trainer_of(run.run_dir)
    if trainer is not None:  # (its steps left counted from its last checkpoint)
        return RunStatus(run, split, f"training now ({trainer})", left)
    return RunStatus(run, split, "to train" if step is None else f"resume at step {step}", left)
