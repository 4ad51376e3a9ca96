"""The ``static`` models: HyperLoader's adapters, LoRA and layer norms as plain parameters.

One set shared by all tasks (:class:`StaticWeightSource` in shared mode) replaces the
hypernetwork in the weight-source taggers, on both backbone families: what the task-conditioned
generation adds is the difference to ``hyperloader``. ``unipelt`` on T5 is this model too
(``method="unipelt"``).
"""

from __future__ import annotations

from typing import Any, Sequence

from torch import nn

from hlcli.methods.base import TaskSpec
from hlcli.methods.hyperloader.config import HyperLoaderConfig
from hlcli.methods.hyperloader.encoder import STACK, WeightSourceEncoderTagger, encoder_stack_spec
from hlcli.methods.hyperloader.model import WeightSourceT5Tagger
from hlcli.methods.hyperloader.t5 import t5_stack_specs
from hlcli.methods.hyperloader.weight_source import StaticWeightSource


def static_t5_model(
    config: HyperLoaderConfig, backbone_model, tokenizer, tasks: Sequence[TaskSpec], *, method: str = "static"
) -> WeightSourceT5Tagger:
    source = StaticWeightSource(
        config, n_tasks=len(tasks), stacks=t5_stack_specs(backbone_model.config, config), per_task=False
    )
    return WeightSourceT5Tagger(config, backbone_model, tokenizer, tasks, method=method, source=source)


def static_encoder_model(
    config: HyperLoaderConfig, backbone: nn.Module, tokenizer: Any, tasks: Sequence[TaskSpec]
) -> WeightSourceEncoderTagger:
    source = StaticWeightSource(config, n_tasks=len(tasks), stacks={STACK: encoder_stack_spec(backbone)})
    # "hypernetwork.source": where static checkpoints on encoders have always kept these tensors.
    return WeightSourceEncoderTagger(
        config, backbone, tokenizer, tasks, method="static", source=source, source_at="hypernetwork.source"
    )
