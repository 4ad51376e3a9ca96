"""Temperature task sampling: the formula, determinism, epochs and exact resume."""

from __future__ import annotations

import json
import math
from collections import Counter

import pytest

from hlcli.sampler import TaskSampler, task_probabilities

SIZES = {"big": 4000, "mid": 400, "small": 40}


def test_probabilities_follow_the_temperature_formula():
    p = task_probabilities(SIZES, 10.0)
    total = sum(SIZES.values())
    raw = {t: (n / total) ** 0.1 for t, n in SIZES.items()}
    for task in SIZES:
        assert p[task] == pytest.approx(raw[task] / sum(raw.values()))
    assert sum(p.values()) == pytest.approx(1.0)
    # T = 1 is proportional sampling; a huge T tends to uniform.
    assert task_probabilities(SIZES, 1.0)["small"] == pytest.approx(40 / total)
    assert task_probabilities(SIZES, 1e9)["small"] == pytest.approx(1 / 3, rel=1e-6)


def test_empirical_task_frequencies_match_the_formula():
    draws = 20000
    sampler = TaskSampler(SIZES, batch_size=4, temperature=10.0, seed=7)
    counts = Counter(next(sampler)[0] for _ in range(draws))
    for task, p in task_probabilities(SIZES, 10.0).items():
        sigma = math.sqrt(p * (1 - p) / draws)
        assert abs(counts[task] / draws - p) < 5 * sigma, (task, counts[task] / draws, p)


def test_same_seed_same_batches_other_seed_other_batches():
    s1, s2, s3 = (TaskSampler(SIZES, batch_size=8, seed=s) for s in (1, 1, 2))
    first = [next(s1) for _ in range(200)]
    assert first == [next(s2) for _ in range(200)]
    assert first != [next(s3) for _ in range(200)]


def test_each_batch_is_one_task_and_each_epoch_visits_every_example_once():
    sampler = TaskSampler({"only": 10}, batch_size=4, seed=0)
    seen = [i for _ in range(5) for i in next(sampler)[1]]  # 20 indices = 2 epochs
    assert sorted(seen[:10]) == list(range(10)) and sorted(seen[10:]) == list(range(10))
    assert seen[:10] != seen[10:]  # reshuffled between epochs


def test_batch_larger_than_the_task_wraps_into_the_next_epoch():
    sampler = TaskSampler({"tiny": 3}, batch_size=7, seed=0)
    task, indices = next(sampler)
    assert task == "tiny" and len(indices) == 7 and set(indices) == {0, 1, 2}


def test_resume_from_json_state_continues_exactly():
    uninterrupted = TaskSampler(SIZES, batch_size=16, seed=3)
    expected = [next(uninterrupted) for _ in range(300)]

    first = TaskSampler(SIZES, batch_size=16, seed=3)
    got = [next(first) for _ in range(137)]
    state = json.loads(json.dumps(first.state_dict()))  # plain JSON round trip, no pickle
    second = TaskSampler(SIZES, batch_size=16, seed=3)
    second.load_state_dict(state)
    got += [next(second) for _ in range(163)]
    assert got == expected


def test_state_for_other_task_sizes_is_refused():
    state = TaskSampler(SIZES, batch_size=4).state_dict()
    with pytest.raises(ValueError, match="task sizes"):
        TaskSampler({"big": 1}, batch_size=4).load_state_dict(state)


def test_empty_task_is_refused():
    with pytest.raises(ValueError, match="without training examples"):
        TaskSampler({"a": 3, "b": 0}, batch_size=2)
