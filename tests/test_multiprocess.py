"""Data-parallel ``hl train``: 2 CPU processes (gloo) launched with torchrun on a tiny random T5."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
from safetensors.torch import load_file

from hlcli import runs
from hlcli.sampler import TaskSampler


def test_shards_split_the_single_process_batch():
    sizes = {"a": 7, "b": 30}
    whole = TaskSampler(sizes, batch_size=6, seed=3)
    shards = [TaskSampler(sizes, batch_size=3, seed=3, num_shards=2, shard=r) for r in range(2)]
    for _ in range(20):
        task, indices = next(whole)
        (task0, first), (task1, second) = next(shards[0]), next(shards[1])
        assert task0 == task1 == task and first + second == indices
    assert shards[0].state_dict() == shards[1].state_dict() == whole.state_dict()
    with pytest.raises(ValueError):
        TaskSampler(sizes, batch_size=3, num_shards=2, shard=2)


# Runs ``hl train`` in each process, recording (test-only spies) the batches each rank drew and a
# digest of its trainable weights at every checkpoint.
SPY = textwrap.dedent(
    """
    import hashlib, json, os, sys
    import hlcli.training.checkpoints as checkpoints
    from hlcli.cli import app
    from hlcli.sampler import TaskSampler

    log = open(os.path.join(sys.argv[1], f"rank{os.environ['RANK']}.jsonl"), "a")
    draw = TaskSampler.__next__
    def spy_next(self):
        task, indices = draw(self)
        log.write(json.dumps({"task": task, "indices": indices}) + "\\n")
        return task, indices
    save = checkpoints.save
    def spy_save(folder, tagger, *args):
        state = tagger.trainable_state_dict()
        digest = hashlib.sha256(b"".join(state[k].detach().numpy().tobytes() for k in sorted(state))).hexdigest()
        log.write(json.dumps({"checkpoint": folder.name, "digest": digest}) + "\\n")
        log.flush()
        return save(folder, tagger, *args)
    TaskSampler.__next__, checkpoints.save = spy_next, spy_save
    app(sys.argv[2:], prog_name="hl")
    """
)


def torchrun(tmp_path, spies, *args) -> subprocess.CompletedProcess:
    script = tmp_path / "spy.py"
    script.write_text(SPY)
    spies.mkdir(exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "ACCELERATE_USE_CPU": "1", "PYTHONPATH": os.pathsep.join(sys.path)}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               str(script), str(spies), "train", *map(str, args)]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)


def records(spies, rank: int) -> list[dict]:
    return [json.loads(line) for line in (spies / f"rank{rank}.jsonl").read_text().splitlines()]


# ~13 ATIS and ~21 MIT Restaurant training sentences; T5 dropout on, so the per-rank RNG matters.
# A constant schedule: a linear one depends on --max-steps, which the resumed run changes.
REAL = ["--tasks", "atis,restaurant", "--fraction", "0.003", "--batch-size", "2", "--lr", "3e-3", "--warmup-steps", "1",
        "--schedule", "constant", "--set", "reduction_factor=4", "--eval-every", "2", "--checkpoint-every", "2",
        "--no-progress"]  # fmt: skip


@pytest.mark.slow
def test_two_processes_train_in_lockstep_and_resume_exactly(tmp_path, tiny_t5, data_dir):
    """Ranks draw one task, disjoint sentences; weights stay identical; 2 steps + resume == 4 steps."""
    common = [*REAL, "--model", tiny_t5, "--data-dir", data_dir]
    whole, spies = tmp_path / "whole", tmp_path / "spies-whole"
    done = torchrun(tmp_path, spies, *common, "--max-steps", 4, "--output-dir", whole)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("trained 4 steps") >= 1

    ranks = [records(spies, 0), records(spies, 1)]
    batches = [[r for r in rank if "task" in r] for rank in ranks]
    assert len(batches[0]) == len(batches[1]) == 4
    for first, second in zip(*batches):
        assert first["task"] == second["task"] and not set(first["indices"]) & set(second["indices"])
    digests = [[(r["checkpoint"], r["digest"]) for r in rank if "digest" in r] for rank in ranks]
    assert digests[0] == digests[1] and len(digests[0]) >= 2  # identical weights on both ranks at every save
    assert len({d for _, d in digests[0]}) > 1  # and they did train

    log = (whole / runs.TRAIN_LOG).read_text()
    assert "data-parallel over 2 processes" in log and log.count("step 4 loss") == 1  # rank 0 alone writes
    steps = [json.loads(line)["step"] for line in (whole / runs.METRICS).read_text().splitlines()]
    assert steps == sorted(steps) and steps.count(4) == 2  # one loss record, one eval record
    assert json.loads((runs.checkpoint_dir(whole, runs.LAST) / runs.TRAINER_STATE).read_text())["step"] == 4

    split, spies = tmp_path / "split", tmp_path / "spies-split"
    done = torchrun(tmp_path, spies, *common, "--max-steps", 2, "--output-dir", split)
    assert done.returncode == 0, done.stderr[-3000:]
    done = torchrun(tmp_path, spies, "--resume", split, "--max-steps", 4)
    assert done.returncode == 0, done.stderr[-3000:]
    expected = load_file(str(runs.checkpoint_dir(whole, runs.LAST) / runs.MODEL_WEIGHTS))
    resumed = load_file(str(runs.checkpoint_dir(split, runs.LAST) / runs.MODEL_WEIGHTS))
    assert expected.keys() == resumed.keys()
    assert all(expected[k].equal(resumed[k]) for k in expected)
