"""Temperature task sampling: the formula, determinism, epochs and exact resume."""

from __future__ import annotations

import json
import math
import random
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


def _lengths(n: int, seed: int = 0) -> list[int]:
    rng = random.Random(seed)
    return [rng.randint(1, 40) for _ in range(n)]


def test_grouped_by_length_batches_hold_similar_lengths_and_every_sentence_once_per_epoch():
    sizes = {"a": 1000, "b": 300}
    lengths = {"a": _lengths(1000), "b": _lengths(300, 1)}
    plain = TaskSampler(sizes, batch_size=10, seed=5)
    grouped = TaskSampler(sizes, batch_size=10, seed=5, lengths=lengths, pool_batches=20)

    def spread(sampler) -> float:
        batches = [next(sampler) for _ in range(100)]
        return sum(max(lengths[t][i] for i in b) - min(lengths[t][i] for i in b) for t, b in batches) / len(batches)

    assert spread(grouped) < spread(plain) / 4  # the padding a batch carries is set by this spread
    only = TaskSampler({"a": 1000}, batch_size=10, seed=5, lengths={"a": lengths["a"]}, pool_batches=20)
    epoch = [i for _ in range(100) for i in next(only)[1]]
    assert sorted(epoch) == list(range(1000))
    firsts = [epoch[k] for k in range(0, 1000, 10)]
    assert [lengths["a"][i] for i in firsts] != sorted((lengths["a"][i] for i in firsts), reverse=True)  # batches shuffled


def test_grouped_sampler_resumes_exactly_and_refuses_a_plain_state():
    lengths = {"a": _lengths(1000), "b": _lengths(300, 1)}
    make = lambda: TaskSampler(SIZES_AB, batch_size=16, seed=3, lengths=lengths)  # noqa: E731
    uninterrupted = make()
    expected = [next(uninterrupted) for _ in range(200)]
    first = make()
    got = [next(first) for _ in range(77)]
    second = make()
    second.load_state_dict(json.loads(json.dumps(first.state_dict())))
    got += [next(second) for _ in range(123)]
    assert got == expected
    with pytest.raises(ValueError, match="group_by_length"):
        TaskSampler(SIZES_AB, batch_size=16, seed=3).load_state_dict(first.state_dict())
    with pytest.raises(ValueError, match="lengths do not match"):
        TaskSampler(SIZES_AB, batch_size=16, lengths={"a": [1], "b": [1]})


SIZES_AB = {"a": 1000, "b": 300}
