"""``PlainT5Tagger``: SentT' tagging on a T5 as it is (the base of every T5 method).

SentT' (see :mod:`hlcli.sentt`) turns a sentence into a text-to-text pair; this class holds the
whole seq2seq side: collate (windows of ``max_words``, never truncated), teacher-forced loss on
target tokens only, constrained decoding for :meth:`predict` (:mod:`hlcli.decoding`, whose
``greedy_generate`` is the full-vocabulary reference decoder the benchmarks compare with).

Methods change the T5 through two hooks: :meth:`using_task` (a context the backbone runs in;
HyperLoader puts the task's generated weights in place there) and :meth:`input_prefix` (text put
before every input; ``task_prefix=True`` names the task, as T5 multi-task training does). Which
backbone parameters train is the subclass's choice: this class changes none.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from hlcli import sentt
from hlcli.data.example import Example
from hlcli.compat import t5_decoder_output_scale
from hlcli.decoding import constrained_decode
from hlcli.errors import HLError, UsageError, unknown_name
from hlcli.methods.base import TaggingModel, TaskSpec
from hlcli.methods.plain.config import SentTLimits

logger = logging.getLogger(__name__)


class PlainT5Tagger(TaggingModel):
    """A multi-task SentT' tagger on a T5; the task, if named at all, is named in the input."""

    def __init__(
        self, config: SentTLimits, backbone_model, tokenizer, tasks: Sequence[TaskSpec], *, task_prefix: bool
    ) -> None:
        super().__init__(tasks)
        if not self.tasks:
            raise UsageError("a model needs at least one task")
        self.method_config = config  # what checkpoints record
        self.backbone = backbone_model
        self.tokenizer = tokenizer
        self.backbone_name = ""  # set by build_model; recorded in checkpoints
        self.task_prefix = task_prefix
        self._labels = {t.name: sentt.label_vocabulary(t.types) for t in self.tasks}
        self._warned_length = False

    def task_id(self, task: str) -> int:
        if task not in self.task_index:
            raise unknown_name("task", task, list(self.task_index))
        return self.task_index[task]

    @contextlib.contextmanager
    def using_task(self, task: str, *, use_cache: bool | None = None) -> Iterator[None]:
        """Run the backbone as ``task`` needs it (here: as it is; ``use_cache`` is for subclasses)."""
        self.task_id(task)
        yield

    def input_prefix(self, task: str) -> str:
        """Text put before every SentT' input: ``"task: "`` with ``task_prefix``, else nothing."""
        return f"{task}: " if self.task_prefix else ""

    # -- training ----------------------------------------------------------------------------
    def collate(self, task: str, examples: Sequence[Example]) -> dict[str, Any]:
        self.task_id(task)
        vocabulary = set(self._labels[task])
        pairs: list[tuple[str, str]] = []
        for example in examples:
            unknown = set(sentt.bio_to_sbio(example.tags)) - vocabulary
            if unknown:
                raise HLError(
                    f"label(s) {', '.join(sorted(unknown))} not in task {task!r}",
                    path=example.source or None,
                    expected=f"types of {task}: {', '.join(self._labels[task][:-2])}",
                )
            pairs += sentt.encode_windows(example, self.method_config.max_words)
        prefix = self.input_prefix(task)
        source = self.tokenizer([prefix + p[0] for p in pairs], padding=True, return_tensors="pt")
        target = self.tokenizer([p[1] for p in pairs], padding=True, return_tensors="pt")
        self._check_lengths(source.input_ids.shape[1], target.input_ids.shape[1])
        labels = target.input_ids.masked_fill(target.attention_mask == 0, -100)
        # Where the target tokens are, found here on the host: the loss then gathers them without a
        # boolean mask, whose nonzero() would make a GPU wait for the host at every step.
        positions = (labels != -100).flatten().nonzero().squeeze(1)
        return {"input_ids": source.input_ids, "attention_mask": source.attention_mask, "labels": labels,
                "target_positions": positions}

    def lengths(self, task: str, examples: Sequence[Example]) -> list[int]:
        """Input + target tokens of each example: grouping on both halves the padding of each
        (ATIS, batch 32: 1.94/2.05 → 1.19/1.18 padded per real token, against 1.23/1.40 by words)."""
        prefix = self.input_prefix(task)
        inputs = self.tokenizer([prefix + sentt.encode_input(list(e.tokens)) for e in examples]).input_ids
        targets = self.tokenizer([sentt.encode_target(list(e.tags)) for e in examples]).input_ids
        return [len(a) + len(b) for a, b in zip(inputs, targets)]

    def _check_lengths(self, n_input: int, n_target: int) -> None:
        # Never truncate: a cut sentence would silently lose words and labels.
        if not self._warned_length and (
            n_input > self.method_config.max_input_length or n_target > self.method_config.max_target_length
        ):
            self._warned_length = True
            logger.warning(
                "batch of %d input / %d target tokens exceeds max_input_length=%d / max_target_length=%d; kept whole",
                n_input, n_target, self.method_config.max_input_length, self.method_config.max_target_length,
            )

    def forward(self, task: str, batch: dict[str, Any], *, use_cache: bool | None = None) -> Tensor:
        """Teacher-forced logits ``[batch, target_len, vocab]``."""
        return self.backbone.lm_head(self._decoder_states(task, batch, use_cache=use_cache))

    def loss(
        self, task: str, batch: dict[str, Any], *, label_smoothing: float = 0.0, reduction: str = "mean"
    ) -> Tensor:
        labels = batch["labels"].flatten()
        positions = batch.get("target_positions")
        if positions is None:  # a batch not made by collate
            positions = (labels != -100).nonzero().squeeze(1)
        # The vocabulary projection and softmax are the costliest part of a step on a small
        # backbone: run them only on target tokens, never on padding (same mean as ignore_index).
        states = self._decoder_states(task, batch).flatten(0, 1).index_select(0, positions)
        logits = self.backbone.lm_head(states)
        # "sum": the authors' label_smoothed_nll_loss, (1 - ε)·nll + ε/V·Σ_v -log p_v summed over the
        # batch's target tokens (the same per-token formula as PyTorch's label_smoothing).
        targets = labels.index_select(0, positions)
        return F.cross_entropy(logits.float(), targets, label_smoothing=label_smoothing, reduction=reduction)

    def _decoder_states(self, task: str, batch: dict[str, Any], *, use_cache: bool | None = None) -> Tensor:
        """Last decoder states, scaled as ``T5ForConditionalGeneration`` scales them before ``lm_head``."""
        with self.using_task(task, use_cache=use_cache):
            encoder = self.backbone.encoder
            encoded = encoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
            hidden = self.backbone.decoder(
                input_ids=self.backbone.prepare_decoder_input_ids_from_labels(batch["labels"]),
                encoder_hidden_states=encoded,
                encoder_attention_mask=batch["attention_mask"],
                use_cache=False,
            ).last_hidden_state
        scale = t5_decoder_output_scale(self.backbone.config)
        return hidden * scale if scale != 1.0 else hidden

    # -- inference ---------------------------------------------------------------------------
    def predict(self, task: str, sentences: Sequence[Sequence[str]], *, batch_size: int = 32) -> list[list[str]]:
        self.task_id(task)
        with self.evaluating(), torch.no_grad():
            labels = constrained_decode(
                self.backbone,
                self.tokenizer,
                sentences,
                self._labels[task],
                batch_size=batch_size,
                max_words=self.method_config.max_words,
                scope=lambda: self.using_task(task, use_cache=True),
                prefix=self.input_prefix(task),
            )
        return [sentt.sbio_to_bio(sentence) for sentence in labels]

