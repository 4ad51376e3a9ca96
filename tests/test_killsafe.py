"""Kill-safe training: SIGKILL at any moment, ``hl train --resume``, and the weights are bitwise those
of an uninterrupted run; a half-written checkpoint is never read.

The end-to-end test runs the real ``python -m hlcli train`` (HyperLoader on a tiny random T5, real
corpora) in subprocesses and kills them for real. The swap inside :func:`hlcli.io.atomic_dir` is
checked at every single step with forked children that die (``os._exit``) in the middle of it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import hlcli.io
from _processes import hl_process as hl
from _processes import wait_until
from _toy_data import one_torch_thread
from hlcli import runs
from hlcli.config import TrainConfig
from hlcli.io import atomic_dir, clean_stale, complete_dir
from hlcli.training import resume_config, train

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork and SIGKILL (POSIX)")


# -- atomic_dir: die at every step of a checkpoint write ----------------------------------------------
def _fill(folder: Path, version: str) -> None:
    for name in ("model.safetensors", "config.json", "trainer_state.json"):
        (folder / name).write_text(version)


def _contents(folder: Path) -> set[str]:
    """The versions found in a folder's three files: one version if the folder is complete."""
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["config.json", "model.safetensors", "trainer_state.json"], names
    return {(folder / name).read_text() for name in names}


def _die_at(event: int, target: Path, monkeypatch) -> int:
    """In a forked child, rewrite ``target`` with atomic_dir and os._exit at its ``event``-th file-system step."""
    pid = os.fork()
    if pid:
        return os.waitpid(pid, 0)[1]
    count = [0]

    def step(real):
        def wrapped(*args, **kwargs):
            count[0] += 1
            if count[0] == event:
                os._exit(9)  # like SIGKILL: no finally, no cleanup
            result = real(*args, **kwargs)
            count[0] += 1
            if count[0] == event:
                os._exit(9)
            return result

        return wrapped

    try:
        for module, name in ((hlcli.io.os, "replace"), (hlcli.io.shutil, "rmtree"), (hlcli.io, "_fsync_dir"), (hlcli.io, "_exchange")):
            monkeypatch.setattr(module, name, step(getattr(module, name)))
        with atomic_dir(target) as tmp:
            for name in ("model.safetensors", "config.json", "trainer_state.json"):
                step(lambda: (tmp / name).write_text("new"))()
    finally:
        os._exit(0)


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2-exchange", "two-renames"])
def test_a_kill_at_any_step_of_a_checkpoint_swap_leaves_a_complete_checkpoint(tmp_path, monkeypatch, exchange):
    if not exchange:
        monkeypatch.setattr(hlcli.io, "_exchange", lambda a, b: False)
    seen_old_name = False
    for event in range(1, 40):
        root = tmp_path / str(event)
        target = root / "checkpoints" / "last"
        target.mkdir(parents=True)
        _fill(target, "old")
        status = os.waitstatus_to_exitcode(_die_at(event, target, monkeypatch))
        # What a reader (hl evaluate / hl tag) sees at this moment: one complete version.
        found = complete_dir(target)
        seen_old_name |= found.name == ".last.old"
        assert _contents(found) in ({"old"}, {"new"}), (event, sorted(os.listdir(target.parent)))
        # What --resume does first: repair, then the one complete folder is ``last``, and nothing else.
        clean_stale(target)
        assert sorted(os.listdir(target.parent)) == ["last"], event
        assert _contents(target) in ({"old"}, {"new"})
        if status == 0:  # the write ran to the end without meeting the kill
            assert _contents(target) == {"new"}
            break
    else:
        pytest.fail("the write never finished")
    assert event > 6
    assert seen_old_name == (not exchange)  # the two-renames swap does have the window; readers cover it


