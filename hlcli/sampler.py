"""Temperature-based multi-task batch sampling (HyperFormer++ / HyperLoader).

Every batch holds sentences of one task. The task is drawn with probability
``p_t ∝ (N_t / N) ** (1 / T)`` where ``N_t`` is the task's training-set size, ``N`` the total and
``T`` the temperature (10 in the papers): T = 1 samples proportionally to size, large T tends to
uniform, so small corpora are not drowned by big ones.

Within a task, sentences come from a shuffled order that is reshuffled at each of that task's
epochs. The order of epoch ``e`` is a pure function of ``(seed, task, e)``, so the whole sampler
state is a few integers plus the task-drawing RNG state: :meth:`TaskSampler.state_dict` is plain
JSON and ``--resume`` continues exactly where the run stopped.

With ``lengths`` (each sentence's cost in a padded batch: its tokens) the epoch order is *grouped
by length*: the shuffled order is cut into pools of ``pool_batches`` batches, each pool is sorted
by length and cut into batches, and the batches of the whole epoch are shuffled (Hugging Face's
``group_by_length`` does the same). Every sentence is still seen once per epoch and batches still
come in random order, but a batch holds sentences of similar length, so it carries far less
padding. Still a pure function of ``(seed, task, epoch)``.

Data-parallel training (``num_shards`` processes) keeps one sampler per process, all with the same
seed: every process draws the same task at each step and walks the same shuffled order, and each
step consumes ``num_shards × batch_size`` sentences of it, of which process ``shard`` takes the
``shard``-th slice (like ``DistributedSampler``). A step is thus one task's batch of
``num_shards × batch_size`` distinct sentences, and the state is identical on every process.
"""

from __future__ import annotations

import random
from typing import Any, Mapping, Sequence


def task_probabilities(sizes: Mapping[str, int], temperature: float) -> dict[str, float]:
    """``p_t = (N_t/N)^(1/T) / Σ_u (N_u/N)^(1/T)`` for each task (in ``sizes`` order)."""
    total = sum(sizes.values())
    weights = {task: (n / total) ** (1.0 / temperature) for task, n in sizes.items()}
    norm = sum(weights.values())
    return {task: w / norm for task, w in weights.items()}


class TaskSampler:
    """Yields ``(task, indices)``: one task's batch of example indices into that task's list."""

    def __init__(
        self,
        sizes: Mapping[str, int],
        *,
        batch_size: int,
        temperature: float = 10.0,
        seed: int = 42,
        num_shards: int = 1,
        shard: int = 0,
        lengths: Mapping[str, Sequence[int]] | None = None,
        pool_batches: int = 50,
    ) -> None:
        if not 0 <= shard < num_shards:
            raise ValueError(f"shard {shard} is not in [0, {num_shards})")
        empty = [task for task, n in sizes.items() if n < 1]
        if empty:
            raise ValueError(f"tasks without training examples: {empty}")
        self.sizes = dict(sizes)
        if lengths is not None:
            wrong = [task for task in self.sizes if len(lengths.get(task, ())) != self.sizes[task]]
            if wrong:
                raise ValueError(f"lengths do not match the task sizes for {wrong}")
        self.lengths = {task: list(lengths[task]) for task in self.sizes} if lengths is not None else None
        self.pool_batches = pool_batches
        self.tasks = list(self.sizes)
        self.batch_size = batch_size
        self.seed = seed
        self.num_shards, self.shard = num_shards, shard
        probabilities = task_probabilities(self.sizes, temperature)
        self.weights = [probabilities[task] for task in self.tasks]
        self._draws = 0
        self._epoch = {task: 0 for task in self.tasks}
        self._position = {task: 0 for task in self.tasks}
        self._order = {task: self._shuffled(task, 0) for task in self.tasks}

    def _shuffled(self, task: str, epoch: int) -> list[int]:
        # A string seed is hashed with SHA-512 by `random`, so the order is stable across processes.
        order = list(range(self.sizes[task]))
        rng = random.Random(f"{self.seed}:{task}:{epoch}")
        rng.shuffle(order)
        if self.lengths is None:
            return order
        length, wanted = self.lengths[task], self.batch_size * self.num_shards
        pool = wanted * self.pool_batches
        batches = []
        for start in range(0, len(order), pool):
            grouped = sorted(order[start : start + pool], key=lambda i: -length[i])  # stable: ties keep the shuffle
            batches += [grouped[b : b + wanted] for b in range(0, len(grouped), wanted)]
        rng.shuffle(batches)
        return [i for batch in batches for i in batch]

    def __iter__(self) -> TaskSampler:
        return self

    def __next__(self) -> tuple[str, list[int]]:
        task = random.Random(f"{self.seed}:draw:{self._draws}").choices(self.tasks, weights=self.weights)[0]
        self._draws += 1
        indices: list[int] = []
        wanted = self.batch_size * self.num_shards
        while len(indices) < wanted:
            order, position = self._order[task], self._position[task]
            take = order[position : position + wanted - len(indices)]
            indices.extend(take)
            self._position[task] = position + len(take)
            if self._position[task] == len(order):
                # End of this task's epoch: reshuffle (a batch may straddle two epochs).
                self._epoch[task] += 1
                self._position[task] = 0
                self._order[task] = self._shuffled(task, self._epoch[task])
        return task, indices[self.shard * self.batch_size : (self.shard + 1) * self.batch_size]

    def state_dict(self) -> dict[str, Any]:
        return {
            "sizes": dict(self.sizes),
            "group_by_length": self.lengths is not None,
            "draws": self._draws,
            "epoch": dict(self._epoch),
            "position": dict(self._position),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if dict(state["sizes"]) != self.sizes:
            raise ValueError(f"sampler state is for task sizes {state['sizes']}, not {self.sizes}")
        if bool(state.get("group_by_length", False)) != (self.lengths is not None):
            saved = state.get("group_by_length", False)
            raise ValueError(f"sampler state has group_by_length={saved}, this sampler not")
        self._draws = int(state["draws"])
        self._epoch = {task: int(state["epoch"][task]) for task in self.tasks}
        self._position = {task: int(state["position"][task]) for task in self.tasks}
        self._order = {task: self._shuffled(task, self._epoch[task]) for task in self.tasks}
