"""Training and scoring a planned run of ``hl compare``: :func:`train_and_score` in this process, or
:func:`train_in_processes` N at a time (``--jobs N``), each in a worker process of its own.

A comparison is many independent runs (grid points, methods, seeds), and the small models of a CPU
comparison use extra torch threads poorly, so N runs side by side, with a share of the threads
each, keep the cores busier than one run at a time with all of them (2 cores, tiny T5: 1.55x,
``benchmarks/bench_compare_jobs.py``, docs/PERFORMANCE.md §7). A process per run (not a
thread) keeps each run's seeds, torch threads and stop signals its own, as one at a time:
``tests/test_compare_jobs.py`` checks that the scores are those of one run at a time.

Workers are started with ``spawn`` (no fork of a process that holds torch's thread pools), each
with ``torch`` threads = the caller's // N (at least 1). Their log lines come back through a queue
and go to the caller's log. A run that fails stops the comparison: the other workers get SIGTERM,
which makes ``train`` save ``checkpoints/last`` at the next step, so ``hl compare`` run again
resumes them.
"""

from __future__ import annotations

import multiprocessing
import queue as queue_module
import shutil
from typing import Iterator

from hlcli import runs
from hlcli.compare.plan import PlannedRun
from hlcli.errors import HLError
from hlcli.io import Log

_LOG_LINES = None  # in a worker: the queue its log lines go back through


def train_and_score(run: PlannedRun, split: str, *, say: Log) -> bool:
    """Train (or resume) ``run`` to its last step and score it on ``split``; whether it trained."""
    from hlcli.adapt import setup_for
    from hlcli.evaluation import evaluate
    from hlcli.training import train

    assert run.config is not None and run.run_dir is not None
    setup = setup_for(run.config)  # None unless the recipe's runs were made by hl adapt
    last = runs.checkpoint_dir(run.run_dir, runs.LAST)
    trained = False
    if runs.is_checkpoint_dir(last):
        steps = runs.checkpoint_step(last)
        if steps < run.config.max_steps:
            say(f"resuming at step {steps} ({run.run_dir})")
            train(run.config, resume=True, setup=setup)
            trained = True
    else:
        if run.run_dir.exists():
            # Stopped before its first checkpoint: nothing to resume, start over.
            shutil.rmtree(run.run_dir)
        say(f"training {run.config.max_steps} steps ({run.run_dir})")
        train(run.config, setup=setup)
        trained = True
    say(f"evaluating on {split}")
    evaluate(run.run_dir, split=split, data_dir=run.config.data_dir, batch_size=run.config.eval_batch_size)
    return trained


def train_in_processes(
    queued: list[tuple[str, PlannedRun]], split: str, *, jobs: int, say: Log
) -> Iterator[tuple[PlannedRun, bool]]:
    """Train and score each ``(step label, run)`` in a pool of ``jobs`` worker processes; yields each
    run with whether it trained (False: it was only scored), in the order given."""
    import torch

    context = multiprocessing.get_context("spawn")
    lines = context.Queue()
    workers = min(jobs, len(queued))
    threads = max(1, torch.get_num_threads() // workers)
    say(f"training {len(queued)} runs, {workers} at a time, {threads} torch thread(s) each")
    pool = context.Pool(workers, initializer=_start_worker, initargs=(lines, threads))
    try:
        pending = [(run, pool.apply_async(_train, (step, run, split))) for step, run in queued]
        for run, handle in pending:
            while not handle.ready():
                _say_waiting(lines, say, timeout=0.2)
            ok, value = handle.get()
            _say_waiting(lines, say)
            if not ok:
                raise HLError(f"{run.label}: {value}", path=run.run_dir)
            yield run, value
        pool.close()
    except BaseException:
        pool.terminate()  # SIGTERM: each running train() saves checkpoints/last before it exits
        raise
    finally:
        pool.join()
        _say_waiting(lines, say)


def _start_worker(lines, threads: int) -> None:
    global _LOG_LINES
    import torch

    _LOG_LINES = lines
    torch.set_num_threads(threads)


def _train(step: str, run: PlannedRun, split: str) -> tuple[bool, bool | str]:
    """In a worker: ``(True, trained)``, or ``(False, what went wrong)`` as text (an exception
    object need not survive pickling back to the caller)."""
    try:
        return True, train_and_score(run, split, say=lambda line: _LOG_LINES.put(f"{step}: {line}"))
    except BaseException as error:  # noqa: BLE001 - reported by the caller, which stops the comparison
        return False, str(error) if isinstance(error, HLError) else f"{type(error).__name__}: {error}"


def _say_waiting(lines, say: Log, timeout: float = 0.0) -> None:
    """Pass on the workers' log lines: wait up to ``timeout`` for the first, then take what is there."""
    try:
        say(lines.get(timeout=timeout) if timeout else lines.get_nowait())
        while True:
            say(lines.get_nowait())
    except queue_module.Empty:
        pass
