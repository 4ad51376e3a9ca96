"""The ``full-finetune`` baseline: the plain taggers with every backbone parameter trainable.

T5: the whole model trains and the task is named in the input (``task_prefix``); encoders: the
whole encoder plus one head per task. The taggers themselves live in :mod:`hlcli.methods.plain`.
"""

from __future__ import annotations

from typing import Any, Sequence

from torch import nn

from hlcli.methods.base import TaskSpec
from hlcli.methods.full_finetune.config import FullFineTuneConfig
from hlcli.methods.plain.encoder import PlainEncoderTagger
from hlcli.methods.plain.t5 import PlainT5Tagger


class FullFineTuneT5Model(PlainT5Tagger):
    """``full-finetune`` on T5: every parameter of the model trains, tasks named in the input."""

    method = "full-finetune"

    def __init__(self, config: FullFineTuneConfig, backbone_model, tokenizer, tasks: Sequence[TaskSpec]) -> None:
        super().__init__(config, backbone_model, tokenizer, tasks, task_prefix=config.task_prefix)
        self.backbone.requires_grad_(True)


class FullFineTuneEncoderModel(PlainEncoderTagger):
    """``full-finetune`` on an encoder: the whole encoder and the per-task heads train."""

    method = "full-finetune"

    def __init__(
        self, config: FullFineTuneConfig, backbone: nn.Module, tokenizer: Any, tasks: Sequence[TaskSpec]
    ) -> None:
        super().__init__(config, backbone, tokenizer, tasks)
        self.backbone.requires_grad_(True)