def test_runs_resolve_the_old_folder_while_last_is_missing(tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints" / ".last.old").mkdir(parents=True)
    (run / "checkpoints" / ".last.old" / "model.safetensors").write_text("x")
    (run / "checkpoints" / ".last.1234.tmp").mkdir()  # half-written: never picked up
    (run / "config.json").write_text("{}")
    assert runs.resolve_checkpoint(run) == (run / "checkpoints" / ".last.old", run)
    runs.repair_checkpoints(run)
    assert sorted(os.listdir(run / "checkpoints")) == ["last"]
    assert runs.resolve_checkpoint(run) == (run / "checkpoints" / "last", run)


def test_a_kill_while_checkpoint_weights_are_written_leaves_nothing_repair_cannot_remove(tmp_path, monkeypatch, tiny_t5, data_dir):
    """Snapshot ``checkpoints/`` right after every tensors file of a real run is written (a kill at that
    moment), then repair the snapshot as ``--resume`` does: only ``best`` and ``last`` may remain."""
    import hlcli.checkpoint

    snapshots: list[Path] = []

    def snapshot_after(real):
        def save_file(tensors, filename, **kwargs):
            real(tensors, filename, **kwargs)
            snapshot = tmp_path / "snapshots" / str(len(snapshots))
            shutil.copytree(tmp_path / "run" / "checkpoints", snapshot / "checkpoints")
            snapshots.append(snapshot)

        return save_file

    monkeypatch.setattr(hlcli.checkpoint, "save_file", snapshot_after(hlcli.checkpoint.save_file))
    config = TrainConfig(tasks=["atis"], model=tiny_t5, data_dir=str(data_dir), fraction=0.002, batch_size=4, max_steps=2,
                         eval_every=2, checkpoint_every=2, log_every=1, output_dir=str(tmp_path / "run"))  # fmt: skip
    with one_torch_thread():
        train(config)
    assert len(snapshots) >= 4  # model, optimizer and RNG tensors of last/, model of best/
    for snapshot in snapshots:
        runs.repair_checkpoints(snapshot)
        assert set(os.listdir(snapshot / "checkpoints")) <= {"best", "last"}, snapshot


# -- a run killed before its first checkpoint (in-process) ---------------------------------------------
def test_resume_of_a_run_killed_before_its_first_checkpoint_starts_over_identically(tmp_path, tiny_t5, toy_tasks):
    def config(name: str) -> TrainConfig:
        return TrainConfig(tasks=toy_tasks("flights", "music"), model=tiny_t5, max_steps=4, batch_size=8, lr=3e-3,
                           warmup_steps=1, eval_every=2, checkpoint_every=2, log_every=1,
                           method_overrides={"reduction_factor": 4}, output_dir=str(tmp_path / name))  # fmt: skip

    with one_torch_thread():
        train(config("straight"))
        # What a kill during step 1 leaves: the config, a log line, a metrics line cut short.
        killed = tmp_path / "killed"
        killed.mkdir()
        shutil.copy(tmp_path / "straight" / "config.json", killed / "config.json")
        (killed / "metrics.jsonl").write_text('{"step": 1, "loss": 2.0, "lr": 0.1}\n{"step": 2, "lo')
        (killed / "checkpoints").mkdir()
        (killed / "checkpoints" / ".last.abc.tmp").mkdir()
        cfg = resume_config(killed)
        cfg.output_dir = str(killed)  # the copied config names the straight run's folder
        train(cfg, resume=True)
    for name in ("model.safetensors", "optimizer.safetensors"):
        a = load_file(str(tmp_path / "straight" / "checkpoints" / "last" / name))
        b = load_file(str(killed / "checkpoints" / "last" / name))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name
    assert sorted(os.listdir(killed / "checkpoints")) == ["best", "last"]
    steps = [json.loads(line)["step"] for line in (killed / "metrics.jsonl").read_text().splitlines()]
    assert steps == [json.loads(line)["step"] for line in (tmp_path / "straight" / "metrics.jsonl").read_text().splitlines()]


# -- the real thing: python -m hlcli train, SIGKILL, --resume --------------------------------------------

def finish(process: subprocess.Popen, log: Path, code: int = 0) -> None:
    assert process.wait(timeout=300) == code, log.read_text(errors="replace")


def half_written_last(run: Path) -> bool:
    return any((tmp / "model.safetensors").is_file() for tmp in (run / "checkpoints").glob(".last.*.tmp"))


# ~13 ATIS and ~21 MIT Restaurant training sentences; T5 dropout on, so the RNG must be restored too.
REAL = ["--tasks", "atis,restaurant", "--fraction", "0.003", "--batch-size", "4", "--lr", "3e-3", "--warmup-steps", "2",
        "--set", "reduction_factor=4", "--no-progress", "--max-steps", "8", "--eval-every", "3", "--checkpoint-every", "2"]  # fmt: skip


# ``hl train`` pausing 60 s in the middle of every checkpoints/last write (weights written, trainer state
# not yet), through the test hook of hlcli.training.checkpoints: a SIGKILL then leaves last/ half-written.
PAUSE_IN_LAST = """
import sys, time
from hlcli.training import checkpoints
checkpoints.between_files = lambda folder: time.sleep(60) if folder.name == "last" else None
from hlcli.cli import app
app(sys.argv[1:], prog_name="hl")
"""


@pytest.mark.slow
def test_sigkill_mid_step_and_mid_checkpoint_then_resume_is_bitwise_identical(tmp_path, tiny_t5, data_dir):
    args = ["train", *REAL, "--model", tiny_t5, "--data-dir", data_dir]
    straight, split = tmp_path / "straight", tmp_path / "split"
    # Both at once: the machine has (at least) two cores and each process uses one thread.
    reference = hl(*args, "--output-dir", straight, log=tmp_path / "straight.log")
    first = hl(*args, "--output-dir", split, log=tmp_path / "first.log")

    # Kill 1: right after step 3's evaluation is logged (best/ being written, or step 4 under way).
    wait_until(lambda: "eval step 3:" in _text(split / "train.log"), first, tmp_path / "first.log", "step 3")
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert runs.is_checkpoint_dir(runs.checkpoint_dir(split, "last"))

    # Kill 2: while checkpoints/last is half-written (step 4: weights written, trainer state not yet).
    second = hl("train", "--resume", split, "--no-progress", python_args=("-c", PAUSE_IN_LAST), log=tmp_path / "second.log")
    wait_until(lambda: half_written_last(split), second, tmp_path / "second.log", "a half-written checkpoints/last")
    second.send_signal(signal.SIGKILL)
    second.wait()
    assert half_written_last(split)
    # A reader never picks the half-written folder: last/ is still the complete step-2 checkpoint.
    checkpoint, _ = runs.resolve_checkpoint(split)
    assert checkpoint.name in ("best", "last")
    assert json.loads((runs.checkpoint_dir(split, "last") / "trainer_state.json").read_text())["step"] == 2

    third = hl("train", "--resume", split, "--no-progress", log=tmp_path / "third.log")
    finish(reference, tmp_path / "straight.log")
    finish(third, tmp_path / "third.log")
    assert "resumed" in (tmp_path / "third.log").read_text() and "trained 8 steps" in (tmp_path / "third.log").read_text()
    assert not half_written_last(split) and sorted(os.listdir(split / "checkpoints")) == ["best", "last"]
    for which in ("last", "best"):
        for name in ("model.safetensors", "optimizer.safetensors", "rng.safetensors"):
            a = load_file(str(runs.checkpoint_dir(straight, which) / name))
            b = load_file(str(runs.checkpoint_dir(split, which) / name))
            assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), (which, name)
    steps = lambda run: [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]  # noqa: E731
    assert steps(split) == steps(straight)


def _text(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""
