"""Weight sources: where the adapter / LoRA / layer-norm weights of a forward come from.

The layer modules never own these weights; they read a :class:`GeneratedWeights` per stack from
the model's per-forward context. A *weight source* produces them for a task id:

* :class:`HyperNetworkSource` — HyperLoader / HyperFormer++: shared task embeddings and one
  :class:`HyperNetwork` per stack;
* :class:`StaticWeightSource` — plain parameters with the same shapes, shared by all tasks or one
  set per task (ablations such as "static adapters + LoRA", and the benchmark baseline).
"""

from __future__ import annotations

import abc
import math
from dataclasses import dataclass

import torch
from torch import nn

from hlcli.methods.hyperloader.hypernetwork import (
    ADAPTER_POSITIONS,
    LORA_POSITIONS,
    GeneratedWeights,
    HyperNetwork,
    HyperNetworkConfig,
)


@dataclass(frozen=True)
class StackSpec:
    """Shape of one stack of blocks and which positions it uses."""

    n_layers: int
    d_model: int
    attn_inner_dim: int
    n_positions: int
    used_positions: tuple[int, ...]


class WeightSource(nn.Module, abc.ABC):
    """Produces one :class:`GeneratedWeights` per stack for a task."""

    @abc.abstractmethod
    def forward(self, task_id: int) -> dict[str, GeneratedWeights]:
        """Weights of every stack (keyed by stack name) for task ``task_id``."""


class HyperNetworkSource(WeightSource):
    """Task embeddings (shared by all stacks) fed to one hypernetwork per stack."""

    def __init__(self, config: HyperNetworkConfig, *, n_tasks: int, stacks: dict[str, StackSpec]) -> None:
        super().__init__()
        self.task_embeddings = nn.Embedding(n_tasks, config.task_embedding_dim)
        self.hypernetworks = nn.ModuleDict(
            {
                name: HyperNetwork(
                    config,
                    n_layers=spec.n_layers,
                    d_model=spec.d_model,
                    attn_inner_dim=spec.attn_inner_dim,
                    n_positions=spec.n_positions,
                    used_positions=spec.used_positions,
                )
                for name, spec in stacks.items()
            }
        )

    def forward(self, task_id: int) -> dict[str, GeneratedWeights]:
        embedding = self.task_embeddings.weight[task_id]
        return {name: net(embedding) for name, net in self.hypernetworks.items()}


class StaticWeightSource(WeightSource):
    """Plain trainable tensors shaped like :class:`GeneratedWeights` (one set, or one per task).

    Initialised as the usual static modules: adapter down ~ N(0, 0.01), up = 0 (identity at start),
    layer norm γ = 1, β = 0, LoRA A Kaiming-uniform and B = 0.
    """

    def __init__(
        self, config: HyperNetworkConfig, *, n_tasks: int, stacks: dict[str, StackSpec], per_task: bool = False
    ) -> None:
        super().__init__()
        self.config = config
        self.per_task = per_task
        n = n_tasks if per_task else 1
        self.lora_positions: dict[str, tuple[int, ...]] = {}
        self.stacks = nn.ModuleDict()
        for name, spec in stacks.items():
            L, d, b, r = spec.n_layers, spec.d_model, spec.d_model // config.reduction_factor, config.lora_rank
            params = nn.ParameterDict()
            if config.use_adapters:
                a = len(ADAPTER_POSITIONS)
                params["adapter_down"] = nn.Parameter(torch.randn(n, L, a, b, d) * 0.01)
                params["adapter_down_bias"] = nn.Parameter(torch.zeros(n, L, a, b))
                params["adapter_up"] = nn.Parameter(torch.zeros(n, L, a, d, b))
                params["adapter_up_bias"] = nn.Parameter(torch.zeros(n, L, a, d))
                if config.use_layer_norm:
                    params["ln_weight"] = nn.Parameter(torch.ones(n, L, a, d))
                    params["ln_bias"] = nn.Parameter(torch.zeros(n, L, a, d))
            lora_positions = tuple(p for p in spec.used_positions if p in LORA_POSITIONS) if config.use_lora else ()
            if lora_positions:
                k = len(lora_positions)
                A = torch.empty(n, L, k, r, d)
                nn.init.kaiming_uniform_(A.view(-1, d), a=math.sqrt(5))
                params["lora_A"] = nn.Parameter(A)
                params["lora_B"] = nn.Parameter(torch.zeros(n, L, k, spec.attn_inner_dim, r))
            self.lora_positions[name] = lora_positions
            self.stacks[name] = params

    def forward(self, task_id: int) -> dict[str, GeneratedWeights]:
        row = task_id if self.per_task else 0
        return {
            name: GeneratedWeights(
                **{key: value[row] for key, value in params.items()},
                lora_positions=self.lora_positions[name],
                lora_scaling=self.config.lora_scaling,
            )
            for name, params in self.stacks.items()
        }
