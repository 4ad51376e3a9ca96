"""The ``static`` ablation: HyperLoader's adapters, LoRA and layer norms as plain parameters.

One set shared by all tasks (:class:`StaticWeightSource` in shared mode) replaces the
hypernetwork: what the task-conditioned generation adds is the difference to ``hyperloader``.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import Tensor, nn

from hlcli.methods.base import TaskSpec
from hlcli.methods.hyperloader.config import HyperLoaderConfig
from hlcli.methods.hyperloader.encoder import ENCODER_POSITIONS, HyperLoaderEncoderModel
from hlcli.methods.hyperloader.hypernetwork import GeneratedWeights
from hlcli.methods.hyperloader.model import HyperLoaderT5Model
from hlcli.methods.hyperloader.t5 import t5_stack_specs
from hlcli.methods.hyperloader.weight_source import StackSpec, StaticWeightSource


def static_t5_model(config: HyperLoaderConfig, backbone_model, tokenizer, tasks: Sequence[TaskSpec]) -> HyperLoaderT5Model:
    source = StaticWeightSource(
        config, n_tasks=len(tasks), stacks=t5_stack_specs(backbone_model.config, config), per_task=False
    )
    return HyperLoaderT5Model(config, backbone_model, tokenizer, tasks, source=source)


class _SharedWeights(nn.Module):
    """Stands in for the encoder path's hypernetwork: the same weights whatever the task."""

    def __init__(self, source: StaticWeightSource) -> None:
        super().__init__()
        self.source = source

    def forward(self, task_embedding: Tensor) -> GeneratedWeights:
        return self.source(0)["encoder"]


class StaticEncoderModel(HyperLoaderEncoderModel):
    """HyperLoader's encoder path with :class:`_SharedWeights` instead of task embeddings + hypernetwork."""

    method = "static"

    def __init__(self, config: HyperLoaderConfig, backbone: nn.Module, tokenizer: Any, tasks: Sequence[TaskSpec]) -> None:
        super().__init__(config, backbone, tokenizer, tasks)
        self.method_config = config
        layers = backbone.encoder.layer
        spec = StackSpec(
            n_layers=len(layers),
            d_model=backbone.config.hidden_size,
            attn_inner_dim=layers[0].attention.self.query.weight.shape[0],
            n_positions=len(ENCODER_POSITIONS),
            used_positions=ENCODER_POSITIONS,
        )
        del self.hypernetwork, self.task_embeddings
        self.hypernetwork = _SharedWeights(StaticWeightSource(config, n_tasks=len(tasks), stacks={"encoder": spec}))
        # The parent indexes task embeddings before calling the hypernetwork: give it empty rows.
        self.register_buffer("task_embeddings", torch.zeros(len(tasks), 0), persistent=False)
