"""Per-forward context: how injected layers find the weights of the current forward.

Backbone-independent (used by the T5 injection and usable by any other backbone): the model
owns one :class:`InjectionContext`, puts a task's :class:`GeneratedWeights` in it around each
backbone call, and the injected pieces (:class:`AdapterHook` forward hooks,
:class:`LoRALookup` for :class:`~hlcli.methods.hyperloader.lora.GeneratedLoRALinear`) read it.
No global state: two models in one process never see each other's weights.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

from torch import Tensor, nn

from hlcli.methods.hyperloader.adapter import apply_adapter
from hlcli.methods.hyperloader.hypernetwork import GeneratedWeights
from hlcli.methods.hyperloader.lora import LoRAUpdate


class InjectionContext:
    """The weights the injected layers use during the current forward of one model."""

    def __init__(self) -> None:
        self.weights: dict[str, GeneratedWeights] | None = None
        # stack → [L, n_lora_positions, inner, d_model]: W0 + (α/r)·B A, for cached inference
        self.merged: dict[str, Tensor] | None = None

    @contextlib.contextmanager
    def active(self, weights: dict[str, GeneratedWeights], merged: dict[str, Tensor] | None = None) -> Iterator[None]:
        previous = (self.weights, self.merged)
        self.weights, self.merged = weights, merged
        try:
            yield
        finally:
            self.weights, self.merged = previous

    def stack(self, name: str) -> GeneratedWeights:
        if self.weights is None:
            raise RuntimeError("hyperloader layers called outside a model forward (no generated weights set)")
        return self.weights[name]

    def lora_update(self, stack: str, layer: int, position: int) -> LoRAUpdate:
        weights = self.stack(stack)
        slot = weights.lora_slot(position)
        if self.merged is not None:
            return LoRAUpdate(merged=self.merged[stack][layer, slot])
        A, B = weights.at("lora_A", layer, slot), weights.at("lora_B", layer, slot)
        return LoRAUpdate(A=A, B=B, scaling=weights.lora_scaling)


# Hooks and lookups are small objects, not closures: ``copy.deepcopy(model)`` then gives a copy
# whose layers read the copy's context (a closure would keep reading the original's).
class AdapterHook:
    """Forward hook: apply adapter ``slot`` of ``layer`` to a sub-layer's output (tensor or tuple)."""

    def __init__(self, context: InjectionContext, stack: str, layer: int, slot: int) -> None:
        self.context, self.stack, self.layer, self.slot = context, stack, layer, slot

    def __call__(self, module: nn.Module, args: tuple, output):
        weights = self.context.stack(self.stack)
        if isinstance(output, tuple):  # attention returns (output, position_bias, weights)
            return (apply_adapter(output[0], weights, self.layer, self.slot), *output[1:])
        return apply_adapter(output, weights, self.layer, self.slot)


class LoRALookup:
    """The ``lookup`` of a :class:`GeneratedLoRALinear`: the update of one (stack, layer, position)."""

    def __init__(self, context: InjectionContext, stack: str, layer: int, position: int) -> None:
        self.context, self.stack, self.layer, self.position = context, stack, layer, position

    def __call__(self) -> LoRAUpdate:
        return self.context.lora_update(self.stack, self.layer, self.position)
