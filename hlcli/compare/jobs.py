"""Training and scoring a planned run of ``hl compare``: :func:`train_and_score` in this process, or
:func:`train_in_processes` N at a time (``--jobs N``), each in a worker process of its own.

A comparison is many independent runs (grid points, methods, seeds), and the small models of a CPU
comparison use extra torch threads poorly, so N runs side by side, with a share of the threads
each, keep the cores busier than one run at a time with all of them (2 cores, tiny T5: 1.25-1.61x,
``benchmarks/bench_compare_jobs.py``, docs/PERFORMANCE.md §7). A process per run (not a
thread) keeps each run's seeds, torch threads and stop signals its own, as one at a time:
``tests/test_compare_jobs.py`` checks that the scores are those of one run at a time.

Workers are started with ``spawn`` (no fork of a process that holds torch's thread pools), each
with ``torch`` threads = the caller's // N (at least 1), in a session of its own. Their log lines
come back through a queue and go to the caller's log. Whatever stops the comparison (Ctrl-C,
SIGTERM or SIGHUP to the caller, a run that fails) stops every worker once, by SIGTERM, which makes
``train`` save ``checkpoints/last`` at the next step: ``hl compare`` run again resumes them
(``tests/test_compare_jobs.py`` interrupts one). A worker between runs outlives that SIGTERM until the
pool shuts down, as a dead worker would make the pool signal the others a second time. On Linux a
worker also gets SIGTERM if the caller dies.
"""

from __future__ import annotations

import multiprocessing
import os
import queue as queue_module
import shutil
import signal
import sys
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Iterator

from hlcli import runs
from hlcli.compare.plan import PlannedRun
from hlcli.errors import Diverged, HLError, RunBusy
from hlcli.io import Log

BUSY = "busy"  # train_and_score's outcome for a run another process is training now

_MESSAGES = None  # in a worker: the queue its log lines (and its process id) go back through
_CALLER = 0  # in a worker: the process id of the hl compare that started it
_CALLER_GONE = False  # in a worker: the kernel said the caller died (_stop_with_parent)
_STOPPED: int | None = None  # in a worker: the stop signal it got between runs, if any


def train_and_score(run: PlannedRun, split: str, *, say: Log) -> bool | str:
    """Train (or resume) ``run`` to its last step and score it on ``split``; whether it trained, or
    :data:`BUSY` where another process is training it now (its lock is held): left to that process,
    so two ``hl compare`` of one recipe and folder share its runs instead of stopping or clashing.

    A grid point whose training diverges (a non-finite loss or gradient) is recorded as diverged
    (``diverged.json``) and not scored: the tuning goes on without it. Any other run that diverges
    stops the comparison, as ``hl train`` stops."""
    from hlcli.evaluation import evaluate

    assert run.config is not None and run.run_dir is not None
    try:
        trained = _train_or_resume(run, say)
    except RunBusy as error:
        say(f"{error.message}: left to it")
        return BUSY
    except Diverged as error:
        if not run.tuning:
            raise
        runs.mark_diverged(run.run_dir, error.message)  # (without the hint for hl train's user)
        say(f"diverged ({error.message}): a grid point left out of the choice")
        return True
    say(f"evaluating on {split}")
    evaluate(run.run_dir, split=split, data_dir=run.config.data_dir, batch_size=run.config.eval_batch_size)
    return trained


def _train_or_resume(run: PlannedRun, say: Log) -> bool:
    from hlcli.adapt import setup_for
    from hlcli.training import train

    assert run.config is not None and run.run_dir is not None
    setup = setup_for(run.config)  # None unless the recipe's runs were made by hl adapt
    last = runs.checkpoint_dir(run.run_dir, runs.LAST)
    trained = False
    if runs.is_checkpoint_dir(last):
        steps = runs.checkpoint_step(last)
        if steps < run.config.max_steps:
            runs.RunLock(run.run_dir).acquire().release()  # RunBusy before saying "resuming"
            say(f"resuming at step {steps} ({run.run_dir})")
            train(run.config, resume=True, setup=setup)
            trained = True
    else:
        if (run.run_dir / runs.EVAL).is_file():
            # A scored run without weights is an archive's copy (hl compare --archive): training it
            # again would replace the scores it was chosen or tabled by, so the user decides.
            raise HLError(
                "scored before, but no checkpoint of it holds weights (a copy made by hl compare --archive?), "
                "so it cannot be scored on another split", path=run.run_dir,
                expected="its checkpoints' model.safetensors back in place, or the folder moved away to train it again",
            )
        if run.run_dir.exists():
            _start_over(run.run_dir)
        say(f"training {run.config.max_steps} steps ({run.run_dir})")
        train(run.config, setup=setup)
        trained = True
    return trained


