"""Taggers that run the backbone as it is, and the ``full-finetune`` baseline built on them.

:class:`PlainT5Tagger` and :class:`PlainEncoderTagger` reuse HyperLoader's tagging machinery (T5:
SentT' collate / loss / constrained decoding; encoders: word-aligned windows, per-task heads)
without its weight source or layer patches. Methods whose extra modules are not task-generated
(``full-finetune``, ``hyperdecoder``, ``unipelt`` on encoders) build on them.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator, Sequence

import torch
from torch import nn

from hlcli import sentt
from hlcli.errors import UsageError
from hlcli.methods.base import TaggingModel, TaskSpec
from hlcli.methods.hyperloader.encoder import HyperLoaderEncoderModel, _layers, _model_max_length, bio_tags
from hlcli.methods.hyperloader.model import HyperLoaderT5Model


class PlainT5Tagger(HyperLoaderT5Model):
    """A SentT' tagger on a T5 with no generated weights; the task, if any, is named in the input."""

    def __init__(self, config, backbone_model, tokenizer, tasks: Sequence[TaskSpec], *, task_prefix: bool) -> None:
        # HyperLoaderT5Model.__init__ injects a weight source: only its tagging machinery is wanted.
        TaggingModel.__init__(self, tasks)
        if not self.tasks:
            raise UsageError("a model needs at least one task")
        self.method_config = config
        self.backbone = backbone_model
        self.tokenizer = tokenizer
        self.backbone_name = ""
        self.task_prefix = task_prefix
        self._labels = {t.name: sentt.label_vocabulary(t.types) for t in self.tasks}
        self._cache = None
        self._warned_length = False

    def input_prefix(self, task: str) -> str:
        return f"{task}: " if self.task_prefix else ""

    @contextlib.contextmanager
    def using_task(self, task: str, *, use_cache: bool | None = None) -> Iterator[None]:
        self.task_id(task)
        yield


class PlainEncoderTagger(HyperLoaderEncoderModel):
    """An encoder + one linear head per task (BIO tags of each word's first sub-token)."""

    def __init__(
        self, config, backbone: nn.Module, tokenizer: Any, tasks: Sequence[TaskSpec], *, max_length: int | None = None
    ) -> None:
        # HyperLoaderEncoderModel.__init__ patches generated adapters/LoRA in: only its tagging is wanted.
        TaggingModel.__init__(self, tasks)
        if not self.tasks:
            raise UsageError("no tasks to build a model for")
        _layers(backbone)  # checks the model type
        if not getattr(tokenizer, "is_fast", False):
            raise UsageError("the encoder path needs a fast (Rust) tokenizer for word alignment")
        if backbone.config.model_type == "roberta" and not getattr(tokenizer, "add_prefix_space", False):
            raise UsageError("this tokenizer cannot take pre-split words", hint="load it with add_prefix_space=True")
        self.config = self.method_config = config
        self.backbone = backbone
        self.tokenizer = tokenizer
        self.backbone_name = ""
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
        self._cache = {}

    def forward(self, task: str, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Tag logits ``[batch, tokens, n_tags(task)]``."""
        index = self._task_id(task)
        hidden = self.backbone(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return self.heads[index](self.dropout(hidden))

    def invalidate_cache(self) -> None:
        pass


class FullFineTuneT5Model(PlainT5Tagger):
    """``full-finetune`` on T5: every parameter of the model trains, tasks named in the input."""

    method = "full-finetune"

    def __init__(self, config, backbone_model, tokenizer, tasks: Sequence[TaskSpec]) -> None:
        super().__init__(config, backbone_model, tokenizer, tasks, task_prefix=config.task_prefix)
        self.backbone.requires_grad_(True)


class FullFineTuneEncoderModel(PlainEncoderTagger):
    """``full-finetune`` on an encoder: the whole encoder and the per-task heads train."""

    method = "full-finetune"

    def __init__(self, config, backbone: nn.Module, tokenizer: Any, tasks: Sequence[TaskSpec]) -> None:
        super().__init__(config, backbone, tokenizer, tasks)
        self.backbone.requires_grad_(True)
