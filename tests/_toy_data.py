"""Toy corpora for tests on real parts, and a one-thread guard for tiny models.

The toy corpora (flights: from/to cities; music: artist/service) are written as CoNLL folders by
conftest's ``toy_tasks`` and read through hlcli's own-data readers, for runs of conftest's tiny T5
(``tiny_run`` flags); ``tests/_faults.py`` injects a Ctrl-C or a non-finite loss into such a run
at an exact call. (The fake tagger that once lived here, in ``_fake_model.py``, replaced model building, checkpoint files
and data loading; every test now runs the real ones.)
"""

from __future__ import annotations

import contextlib
import random

import torch

from hlcli.data.example import Example

# -- toy corpora -----------------------------------------------------------------------------------
CITIES = ["boston", "denver", "paris", "new york", "san francisco", "tokyo", "lima", "oslo"]
ARTISTS = ["adele", "the beatles", "miles davis", "nina simone", "queen", "bjork"]


def _sentence(task: str, rng: random.Random) -> Example:
    def span(words: str, kind: str) -> list[tuple[str, str]]:
        parts = words.split()
        return [(parts[0], f"B-{kind}")] + [(w, f"I-{kind}") for w in parts[1:]]

    if task == "flights":
        pieces = [("show", "O"), ("flights", "O"), ("from", "O"), *span(rng.choice(CITIES), "from"), ("to", "O"), *span(rng.choice(CITIES), "to")]
    else:
        pieces = [("play", "O"), ("something", "O"), ("by", "O"), *span(rng.choice(ARTISTS), "artist")]
        if rng.random() < 0.5:
            pieces += [("on", "O"), *span(rng.choice(["spotify", "deezer", "youtube music"]), "service")]
    return Example(task, tuple(w for w, _ in pieces), tuple(t for _, t in pieces))


def toy_split(task: str, split: str) -> list[Example]:
    """The ``split`` of toy ``task`` ("flights": 96/12/12 sentences, "music": 32/12/12), the same every call."""
    if task not in ("flights", "music"):
        raise ValueError(f"no toy corpus {task!r} (flights, music)")
    sizes = {"train": {"flights": 96, "music": 32}[task], "val": 12, "test": 12}
    rng = random.Random(f"{task}:{split}")
    return [_sentence(task, rng) for _ in range(sizes[split])]


@contextlib.contextmanager
def one_torch_thread():
    """Tiny models on a shared machine: intra-op threads only add contention (10x slower here)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