def _start_over(run_dir: Path) -> None:
    """Empty a run folder stopped before its first checkpoint (nothing to resume), under the run's
    lock: a folder another process is training now (not yet at its first checkpoint) is left alone."""
    lock = runs.RunLock(run_dir).acquire()
    try:
        for entry in run_dir.iterdir():
            if entry.name == runs.LOCK:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
    finally:
        lock.release()


def train_in_processes(
    queued: list[tuple[str, PlannedRun]], split: str, *, jobs: int, say: Log
) -> Iterator[tuple[PlannedRun, bool | str]]:
    """Train and score each ``(step label, run)`` in ``jobs`` worker processes; yields each run with
    whether it trained (False: it was only scored; :data:`BUSY`: another process trains it), as the
    runs finish.

    At most ``jobs`` runs are handed to the pool at a time, so that nothing waits in its queue when
    the comparison stops: a worker that stops its run then finds no other to start."""
    import torch

    from hlcli.training.signals import signals_interrupt

    count = min(jobs, len(queued))
    threads = max(1, torch.get_num_threads() // count)
    say(f"training {len(queued)} runs, {count} at a time, {threads} torch thread(s) each")
    workers, todo, running = _Workers(count, threads), list(queued), {}
    broken = False
    try:
        with signals_interrupt():  # SIGTERM / SIGHUP end the wait as Ctrl-C does: by an exception
            workers.start_all(count)
            while todo or running:
                while todo and len(running) < count:
                    step, run = todo.pop(0)
                    running[workers.executor.submit(_train, step, run, split)] = run
                for future in workers.wait_any(running, say):
                    run = running.pop(future)
                    try:
                        ok, value = future.result()
                    except BrokenProcessPool:  # a worker ended without a result; the pool stopped the others
                        broken = True
                        unfinished = ", ".join(r.label for r in [run, *running.values()] + [r for _, r in todo])
                        raise HLError(f"a worker process ended without a result (killed? out of memory?); "
                                      f"not finished: {unfinished}") from None
                    if not ok:
                        raise HLError(f"{run.label}: {value}", path=run.run_dir)
                    yield run, value
    except BaseException:
        if not broken:  # (a broken pool has sent its own SIGTERM: a second one would abort a save)
            workers.stop()
        raise
    finally:
        workers.executor.shutdown(wait=True, cancel_futures=True)
        workers.pass_on(say)


class _Workers:
    """The worker processes as the caller sees them: a pool, the queue their log lines and process
    ids come back through, and the ids.

    Each worker runs in a session of its own, so a terminal's Ctrl-C reaches only the caller, which
    then stops every worker the same way, once (:meth:`stop`): two signals would abort a run's save.
    """

    def __init__(self, count: int, threads: int) -> None:
        context = multiprocessing.get_context("spawn")  # no fork of a process holding torch's thread pools
        self.messages = context.Queue()
        self.pids: set[int] = set()
        self.executor = ProcessPoolExecutor(
            count, mp_context=context, initializer=_start_worker, initargs=(self.messages, threads)
        )

    def start_all(self, count: int) -> None:
        """Start all ``count`` workers (a no-op task each) before the first run is handed out.

        Python 3.11's pool starts a spawn worker at each submit, after waking its manager thread,
        which may then watch the worker processes without the one being started: a worker killed
        later (out of memory) went unnoticed until another run ended, hours on (seen in CI,
        2026-12-04). Once every worker has answered, the manager has watched them all since its
        last wake-up, and no worker is started later (the pool is full)."""
        futures = [self.executor.submit(os.getpid) for _ in range(count)]
        try:
            for future in futures:
                future.result()
        except BrokenProcessPool:
            raise HLError("a worker process ended as it started (killed? out of memory?); no run was begun") from None

    def pass_on(self, say: Log, timeout: float = 0.0) -> None:
        """Say the workers' log lines: wait up to ``timeout`` for the first, then take what is there."""
        try:
            message = self.messages.get(timeout=timeout) if timeout else self.messages.get_nowait()
            while True:
                kind, value = message
                if kind == "pid":
                    self.pids.add(value)
                else:
                    say(value)
                message = self.messages.get_nowait()
        except queue_module.Empty:
            pass

    def wait_any(self, running, say: Log) -> set:
        """The futures of ``running`` that are done, once one is; log lines said meanwhile."""
        while True:
            done = {future for future in running if future.done()}
            if done:
                self.pass_on(say)
                return done
            self.pass_on(say, timeout=0.2)

    def stop(self) -> None:
        """SIGTERM to every worker: one in ``train`` saves ``checkpoints/last`` at the next step and
        returns; an idle one exits."""
        self.pass_on(lambda line: None)  # the ids of workers started since the last look
        for pid in self.pids:
            try:
                os.kill(pid, signal.SIGTERM)
            except OSError:  # already gone
                pass


def _start_worker(messages, threads: int) -> None:
    global _MESSAGES, _CALLER
    import torch

    if hasattr(os, "setsid"):  # POSIX: a session of its own, signals come from the caller (_Workers.stop)
        os.setsid()
    _CALLER = os.getppid()
    signal.signal(signal.SIGTERM, _stop_between_runs)
    _stop_with_parent()
    _MESSAGES = messages
    messages.put(("pid", os.getpid()))
    torch.set_num_threads(threads)


def _stop_between_runs(signum: int, frame) -> None:
    """SIGTERM to a worker between runs: the comparison is stopping (:meth:`_Workers.stop` signals
    every worker). Dying of it would break the pool, whose manager then SIGTERMs the other workers
    again, and that second signal aborts a run's save of ``checkpoints/last`` (2026-12-05: a
    fine-tuning run lost 450 steps and the caller hung). So the worker stays for the pool's shutdown
    and starts no run meanwhile (:func:`_train`); when the caller is gone (the SIGTERM of
    :func:`_stop_with_parent`), nobody will shut it down, and it exits."""
    global _STOPPED
    if _caller_is_gone():
        os._exit(128 + signum)
    _STOPPED = signum


def _caller_is_gone() -> bool:
    return _CALLER_GONE or os.getppid() != _CALLER


def _stop_with_parent() -> None:
    """On Linux a worker gets one SIGTERM when the caller dies (even by SIGKILL), so it saves its run
    and stops instead of training on alone; elsewhere it finishes its current run, then exits.

    The kernel's parent-death signal is SIGUSR1, turned here into that one SIGTERM: the kernel sends
    it each time the worker is handed to another parent, first to a surviving thread of the dying
    caller, so a multi-threaded caller's death can send it twice, and a second SIGTERM aborts the
    save (seen in tests/test_compare_jobs.py: two in three kills lost the runs' last steps)."""
    if sys.platform.startswith("linux"):
        import ctypes

        signal.signal(signal.SIGUSR1, _caller_died)
        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGUSR1)
        if os.getppid() != _CALLER:  # died before the request was made
            _caller_died(signal.SIGUSR1, None)


