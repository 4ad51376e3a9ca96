"""``hl compare --jobs N``: the runs trained N at a time in worker processes give the scores of one
at a time, and a run that fails in a worker stops the comparison with its name."""

from __future__ import annotations

import dataclasses
import os
import signal
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from _cli import invoke
from conftest import save_tiny_t5
from hlcli.errors import HLError

SMOKE = Path(__file__).resolve().parent.parent / "recipes" / "smoke.toml"

pytestmark = [pytest.mark.usefixtures("one_thread"), pytest.mark.slow]


@pytest.fixture(scope="module")
def tiny_t5(tmp_path_factory, t5_tokenizer_path) -> str:
    return save_tiny_t5(tmp_path_factory.mktemp("tiny-t5"), t5_tokenizer_path, num_layers=1)


def _compare(out: Path, tiny_t5: str, data_dir, *extra: str):
    args = ["compare", "--recipe", SMOKE, "--model", tiny_t5, "--data-dir", data_dir, "--output-dir", out, "--seeds", "1,2"]
    return invoke(*args, *extra)


def test_two_jobs_train_every_run_with_the_scores_of_one_at_a_time(tmp_path, tiny_t5, data_dir):
    # 2 methods x 2 seeds on the smoke recipe: once one run at a time (in this process, one torch
    # thread), once two worker processes (one thread each, from this process's one).
    one = _compare(tmp_path / "one", tiny_t5, data_dir)
    assert one.exit_code == 0, one.output
    two = _compare(tmp_path / "two", tiny_t5, data_dir, "--jobs", "2")
    assert two.exit_code == 0, two.output
    assert "training 4 runs, 2 at a time, 1 torch thread(s) each" in two.stderr
    assert "4 trained, 0 skipped (finished), 0 missing" in two.stdout
    columns = ["method", "seed", "task", "f1", "trainable"]
    first, second = (pd.read_csv(tmp_path / name / "results.csv")[columns] for name in ("one", "two"))
    assert len(first) == 8 and first.sort_values(columns[:3]).reset_index(drop=True).equals(
        second.sort_values(columns[:3]).reset_index(drop=True)
    )  # the same F1 to the last digit: each run keeps its seed and thread count in its own process
    again = _compare(tmp_path / "two", tiny_t5, data_dir, "--jobs", "2")  # finished runs are reused
    assert again.exit_code == 0 and "0 trained, 4 skipped (finished)" in again.stdout, again.output


def test_a_run_that_fails_in_a_worker_stops_the_comparison_naming_it(tmp_path, tiny_t5, data_dir):
    from hlcli.compare.jobs import train_in_processes
    from hlcli.compare.plan import plan

    planned = plan(recipe=SMOKE, model=tiny_t5, data_dir=data_dir, output_dir=tmp_path / "cmp").runs
    broken = dataclasses.replace(planned[0], config=dataclasses.replace(planned[0].config, data_dir=str(tmp_path / "none")))
    said: list[str] = []
    with pytest.raises(HLError) as failed:
        list(train_in_processes([("[1/1] broken", broken)], "val", jobs=2, say=said.append))
    assert f"{broken.label}: " in str(failed.value) and "not found" in str(failed.value)
    assert failed.value.path == str(broken.run_dir)
    assert said[0] == "training 1 runs, 1 at a time, 1 torch thread(s) each"


def test_jobs_must_be_a_positive_count():
    from hlcli.compare import compare
    from hlcli.errors import UsageError

    with pytest.raises(UsageError, match="jobs=0"):
        compare(recipe=SMOKE, jobs=0)
    refused = invoke("compare", "--recipe", SMOKE, "--jobs", "0")
    assert refused.exit_code == 2 and "--jobs" in refused.output


