"""``PlainEncoderTagger``: token classification on a BERT-family encoder (the base of every encoder method).

The seq2seq path (T5, :mod:`hlcli.methods.plain.t5`) is the papers'. This path exists so that
``hl`` can reach a real F1 with a small pretrained encoder (MiniLM-L6, a BERT) and no hub: a
per-task linear head maps every word's first sub-token to BIO tags ``O, B-t1, I-t1, B-t2, ...``
(types in :class:`TaskSpec` order). ``max_length`` caps the sub-tokens of one model input
(default: the backbone's limit); longer sentences are read in overlapping windows of words
(:func:`word_windows`), each word labelled by exactly one window that also sees context on both
of its sides.

Supported backbones: :data:`~hlcli.methods.common.ENCODER_MODEL_TYPES`. RoBERTa-style tokenizers
must be loaded with ``add_prefix_space=True`` (words are fed pre-split).

Predictions are the argmax tag of each word, kept as they are: an ``I-X`` after ``O`` is not
repaired, because seqeval's default (non-strict) scheme already reads it as the start of an
entity, which is what a repair to ``B-X`` would give.

Which backbone parameters train is the subclass's choice: this class changes none (its heads
train). Methods patch the backbone's layers and wrap :meth:`forward`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from hlcli.data.example import Example
from hlcli.errors import HLError, UsageError, unknown_name
from hlcli.methods.base import TaggingModel, TaskSpec
from hlcli.methods.common import encoder_layers

IGNORE_INDEX = -100


def bio_tags(types: Sequence[str]) -> list[str]:
    """``O`` then ``B-t``/``I-t`` for each type, in the given order (the head's output order)."""
    return ["O"] + [f"{prefix}-{name}" for name in types for prefix in ("B", "I")]


@dataclass
class _Row:
    """One model input: a window of a sentence's words, with the words it is responsible for."""

    sentence: int
    input_ids: list[int]
    word_ids: list[int]  # per token: the sentence-level index of the word it labels, or -1
    labels: list[int] | None


class PlainEncoderTagger(TaggingModel):
    """An encoder + one linear head per task (BIO tags of each word's first sub-token)."""

    def __init__(
        self, config, backbone: nn.Module, tokenizer: Any, tasks: Sequence[TaskSpec], *, max_length: int | None = None
    ) -> None:
        super().__init__(tasks)
        if not self.tasks:
            raise UsageError("no tasks to build a model for")
        encoder_layers(backbone)  # checks the model type
        if not getattr(tokenizer, "is_fast", False):
            raise UsageError("the encoder path needs a fast (Rust) tokenizer for word alignment")
        # Byte-level BPE marks a word start with a leading space: pre-split words need one added.
        if backbone.config.model_type == "roberta" and not getattr(tokenizer, "add_prefix_space", False):
            raise UsageError(
                "this tokenizer cannot take pre-split words", hint="load it with add_prefix_space=True"
            )
        self.config = self.method_config = config  # method_config: what checkpoints record
        self.backbone = backbone
        self.tokenizer = tokenizer
        self.backbone_name = ""  # set by build_model; recorded in checkpoints
        self.max_length = max_length or _model_max_length(backbone, tokenizer)
        self.tag_names = [bio_tags(t.types) for t in self.tasks]
        self._tag_index = [{tag: i for i, tag in enumerate(names)} for names in self.tag_names]
        # Token classification never reads the pooler: drop it so it neither runs nor counts.
        if getattr(backbone, "pooler", None) is not None:
            backbone.pooler = None
        dropout = getattr(backbone.config, "classifier_dropout", None)
        if dropout is None:
            dropout = getattr(backbone.config, "hidden_dropout_prob", 0.1)
        self.dropout = nn.Dropout(dropout)
        hidden = backbone.config.hidden_size
        self.heads = nn.ModuleList(nn.Linear(hidden, len(names)) for names in self.tag_names)

    def _task_id(self, task: str) -> int:
        if task not in self.task_index:
            raise unknown_name("task", task, list(self.task_index))
        return self.task_index[task]

    def head_parameters(self) -> list[nn.Parameter]:
        return list(self.heads.parameters())

    def forward(self, task: str, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Tag logits ``[batch, tokens, n_tags(task)]``."""
        index = self._task_id(task)
        hidden = self.backbone(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return self.heads[index](self.dropout(hidden))

    # -- tokenization -----------------------------------------------------------------------------
    def _rows(self, sentences: Sequence[Sequence[str]], labels: Sequence[Sequence[int]] | None) -> list[_Row]:
        tok = self.tokenizer
        budget = self.max_length - tok.num_special_tokens_to_add(pair=False)
        words = [list(s) for s in sentences]
        counts = _subtoken_counts(tok, words)
        for s, sentence_counts in enumerate(counts):
            for w, n in enumerate(sentence_counts):
                # A word that yields no sub-token (zero-width characters) would get no
                # prediction, and one longer than a window would not fit: both become [UNK].
                if n == 0 or n > budget:
                    words[s][w] = tok.unk_token
                    sentence_counts[w] = 1
        plans = [(s, window) for s, c in enumerate(counts) for window in word_windows(c, budget)]
        if not plans:
            return []
        encoded = tok(
            [words[s][start:end] for s, (start, end, _, _) in plans],
            is_split_into_words=True,
            add_special_tokens=True,
        )
        rows = []
        for r, (s, (start, end, own_start, own_end)) in enumerate(plans):
            ids = encoded["input_ids"][r]
            if len(ids) > self.max_length:
                raise RuntimeError(f"window of {len(ids)} tokens exceeds {self.max_length}")
            word_ids, row_labels, previous = [], [], None
            for w in encoded.word_ids(r):
                first = w is not None and w != previous
                previous = w
                owned = first and own_start <= start + w < own_end
                word_ids.append(start + w if owned else -1)
                if labels is not None:
                    row_labels.append(labels[s][start + w] if owned else IGNORE_INDEX)
            rows.append(_Row(s, ids, word_ids, row_labels if labels is not None else None))
        return rows

    def _pad(self, rows: Sequence[_Row]) -> dict[str, torch.Tensor]:
        width = max(len(r.input_ids) for r in rows)
        pad = self.tokenizer.pad_token_id or 0

        def padded(values: list[int], fill: int) -> list[int]:
            return values + [fill] * (width - len(values))

        batch = {
            "input_ids": torch.tensor([padded(r.input_ids, pad) for r in rows]),
            "attention_mask": torch.tensor([padded([1] * len(r.input_ids), 0) for r in rows]),
            "word_ids": torch.tensor([padded(r.word_ids, -1) for r in rows]),
            "sentence": torch.tensor([r.sentence for r in rows]),
        }
        if rows[0].labels is not None:
            batch["labels"] = torch.tensor([padded(r.labels, IGNORE_INDEX) for r in rows])
        return batch

    # -- TaggingModel -----------------------------------------------------------------------------
    def collate(self, task: str, examples: Sequence[Example]) -> dict[str, Any]:
        """``input_ids``, ``attention_mask``, ``labels`` (first sub-token of each word, else -100),
        ``word_ids`` (the word each labelled token belongs to, else -1) and ``sentence`` (row → example).

        A sentence longer than ``max_length`` sub-tokens becomes several rows.
        """
        index = self._task_id(task)
        tag_index = self._tag_index[index]
        labels = []
        for example in examples:
            try:
                labels.append([tag_index[tag] for tag in example.tags])
            except KeyError as error:
                raise HLError(
                    f"tag {error.args[0]!r} is not one of task {task!r}'s tags",
                    path=example.source,
                    expected=f"entity types {', '.join(self.tasks[index].types) or '(none)'}",
                ) from None
        rows = self._rows([e.tokens for e in examples], labels)
        if not rows:
            raise HLError(f"empty batch for task {task!r}", expected="at least one sentence")
        return self._pad(rows)

    def loss(
        self, task: str, batch: dict[str, Any], *, label_smoothing: float = 0.0, reduction: str = "mean"
    ) -> torch.Tensor:
        logits = self(task, batch["input_ids"], batch["attention_mask"])
        labels = batch["labels"]
        total = F.cross_entropy(
            logits.flatten(0, 1).float(),
            labels.flatten(),
            ignore_index=IGNORE_INDEX,
            label_smoothing=label_smoothing,
            reduction="sum",
        )
        if reduction == "sum":  # over labelled words: the authors' summed loss, on an encoder's word labels
            return total
        # Mean over labelled words; a batch of word-less sentences gives 0, not NaN.
        return total / (labels != IGNORE_INDEX).sum().clamp(min=1)

    @torch.no_grad()
    def predict(self, task: str, sentences: Sequence[Sequence[str]], *, batch_size: int = 32) -> list[list[str]]:
        index = self._task_id(task)
        names = self.tag_names[index]
        with self.evaluating():
            rows = self._rows(sentences, None)
            # Similar lengths together: less padding.
            rows.sort(key=lambda r: len(r.input_ids))
            tags: list[list[str | None]] = [[None] * len(s) for s in sentences]
            device = self.heads[index].weight.device
            for start in range(0, len(rows), batch_size):
                batch = self._pad(rows[start : start + batch_size])
                logits = self(task, batch["input_ids"].to(device), batch["attention_mask"].to(device))
                best = logits.argmax(-1).cpu()
                word_ids, sentence = batch["word_ids"].tolist(), batch["sentence"].tolist()
                for r, t in (batch["word_ids"] >= 0).nonzero().tolist():
                    tags[sentence[r]][word_ids[r][t]] = names[best[r, t]]
        missing = [s for s, t in enumerate(tags) if None in t]
        if missing:
            raise RuntimeError(f"no prediction for some words of sentence {missing[0]}")
        return tags  # type: ignore[return-value]


def _model_max_length(backbone: nn.Module, tokenizer: Any) -> int:
    limit = getattr(backbone.config, "max_position_embeddings", 512)
    if backbone.config.model_type in ("roberta", "xlm-roberta"):
        limit -= 2  # positions start after the padding index
    tokenizer_limit = getattr(tokenizer, "model_max_length", None)
    if isinstance(tokenizer_limit, int) and 0 < tokenizer_limit < limit:
        limit = tokenizer_limit
    return limit


def _subtoken_counts(tokenizer: Any, sentences: list[list[str]]) -> list[list[int]]:
    """Sub-tokens per word, from one batched call without special tokens or truncation."""
    counts = [[0] * len(s) for s in sentences]
    nonempty = [i for i, s in enumerate(sentences) if s]
    if not nonempty:
        return counts
    encoded = tokenizer(
        [sentences[i] for i in nonempty], is_split_into_words=True, add_special_tokens=False, verbose=False
    )
    for row, i in enumerate(nonempty):
        for w in encoded.word_ids(row):
            if w is not None:
                counts[i][w] += 1
    return counts


def word_windows(counts: Sequence[int], budget: int) -> list[tuple[int, int, int, int]]:
    """``(start, end, own_start, own_end)`` word ranges covering a sentence.

    One window if the sentence fits ``budget`` sub-tokens. Otherwise consecutive "own" chunks of
    about half a window each, every one widened on both sides with context up to ``budget``:
    each word is labelled by exactly one window, and never from the window's edge.
    """
    n = len(counts)
    if n == 0:
        return []
    if sum(counts) <= budget:
        return [(0, n, 0, n)]
    windows = []
    own_start = 0
    while own_start < n:
        own_end, size = own_start + 1, counts[own_start]
        while own_end < n and size + counts[own_end] <= budget // 2:
            size += counts[own_end]
            own_end += 1
        start, end = own_start, own_end
        grew = True
        while grew:
            grew = False
            if start > 0 and size + counts[start - 1] <= budget:
                start -= 1
                size += counts[start]
                grew = True
            if end < n and size + counts[end] <= budget:
                size += counts[end]
                end += 1
                grew = True
        windows.append((start, end, own_start, own_end))
        own_start = own_end
    return windows