def _caller_died(signum: int, frame) -> None:
    global _CALLER_GONE
    if not _CALLER_GONE:
        _CALLER_GONE = True
        os.kill(os.getpid(), signal.SIGTERM)


def _train(step: str, run: PlannedRun, split: str) -> tuple[bool, bool | str]:
    """In a worker: ``(True, trained or BUSY)``, or ``(False, what went wrong)`` as text (an exception
    object need not survive pickling back to the caller)."""
    from hlcli.training.signals import signals_interrupt

    try:
        # During a run a stop signal ends it as in hl train (at once before the loop, after a save in
        # it), not as between runs (_stop_between_runs), which would let the run train on to its end.
        with signals_interrupt():
            if _STOPPED is not None:  # handed out as the comparison stopped: not begun, nothing to save
                outcome = False, f"stopped ({signal.Signals(_STOPPED).name}) before it began"
            else:
                outcome = True, train_and_score(run, split, say=lambda line: _MESSAGES.put(("line", f"{step}: {line}")))
    except BaseException as error:  # noqa: BLE001 - reported by the caller, which stops the comparison
        outcome = False, str(error) if isinstance(error, HLError) else f"{type(error).__name__}: {error}"
    if _caller_is_gone():  # the caller died during the run (whose save its SIGTERM asked for):
        os._exit(1)  # no pool is left to hand out runs or shut this worker down
    return outcome
