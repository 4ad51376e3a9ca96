"""``WeightSourceEncoderTagger``: a :class:`~hlcli.methods.plain.encoder.PlainEncoderTagger`
whose frozen layers get adapter and LoRA weights from a weight source (HyperLoader's encoder path;
also ``hyperformer``, ``lora-only`` and ``static`` on encoders).

By default the source is :class:`EncoderHyperNetworkSource` (task embeddings + one hypernetwork
generating, for every layer, four modules from the task embedding):

* an adapter after the attention output (``BertSelfOutput``: dense → dropout → **adapter** →
  LayerNorm(h + residual)),
* an adapter after the feed-forward output (``BertOutput``, same place),
* LoRA on the attention query and value projections (``W0 x + (α/r) B A x``).

Each adapter ends in the generated (task-conditioned) LayerNorm, as in HyperFormer++ (the T5
path's :func:`~hlcli.methods.hyperloader.adapter.apply_adapter`, hooks and LoRA linears are
reused as they are). ``static`` passes a shared
:class:`~hlcli.methods.hyperloader.weight_source.StaticWeightSource` instead. The config is a
:class:`HyperNetworkConfig` (``HyperLoaderConfig`` from the registry; its SentT' length fields
do not apply here).

Trainable: the weight source, the backbone's own LayerNorms and the per-task heads.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import torch
from torch import Tensor, nn

from hlcli.compat import parameter_versions
from hlcli.methods.base import TaskSpec
from hlcli.methods.common import encoder_layers
from hlcli.methods.hyperloader.context import AdapterHook, InjectionContext, LoRALookup
from hlcli.methods.hyperloader.hypernetwork import POSITIONS, GeneratedWeights, HyperNetwork, HyperNetworkConfig
from hlcli.methods.hyperloader.lora import GeneratedLoRALinear
from hlcli.methods.hyperloader.t5 import LoRAModules, merge_lora
from hlcli.methods.hyperloader.weight_source import StackSpec, WeightSource
from hlcli.methods.plain.encoder import PlainEncoderTagger

# The hypernetwork's positions this path uses (an encoder has no cross-attention).
ADAPTER_AFTER_FFN = POSITIONS.index("adapter_ffn")
ADAPTER_AFTER_ATTENTION = POSITIONS.index("adapter_self_attention")
LORA_QUERY = POSITIONS.index("lora_self_q")
LORA_VALUE = POSITIONS.index("lora_self_v")
ENCODER_POSITIONS = (ADAPTER_AFTER_FFN, ADAPTER_AFTER_ATTENTION, LORA_QUERY, LORA_VALUE)
STACK = "encoder"  # the InjectionContext key (and weight-source stack name) of the one stack


def encoder_stack_spec(backbone: nn.Module) -> StackSpec:
    """Shape of the encoder's one stack, for a weight source (checks the backbone first)."""
    layers = encoder_layers(backbone)
    return StackSpec(
        n_layers=len(layers),
        d_model=backbone.config.hidden_size,
        attn_inner_dim=layers[0].attention.self.query.weight.shape[0],
        n_positions=len(ENCODER_POSITIONS),
        used_positions=ENCODER_POSITIONS,
    )


class EncoderHyperNetworkSource(WeightSource):
    """Task embeddings (a ``[tasks, dim]`` Parameter) fed to one hypernetwork for the encoder stack."""

    def __init__(self, config: HyperNetworkConfig, *, n_tasks: int, spec: StackSpec) -> None:
        super().__init__()
        self.task_embeddings = nn.Parameter(torch.randn(n_tasks, config.task_embedding_dim))
        self.hypernetwork = HyperNetwork(config, **dataclasses.asdict(spec))  # StackSpec fields are its sizes

    def forward(self, task_id: int) -> dict[str, GeneratedWeights]:
        return {STACK: self.hypernetwork(self.task_embeddings[task_id])}


def _inject(
    layers: nn.ModuleList, context: InjectionContext, config: HyperNetworkConfig
) -> list[list[GeneratedLoRALinear]]:
    """Hook the adapters in and swap query/value for LoRA linears; returns the LoRA linears per layer.

    An adapter hooks the output of its sub-layer's ``dropout``: in ``BertSelfOutput``/``BertOutput``
    (dense → dropout → LayerNorm(h + residual)) that is exactly between dropout and the residual,
    where AdapterHub puts BERT adapters. Module names and state-dict keys stay unchanged.
    """
    lora_modules = []
    for i, layer in enumerate(layers):
        if config.use_adapters:
            attention_hook = AdapterHook(context, STACK, i, ADAPTER_AFTER_ATTENTION)
            layer.attention.output.dropout.register_forward_hook(attention_hook)
            layer.output.dropout.register_forward_hook(AdapterHook(context, STACK, i, ADAPTER_AFTER_FFN))
        linears = []
        if config.use_lora:
            attention = layer.attention.self
            for name, position in (("query", LORA_QUERY), ("value", LORA_VALUE)):
                linear = GeneratedLoRALinear(getattr(attention, name), LoRALookup(context, STACK, i, position))
                setattr(attention, name, linear)
                linears.append(linear)
        lora_modules.append(linears)
    return lora_modules


