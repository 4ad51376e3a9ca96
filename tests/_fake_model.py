"""A tiny, really-learning TaggingModel and toy corpora for the loop/CLI tests (no T5, no corpora).

``FakeTagger`` labels each word from hashed embeddings of the word and its neighbours with a
per-task linear layer (plus dropout, so that resuming must restore the RNG to be exact).
``use_fake(monkeypatch)`` routes hlcli's model building, checkpointing and data loading to it.
"""

from __future__ import annotations

import contextlib
import json
import random
import zlib
from pathlib import Path
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from hlcli.data.example import Example
from hlcli.methods.base import TaggingModel, TaskSpec


class FakeTagger(TaggingModel):
    method = "fake"

    def __init__(self, tasks: Sequence[TaskSpec], *, dim: int = 32, buckets: int = 512) -> None:
        super().__init__(tasks)
        self.dim, self.buckets = dim, buckets
        self.labels = {t.name: ["O"] + [f"{p}-{ty}" for ty in t.types for p in "BI"] for t in self.tasks}
        self.embed = nn.Embedding(buckets + 1, dim, padding_idx=buckets)
        self.dropout = nn.Dropout(0.1)
        self.heads = nn.ModuleDict({t.name: nn.Linear(3 * dim, len(self.labels[t.name])) for t in self.tasks})
        self.train_loss_calls = 0
        self.hook = None  # test hook: called as hook(model, calls) on each training loss

    def _ids(self, sentences: Sequence[Sequence[str]]) -> torch.Tensor:
        width = max(len(s) for s in sentences)
        ids = torch.full((len(sentences), width), self.buckets, dtype=torch.long)
        for i, sentence in enumerate(sentences):
            for j, word in enumerate(sentence):
                ids[i, j] = zlib.crc32(word.lower().encode()) % self.buckets
        return ids

    def _logits(self, task: str, ids: torch.Tensor) -> torch.Tensor:
        e = self.dropout(self.embed(ids))
        pad = torch.zeros_like(e[:, :1])
        context = torch.cat([torch.cat([pad, e[:, :-1]], 1), e, torch.cat([e[:, 1:], pad], 1)], -1)
        return self.heads[task](context)

    def collate(self, task: str, examples: Sequence[Example]) -> dict[str, Any]:
        ids = self._ids([e.tokens for e in examples])
        labels = torch.full(ids.shape, -100, dtype=torch.long)
        index = {label: i for i, label in enumerate(self.labels[task])}
        for i, e in enumerate(examples):
            labels[i, : len(e.tags)] = torch.tensor([index[t] for t in e.tags])
        return {"ids": ids, "labels": labels}

    def loss(self, task: str, batch: dict[str, Any], *, label_smoothing: float = 0.0) -> torch.Tensor:
        if self.training:
            self.train_loss_calls += 1
            if self.hook is not None:
                override = self.hook(self, self.train_loss_calls)
                if override is not None:
                    return override
        logits = self._logits(task, batch["ids"])
        return F.cross_entropy(
            logits.flatten(0, 1), batch["labels"].flatten(), ignore_index=-100, label_smoothing=label_smoothing
        )

    def predict(self, task: str, sentences: Sequence[Sequence[str]], *, batch_size: int = 32) -> list[list[str]]:
        out: list[list[str]] = []
        for start in range(0, len(sentences), batch_size):
            chunk = sentences[start : start + batch_size]
            best = self._logits(task, self._ids(chunk)).argmax(-1)
            out.extend([self.labels[task][k] for k in best[i, : len(s)].tolist()] for i, s in enumerate(chunk))
        return out


def build_fake(method: str, *, backbone: str, tasks: list[TaskSpec], overrides: dict | None = None) -> FakeTagger:
    return FakeTagger(tasks, **(overrides or {}))


def save_fake(model: FakeTagger, folder: Path, *, metrics: dict | None = None, extra: dict | None = None) -> None:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.trainable_state_dict().items()}, str(folder / "model.safetensors"))
    config = {"tasks": [{"name": t.name, "types": t.types} for t in model.tasks], "dim": model.dim, "buckets": model.buckets}
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "README.md").write_text(f"# fake tagger\n\n{json.dumps({'metrics': metrics, 'extra': extra})}\n")


def load_fake(folder: Path) -> FakeTagger:
    config = json.loads((Path(folder) / "config.json").read_text())
    model = FakeTagger([TaskSpec(**t) for t in config["tasks"]], dim=config["dim"], buckets=config["buckets"])
    model.load_state_dict(load_file(str(Path(folder) / "model.safetensors")), strict=False)
    return model


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


def toy_split(task: str, split: str, *, data_dir=None, fraction: float = 1.0, seed: int = 42, sources=None) -> list[Example]:
    if task not in ("flights", "music"):
        from hlcli.errors import unknown_name

        raise unknown_name("task", task, ["flights", "music"])
    sizes = {"train": {"flights": 96, "music": 32}[task], "val": 12, "test": 12}
    rng = random.Random(f"{task}:{split}")
    examples = [_sentence(task, rng) for _ in range(sizes[split])]
    if fraction < 1.0:
        keep = sorted(random.Random(seed).sample(range(len(examples)), max(1, round(fraction * len(examples)))))
        examples = [examples[i] for i in keep]
    return examples


def toy_label_types(examples: Sequence[Example]) -> list[str]:
    return sorted({tag[2:] for e in examples for tag in e.tags if tag != "O"})


@contextlib.contextmanager
def one_torch_thread():
    """Tiny models on a shared machine: intra-op threads only add contention (10x slower here)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def use_fake(monkeypatch) -> None:
    """Route hlcli's collaborators (model registry, checkpoint files, corpora) to the fakes."""
    import hlcli.evaluation
    import hlcli.training

    monkeypatch.setattr(hlcli.training, "build_model", build_fake)
    monkeypatch.setattr(hlcli.training, "method_config", lambda name, overrides=None: None)  # "fake" is not registered
    monkeypatch.setattr(hlcli.training, "write_model_files", save_fake)
    monkeypatch.setattr(hlcli.training, "load_split", toy_split)
    monkeypatch.setattr(hlcli.training, "label_types", toy_label_types)
    monkeypatch.setattr(hlcli.evaluation, "load_split", toy_split)
    monkeypatch.setattr(hlcli.evaluation, "load_model", load_fake)
