"""Concurrent use of one run folder: ``hl evaluate`` and two ``hl tag`` processes read it while
``hl train`` keeps rewriting its checkpoints; every reader works (none sees a half-written file).

Real processes: ``hl train`` (HyperLoader on a tiny random T5, real corpora) checkpointing at every
step, and the readers started through the real CLI entry point. The readers import the library
while the trainer starts up and only run once a checkpoint exists, so the test costs about one
process start-up more than a single run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import hlcli.evaluation
from hlcli import runs

pytestmark = [pytest.mark.slow, pytest.mark.skipif(os.name != "posix", reason="SIGINT to a child process")]

# Import everything first, wait for the checkpoint, then run the command exactly as `hl` would.
READER = """
import sys, time
from pathlib import Path
import hlcli.cli, hlcli.evaluation, hlcli.tagging, hlcli.methods, hlcli.checkpoint
ready = Path(sys.argv[1])
deadline = time.monotonic() + 300
while not ready.exists() and time.monotonic() < deadline:
    time.sleep(0.02)
sys.argv = ["hl", *sys.argv[2:]]
hlcli.cli.main()
"""



def spawn(argv: list, log: Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TQDM_DISABLE": "1"}
    with open(log, "wb") as stream:
        return subprocess.Popen([sys.executable, *map(str, argv)], stdout=stream, stderr=subprocess.STDOUT, env=env)


def step_of(run: Path) -> int:
    try:
        return json.loads((runs.checkpoint_dir(run, "last") / runs.TRAINER_STATE).read_text())["step"]
    except (OSError, ValueError, KeyError):
        return 0


def test_evaluate_and_two_taggers_read_a_run_while_it_trains(tmp_path, tiny_t5, data_dir):
    run = tmp_path / "run"
    ready = runs.checkpoint_dir(run, "best") / runs.MODEL_WEIGHTS
    text = "show me flights from boston to denver\n\n  \t \nlist 🛫 flights to Tel Aviv\n" * 5
    (tmp_path / "input.txt").write_text(text, encoding="utf-8")
    trainer = spawn(["-m", "hlcli", "train", "--tasks", "atis,restaurant", "--fraction", "0.003", "--batch-size", "4",
                     "--set", "reduction_factor=4", "--no-progress", "--model", tiny_t5, "--data-dir", data_dir,
                     "--max-steps", 100000, "--eval-every", 1, "--checkpoint-every", 1, "--output-dir", run],
                    tmp_path / "train.log")  # fmt: skip
    readers = {
        "evaluate": ["evaluate", run, "--split", "val", "--data-dir", data_dir, "--output", tmp_path / "scores.json"],
        "tag-1": ["tag", "--run", run, "--task", "atis", "--input", tmp_path / "input.txt", "-o", tmp_path / "tag-1.txt"],
        "tag-2": ["tag", "--run", run, "--task", "atis", "--input", tmp_path / "input.txt", "--format", "jsonl",
                  "-o", tmp_path / "tag-2.jsonl"],
    }  # fmt: skip
    processes = {name: spawn(["-c", READER, ready, *argv], tmp_path / f"{name}.log") for name, argv in readers.items()}
    try:
        deadline = time.monotonic() + 400
        while any(p.poll() is None for p in processes.values()) and time.monotonic() < deadline:
            assert trainer.poll() is None, (tmp_path / "train.log").read_text()
            time.sleep(0.05)
        first_step = step_of(run)
        for name, process in processes.items():
            assert process.wait(timeout=5) == 0, f"{name}:\n{(tmp_path / f'{name}.log').read_text()}"
        # The trainer was still writing checkpoints when the readers finished.
        deadline = time.monotonic() + 60
        while step_of(run) <= first_step and time.monotonic() < deadline:
            time.sleep(0.05)
        assert step_of(run) > first_step and trainer.poll() is None
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
        trainer.send_signal(signal.SIGINT)  # Ctrl-C: save checkpoints/last and exit 130
        code = trainer.wait(timeout=120)
    assert code == 130, (tmp_path / "train.log").read_text()

    lines = text.count("\n")
    assert len((tmp_path / "tag-1.txt").read_text(encoding="utf-8").split("\n")) == lines + 1
    records = [json.loads(line) for line in (tmp_path / "tag-2.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(records) == lines and [len(r["tags"]) for r in records[:4]] == [7, 0, 0, 6]
    scores = json.loads((tmp_path / "scores.json").read_text())
    assert set(scores["tasks"]) == {"atis", "restaurant"}
    assert runs.is_checkpoint_dir(runs.checkpoint_dir(run, "last"))
    assert not list((run / "checkpoints").glob(".*.tmp"))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork (POSIX)")
def test_two_evaluations_merging_into_one_eval_json_keep_both_splits(tmp_path, monkeypatch):
    """Each process merges its own splits 15 times with a pause between read and write (the window
    in which, unlocked, the other's split was overwritten); every split must survive."""
    path = tmp_path / "eval.json"
    real_read = hlcli.evaluation._read_scores

    def slow_read(p):
        scores = real_read(p)
        time.sleep(0.005)
        return scores

    monkeypatch.setattr(hlcli.evaluation, "_read_scores", slow_read)
    children = []
    for name in ("val", "test"):
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                for i in range(15):
                    hlcli.evaluation._merge_scores(path, f"{name}{i}", {"f1": i})
                code = 0
            finally:
                os._exit(code)
        children.append(pid)
    for pid in children:
        assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
    assert sorted(json.loads(path.read_text())) == sorted(f"{n}{i}" for n in ("val", "test") for i in range(15))
