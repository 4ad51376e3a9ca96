"""What the training loop, ``hl evaluate`` and ``hl tag`` need from any method.

Every method (``hyperloader``, ``hyperformer``, ``hyperdecoder``, ``unipelt``, ablations) builds a
:class:`TaggingModel`. The loop never looks inside: it asks the model to turn examples of one
task into a batch, to compute a loss on it, and to predict BIO tags for sentences.
"""

from __future__ import annotations

import abc
import contextlib
from dataclasses import dataclass, field
from typing import Any, Sequence

import torch
from torch import nn

from hlcli.data.example import Example


@dataclass
class TaskSpec:
    """One task the model serves: its name and the entity types it can label (sorted)."""

    name: str
    types: list[str] = field(default_factory=list)


class TaggingModel(nn.Module, abc.ABC):
    """A multi-task sequence labeller.

    Subclasses hold a backbone (frozen or not) and whatever the method adds. ``tasks`` is the
    ordered task list; its order fixes task ids (and so task-embedding rows) and must never
    change after construction.
    """

    method: str = ""
    # What a checkpoint stores when that is not just the trainable tensors: ``hl adapt``
    # freezes most of a model whose checkpoints must still load as the method's own.
    checkpoint_names: frozenset[str] | None = None

    def __init__(self, tasks: Sequence[TaskSpec]) -> None:
        super().__init__()
        self.tasks: list[TaskSpec] = list(tasks)
        self.task_index: dict[str, int] = {t.name: i for i, t in enumerate(self.tasks)}

    # -- training ------------------------------------------------------------------------------
    @abc.abstractmethod
    def collate(self, task: str, examples: Sequence[Example]) -> dict[str, Any]:
        """Tokenize one task's examples into a batch of tensors (CPU; the loop moves it)."""

    @abc.abstractmethod
    def loss(
        self, task: str, batch: dict[str, Any], *, label_smoothing: float = 0.0, reduction: str = "mean"
    ) -> torch.Tensor:
        """Scalar training loss of a batch produced by :meth:`collate` for ``task``: the mean
        (``reduction="mean"``) or the sum (``"sum"``, TrainConfig.loss_reduction) of its token losses."""

    def lengths(self, task: str, examples: Sequence[Example]) -> list[int]:
        """What each example weighs in a padded batch, for ``group_by_length`` (default: words)."""
        return [len(example.tokens) for example in examples]

    # -- inference -----------------------------------------------------------------------------
    @abc.abstractmethod
    def predict(self, task: str, sentences: Sequence[Sequence[str]], *, batch_size: int = 32) -> list[list[str]]:
        """BIO tags (``B-X``/``I-X``/``O``), exactly one per word of each sentence."""

    @contextlib.contextmanager
    def evaluating(self):
        """Eval mode (no dropout) for the block, then back to whatever mode the model was in:
        validation runs in the middle of training."""
        was_training = self.training
        self.eval()
        try:
            yield
        finally:
            self.train(was_training)

    # -- bookkeeping ---------------------------------------------------------------------------
    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        """Only the tensors training changes: what a checkpoint stores."""
        names = self.checkpoint_names or {n for n, p in self.named_parameters() if p.requires_grad}
        return {n: t.detach() for n, t in self.state_dict().items() if n in names}

    def parameter_counts(self) -> tuple[int, int]:
        """(total, trainable) parameter counts, shared tensors counted once."""
        seen: set[int] = set()
        total = trainable = 0
        for p in self.parameters():
            if id(p) in seen:
                continue
            seen.add(id(p))
            total += p.numel()
            if p.requires_grad:
                trainable += p.numel()
        return total, trainable

    def head_parameters(self) -> list[nn.Parameter]:
        """Freshly initialised output heads, trained at ``head_lr`` (none by default).

        Encoder backbones put a new linear head per task on top of the frozen model; it needs a
        much larger step than the hypernetwork, whose every weight feeds many generated ones.
        """
        return []

    def invalidate_cache(self) -> None:
        """Drop any inference cache (generated weights); called after every optimizer step."""