class WeightSourceEncoderTagger(PlainEncoderTagger):
    """A frozen BERT-family encoder with adapters + LoRA from a weight source (HyperLoader's by default).

    ``source`` defaults to :class:`EncoderHyperNetworkSource`. ``source_at`` says where the
    source's tensors sit in the state dict, as the checkpoints of the first encoder release
    saved them (they must keep loading, and their optimizer state is indexed by parameter
    order): ``""`` puts the source's members on the model itself, before the heads
    (``task_embeddings``, ``hypernetwork.*``); a dotted path such as ``"hypernetwork.source"``
    (``static``) nests the source there, after the heads. ``model.source`` is the source either way;
    with ``""`` the model and the source hold the same tensors, so change one in place (e.g.
    ``.data = ...`` to grow ``task_embeddings``) rather than assigning a new Parameter to one side.
    ``method`` is the registry name checkpoints record.
    """

    def __init__(
        self,
        config: HyperNetworkConfig,
        backbone: nn.Module,
        tokenizer: Any,
        tasks: Sequence[TaskSpec],
        *,
        max_length: int | None = None,
        method: str = "hyperloader",
        source: WeightSource | None = None,
        source_at: str = "",
    ) -> None:
        if source is None:
            # Before the heads: a seeded model draws the same initial weights as ever.
            source = EncoderHyperNetworkSource(config, n_tasks=len(tasks), spec=encoder_stack_spec(backbone))
        super().__init__(config, backbone, tokenizer, tasks, max_length=max_length)
        self.method = method
        for p in backbone.parameters():
            p.requires_grad_(False)
        for module in backbone.modules():
            if isinstance(module, nn.LayerNorm):
                module.requires_grad_(True)
        self._context = InjectionContext()
        self._lora_modules = {STACK: _inject(encoder_layers(backbone), self._context, config)}
        self._hold(source, source_at)
        # task id → (parameter versions, weights, merged q/v); see _cached.
        self._cache: dict[int, tuple[tuple, GeneratedWeights, dict[str, Tensor] | None]] = {}

    def _hold(self, source: WeightSource, at: str) -> None:
        """Register ``source``'s tensors under the names described in the class docstring."""
        self.__dict__["source"] = source  # called through this; registered below
        if at:
            *outer, last = at.split(".")
            holder: nn.Module = self
            for name in outer:
                holder.add_module(name, nn.Module())
                holder = getattr(holder, name)
            holder.add_module(last, source)
            return
        for name, parameter in source.named_parameters(recurse=False):
            self.register_parameter(name, parameter)
        for name, child in source.named_children():
            self.add_module(name, child)
        self._modules["heads"] = self._modules.pop("heads")  # heads after the source, as saved

    # -- weights ------------------------------------------------------------------------------------
    def _cached(self, index: int) -> tuple[GeneratedWeights, dict[str, Tensor] | None]:
        # Keyed by the parameters' in-place versions too: an optimizer step can never leave it stale.
        key = parameter_versions(p for p in self.parameters() if p.requires_grad)
        entry = self._cache.get(index)
        if entry is None or entry[0] != key:
            weights = self.source(index)[STACK].detached()
            entry = (key, weights, merge_lora({STACK: weights}, self._lora_modules))
            self._cache[index] = entry
        return entry[1], entry[2]

    def generated_weights(
        self, task: str, *, use_cache: bool
    ) -> tuple[dict[str, GeneratedWeights], dict[str, Tensor] | None]:
        """Weights of ``task`` per stack (one, :data:`STACK`), plus merged q/v when served from the
        cache: the same interface as :meth:`WeightSourceT5Tagger.generated_weights`."""
        index = self._task_id(task)
        if not use_cache:
            return {STACK: self.source(index)[STACK]}, None
        weights, merged = self._cached(index)
        return {STACK: weights}, merged

    @property
    def lora_modules(self) -> LoRAModules:
        """Stack → per layer, the generated-LoRA linears (query, value) in slot order."""
        return self._lora_modules

    def invalidate_cache(self) -> None:
        self._cache.clear()

    def _apply(self, fn, *args, **kwargs):  # .to() / .half(): cached tensors would be stale
        self._cache.clear()
        return super()._apply(fn, *args, **kwargs)

    def forward(self, task: str, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Tag logits ``[batch, tokens, n_tags(task)]``.

        Training (or any pass that needs gradients) generates the weights afresh; an inference
        pass reuses the task's cached weights, with LoRA merged into query/value.
        """
        weights, merged = self.generated_weights(task, use_cache=not (self.training or torch.is_grad_enabled()))
        with self._context.active(weights, merged):
            return super().forward(task, input_ids, attention_mask)
