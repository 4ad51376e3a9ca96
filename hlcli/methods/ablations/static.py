"""The ``static`` ablation: HyperLoader's adapters, LoRA and layer norms as plain parameters.

One set shared by all tasks (:class:`StaticWeightSource` in shared mode) replaces the
hypernetwork in HyperLoader's models, on both backbone families: what the task-conditioned
generation adds is the difference to ``hyperloader``. ``unipelt`` on T5 is this model too.
"""

from __future__ import annotations

from typing import Any, Sequence

from torch import nn

from hlcli.methods.base import TaskSpec
from hlcli.methods.hyperloader.config import HyperLoaderConfig
from hlcli.methods.hyperloader.encoder import STACK, HyperLoaderEncoderModel, encoder_stack_spec
from hlcli.methods.hyperloader.model import HyperLoaderT5Model
from hlcli.methods.hyperloader.t5 import t5_stack_specs
from hlcli.methods.hyperloader.weight_source import StaticWeightSource


def static_t5_model(config: HyperLoaderConfig, backbone_model, tokenizer, tasks: Sequence[TaskSpec]) -> HyperLoaderT5Model:
    source = StaticWeightSource(
        config, n_tasks=len(tasks), stacks=t5_stack_specs(backbone_model.config, config), per_task=False
    )
    return HyperLoaderT5Model(config, backbone_model, tokenizer, tasks, source=source)


def static_encoder_model(
    config: HyperLoaderConfig, backbone: nn.Module, tokenizer: Any, tasks: Sequence[TaskSpec]
) -> HyperLoaderEncoderModel:
    source = StaticWeightSource(config, n_tasks=len(tasks), stacks={STACK: encoder_stack_spec(backbone)})
    # "hypernetwork.source": where static checkpoints on encoders have always kept these tensors.
    return HyperLoaderEncoderModel(config, backbone, tokenizer, tasks, source=source, source_at="hypernetwork.source")