@pytest.mark.skipif(not hasattr(signal, "SIGINT") or sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_stops_every_worker_after_it_saves_and_the_same_command_resumes(tmp_path, tiny_t5, data_dir):
    """Ctrl-C reaches only ``hl compare`` (its workers run in sessions of their own); it stops each
    worker once, which saves ``checkpoints/last`` and exits, so nothing is left training and holding
    a run's lock, and the same command resumes both runs from where they stopped."""
    from filelock import FileLock

    from _processes import hl_process, wait_until
    from hlcli import runs

    out, log = tmp_path / "cmp", tmp_path / "hl.log"
    args = ["compare", "--recipe", SMOKE, "--model", tiny_t5, "--data-dir", data_dir, "--output-dir", out,
            "--seeds", "1,2", "--methods", "hyperloader", "--jobs", "2"]  # fmt: skip
    process = hl_process(*args, "--max-steps", 100_000, log=log)
    lasts = lambda: [runs.checkpoint_dir(r, runs.LAST) for r in sorted((out / "runs").glob("*"))]  # noqa: E731
    wait_until(lambda: len(lasts()) == 2 and all(runs.is_checkpoint_dir(c) for c in lasts()), process, log,
               "both workers' first checkpoints/last", timeout=240)  # fmt: skip
    process.send_signal(signal.SIGINT)  # as a terminal's Ctrl-C: the workers are not in its session
    assert process.wait(timeout=120) == 130, log.read_text()
    text = log.read_text()
    assert "Traceback" not in text and "interrupted" in text
    stopped = {}
    for run_dir in sorted((out / "runs").glob("*")):
        step = runs.checkpoint_step(runs.checkpoint_dir(run_dir, runs.LAST))
        train_log = (run_dir / runs.TRAIN_LOG).read_text()
        assert f"interrupted (SIGTERM) at step {step}; checkpoints/last saved" in train_log, train_log
        FileLock(str(run_dir / runs.LOCK), timeout=0).acquire()  # no worker left holding it (raises if one is)
        stopped[run_dir.name] = step

    again = tmp_path / "again.log"
    resumed = hl_process(*args, "--max-steps", 100_000, log=again)  # the same command
    wait_until(lambda: all(f"resuming at step {step} ({out / 'runs' / name})" in again.read_text()
                           for name, step in stopped.items()), resumed, again, "both runs resumed", timeout=240)  # fmt: skip
    resumed.send_signal(signal.SIGINT)
    assert resumed.wait(timeout=120) == 130, again.read_text()


def test_a_worker_that_is_killed_is_reported_with_its_run(tmp_path, tiny_t5, data_dir, monkeypatch):
    """SIGKILL (as the out-of-memory killer sends) leaves no result: the comparison stops at once,
    naming the runs, and the other worker's run is stopped (saved), not trained to its end."""
    import hlcli.compare.jobs as jobs
    from hlcli import runs
    from hlcli.compare.plan import plan

    # 3,000 steps (minutes here): enough to tell a run stopped by the comparison from one trained to
    # its end, never a test that hangs for hours if the comparison waits for it (CI, 2026-12-04).
    planned = plan(recipe=SMOKE, model=tiny_t5, data_dir=data_dir, output_dir=tmp_path / "cmp", max_steps=3000,
                   seeds=[1, 2]).runs  # fmt: skip
    said: list[str] = []
    killed: list[int] = []
    pass_on = jobs._Workers.pass_on

    def pass_on_then_kill(workers, say, timeout=0.0):  # once a worker trains, SIGKILL one worker, once
        pass_on(workers, say, timeout)
        if not killed and len(workers.pids) == 2 and any("training 3000 steps" in line for line in said):
            # The worker started last: Python 3.11's pool could start watching it late (jobs.start_all).
            killed.append(max(workers.pids))
            os.kill(killed[0], signal.SIGKILL)

    monkeypatch.setattr(jobs._Workers, "pass_on", pass_on_then_kill)
    with pytest.raises(HLError, match="ended without a result") as failed:
        list(jobs.train_in_processes([(f"[{i}/2]", r) for i, r in enumerate(planned, 1)], "val", jobs=2, say=said.append))
    assert len(killed) == 1 and all(run.label in str(failed.value) for run in planned)  # none finished
    for run in planned:  # the survivor stopped early (saved, or before its first checkpoint); the killed one too
        last = runs.checkpoint_dir(run.run_dir, runs.LAST)
        assert not runs.is_checkpoint_dir(last) or runs.checkpoint_step(last) < 3000


def test_a_run_another_process_trains_is_left_to_it_and_trained_once_it_is_free(tmp_path, tiny_t5, data_dir):
    # Two hl compare of one recipe and folder share its runs: a run whose lock another process holds
    # (here this test holds it, as hl train does) is neither trained, emptied nor tabled by this one;
    # the other runs are. --dry-run says who trains it. Once free, the next hl compare trains it.
    from hlcli import runs
    from hlcli.compare.plan import plan

    out = tmp_path / "cmp"
    busy = plan(recipe=SMOKE, model=tiny_t5, data_dir=data_dir, output_dir=out, seeds=[1, 2]).runs[0]
    lock = runs.RunLock(busy.run_dir).acquire()
    (busy.run_dir / runs.METRICS).write_text("{}\n")  # what a trainer writes before its first checkpoint
    left_to_it = f"{busy.run_dir} is being trained by process {os.getpid()}: left to it"
    try:
        first = _compare(out, tiny_t5, data_dir, "--jobs", "2")  # the busy run is found by a worker
        assert first.exit_code == 0, first.output
        assert left_to_it in first.stderr
        assert "3 trained, 0 skipped (finished), 1 missing (1 being trained by another process)" in first.stdout
        again = _compare(out, tiny_t5, data_dir)  # and by this process, one run at a time
        assert again.exit_code == 0 and left_to_it in again.stderr, again.output
        assert "0 trained, 3 skipped (finished), 1 missing (1 being trained by another process)" in again.stdout
        assert (busy.run_dir / runs.METRICS).read_text() == "{}\n"  # its folder not emptied under it
        assert len(pd.read_csv(out / "results.csv")) == 6  # 3 runs x 2 tasks: not the busy one
        dry = _compare(out, tiny_t5, data_dir, "--dry-run")
        assert dry.exit_code == 0 and f"training now (process {os.getpid()})" in dry.stdout, dry.output
    finally:
        lock.release()
    free = _compare(out, tiny_t5, data_dir)
    assert free.exit_code == 0 and "1 trained, 3 skipped (finished), 0 missing" in free.stdout, free.output
    assert len(pd.read_csv(out / "results.csv")) == 8


def test_an_idle_worker_outlives_the_stop_signal_so_no_second_one_aborts_a_save():
    """Stopping signals every worker once (``_Workers.stop``). One between runs used to die of it,
    which broke the pool, whose manager then SIGTERMed the others a second time: a run saving its
    checkpoints/last was aborted and the caller hung in the pool's shutdown (2026-12-05, a 2,000-step
    fine-tuning run beside an idle worker). Now it waits for the shutdown and begins no run."""
    import hlcli.compare.jobs as jobs

    workers = jobs._Workers(2, 1)
    try:
        workers.start_all(2)
        deadline = time.monotonic() + 60
        while len(workers.pids) < 2 and time.monotonic() < deadline:
            workers.pass_on(lambda line: None, timeout=0.5)
        assert len(workers.pids) == 2
        workers.stop()
        time.sleep(1.0)  # time enough for a dead worker to be noticed by the pool's manager thread
        assert {workers.executor.submit(os.getpid).result(timeout=60) for _ in range(8)} <= workers.pids  # not broken
        outcome = workers.executor.submit(jobs._train, "[1/1]", None, "val").result(timeout=60)
        assert outcome == (False, "stopped (SIGTERM) before it began")
    finally:
        workers.executor.shutdown(wait=True, cancel_futures=True)
    for pid in workers.pids:  # and the shutdown ended them
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_an_idle_worker_whose_caller_is_gone_exits_on_the_signal(monkeypatch):
    """The SIGTERM a worker gets when its caller dies (``_stop_with_parent``) must still end an idle
    worker: no pool is left to shut it down."""
    import hlcli.compare.jobs as jobs

    exits: list[int] = []

    def exit_(code: int):
        exits.append(code)
        raise SystemExit(code)

    monkeypatch.setattr(jobs, "_STOPPED", None)
    monkeypatch.setattr(jobs, "_CALLER", os.getppid() + 1)  # not this process's parent: "the caller is gone"
    monkeypatch.setattr(jobs.os, "_exit", exit_)
    with pytest.raises(SystemExit):
        jobs._stop_between_runs(signal.SIGTERM, None)
    assert exits == [128 + signal.SIGTERM] and jobs._STOPPED is None
    monkeypatch.setattr(jobs, "_CALLER", os.getppid())
    monkeypatch.setattr(jobs, "_CALLER_GONE", True)  # the kernel said so (its parent may be a thread of the caller yet)
    with pytest.raises(SystemExit):
        jobs._stop_between_runs(signal.SIGTERM, None)
    assert exits == [128 + signal.SIGTERM] * 2 and jobs._STOPPED is None
    monkeypatch.setattr(jobs, "_CALLER_GONE", False)  # the caller is there: stay, and begin no run
    jobs._stop_between_runs(signal.SIGTERM, None)
    assert exits == [128 + signal.SIGTERM] * 2 and jobs._STOPPED == signal.SIGTERM


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")
def test_when_the_caller_is_killed_every_worker_saves_its_run_and_exits(tmp_path, tiny_t5, data_dir):
    """SIGKILL to ``hl compare`` (nothing of it runs again): the kernel tells its workers, each gets
    one SIGTERM (``_stop_with_parent``), saves checkpoints/last, releases the run's lock and exits
    instead of waiting for runs from a caller that is gone."""
    from _processes import hl_process, wait_until
    from hlcli import runs

    out, log = tmp_path / "cmp", tmp_path / "hl.log"
    process = hl_process("compare", "--recipe", SMOKE, "--model", tiny_t5, "--data-dir", data_dir, "--output-dir",
                         out, "--seeds", "1,2", "--methods", "hyperloader", "--jobs", "2", "--max-steps", 100_000,
                         log=log)  # fmt: skip
    run_dirs = lambda: sorted((out / "runs").glob("*"))  # noqa: E731
    saved = lambda: [runs.checkpoint_dir(r, runs.LAST) for r in run_dirs()]  # noqa: E731
    wait_until(lambda: len(saved()) == 2 and all(runs.is_checkpoint_dir(c) for c in saved()), process, log,
               "both workers' first checkpoints/last", timeout=240)  # fmt: skip
    workers = {int((r / runs.LOCK).read_text()) for r in run_dirs()}  # each trainer writes its id into the lock
    assert len(workers) == 2 and process.pid not in workers
    process.kill()
    process.wait()

    def gone(pid: int) -> bool:
        try:
            return Path(f"/proc/{pid}/status").read_text().count("State:\tZ") == 1  # a zombie: exited
        except FileNotFoundError:
            return True

    deadline = time.monotonic() + 120
    while not all(gone(pid) for pid in workers):
        assert time.monotonic() < deadline, f"workers {sorted(workers)} still running 120 s after their caller was killed"
        time.sleep(0.1)
    for run_dir in run_dirs():
        step = runs.checkpoint_step(runs.checkpoint_dir(run_dir, runs.LAST))
        assert f"interrupted (SIGTERM) at step {step}; checkpoints/last saved" in (run_dir / runs.TRAIN_LOG).read_text()
        assert not runs.trainer_of(run_dir)  # its lock released

