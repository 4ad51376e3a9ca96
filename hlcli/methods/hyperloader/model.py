"""``WeightSourceT5Tagger``: a :class:`~hlcli.methods.plain.t5.PlainT5Tagger` on a frozen T5 whose
blocks get their adapters, LoRA updates and layer norms from a weight source.

The model of ``hyperloader``, ``hyperformer`` and ``lora-only`` (source: the hypernetworks, the
config saying which modules they generate) and of ``static`` and ``unipelt`` on T5 (source: a
:class:`~hlcli.methods.hyperloader.weight_source.StaticWeightSource`). ``method`` (the registry
name checkpoints record) is given at construction.

Trainable: the weight source (``source``: e.g. task embeddings + both hypernetworks) and T5's own
layer norms; everything else, shared embeddings and ``lm_head`` included, is frozen.

Weights per forward: training (and any forward with autograd on) generates every weight of the
batch's task in one batched pass per stack. Inference without autograd generates them once per
task and caches them, LoRA merged into q/v (``W0 + (α/r)·B A``); the cache is keyed by the
parameters' in-place versions as well, so an optimizer step can never leave it stale, and
:meth:`invalidate_cache` drops it explicitly.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator, Sequence

import torch
from torch import Tensor

from hlcli.compat import parameter_versions
from hlcli.methods.base import TaskSpec
from hlcli.methods.hyperloader.config import HyperLoaderConfig
from hlcli.methods.hyperloader.context import InjectionContext
from hlcli.methods.hyperloader.hypernetwork import GeneratedWeights
from hlcli.methods.hyperloader.t5 import (
    LoRAModules,
    cudnn_ruled_out,
    inject_t5,
    is_t5_layer_norm,
    merge_lora,
    needs_cudnn_ruled_out,
    t5_stack_specs,
)
from hlcli.methods.hyperloader.weight_source import HyperNetworkSource, WeightSource
from hlcli.methods.plain.t5 import PlainT5Tagger


class WeightSourceT5Tagger(PlainT5Tagger):
    """Multi-task SentT' tagger on a frozen T5 whose adapter / LoRA / layer-norm weights come from
    ``source`` (default: a :class:`HyperNetworkSource`, i.e. HyperLoader's generated weights)."""

    def __init__(
        self,
        config: HyperLoaderConfig,
        backbone_model,
        tokenizer,
        tasks: Sequence[TaskSpec],
        *,
        method: str = "hyperloader",
        source: WeightSource | None = None,
    ) -> None:
        # The task is in the source's weights, not in the input.
        super().__init__(config, backbone_model, tokenizer, tasks, task_prefix=False)
        self.method = method
        for name, parameter in self.backbone.named_parameters():
            parameter.requires_grad_(is_t5_layer_norm(name))
        self.stack_specs = t5_stack_specs(backbone_model.config, config)
        self.source = source or HyperNetworkSource(config, n_tasks=len(self.tasks), stacks=self.stack_specs)
        self._context = InjectionContext()
        self._lora_modules = inject_t5(self.backbone, self._context, config)
        self._cache: tuple[Any, dict[str, GeneratedWeights], dict[str, Tensor] | None] | None = None
        self._rule_out_cudnn = needs_cudnn_ruled_out(self.backbone)

    def generated_weights(
        self, task: str, *, use_cache: bool
    ) -> tuple[dict[str, GeneratedWeights], dict[str, Tensor] | None]:
        """Weights of ``task`` per stack, plus merged q/v weights when served from the cache."""
        task_id = self.task_id(task)
        if not use_cache:
            return self.source(task_id), None
        parameters = list(self.source.parameters())
        key = (task_id, parameters[0].device, parameters[0].dtype, parameter_versions(parameters))
        if self._cache is None or self._cache[0] != key:
            with torch.no_grad():
                weights = {name: w.detached() for name, w in self.source(task_id).items()}
                self._cache = (key, weights, merge_lora(weights, self._lora_modules))
        return self._cache[1], self._cache[2]

    @property
    def lora_modules(self) -> LoRAModules:
        """Stack → per layer, the generated-LoRA linears (q, v; cross-attention q, v) in slot order."""
        return self._lora_modules

    def invalidate_cache(self) -> None:
        self._cache = None

    def _apply(self, fn, *args, **kwargs):
        self._cache = None  # .to() / .half(): cached tensors would be stale
        result = super()._apply(fn, *args, **kwargs)
        self._rule_out_cudnn = needs_cudnn_ruled_out(self.backbone)  # the choice for its new device
        return result

    @contextlib.contextmanager
    def using_task(self, task: str, *, use_cache: bool | None = None) -> Iterator[None]:
        """Run the backbone with ``task``'s weights in place (cached only when no autograd/training)."""
        allowed = not self.training and not torch.is_grad_enabled()
        if use_cache and not allowed:
            raise RuntimeError("the weight cache is for inference only (eval mode, no autograd)")
        weights, merged = self.generated_weights(task, use_cache=allowed if use_cache is None else use_cache)
        kernels = cudnn_ruled_out() if self._rule_out_cudnn else contextlib.nullcontext()
        with self._context.active(weights, merged), kernels:
            yield
