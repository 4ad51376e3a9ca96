"""Generated LoRA updates of frozen attention projections: ``W0 x + (α/r)·B A x``.

:class:`GeneratedLoRALinear` replaces a frozen ``nn.Linear`` (q or v) in place. It adopts the
original weight Parameter, so state-dict names do not change, and asks a *lookup* callable for
the update of the current forward: generated ``(A, B, scaling)`` factors (training, reference
path) or a weight with the update merged in (``W0 + (α/r)·B A``, cached inference).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch.nn.functional as F
from torch import Tensor, nn


@dataclass
class LoRAUpdate:
    """What a :class:`GeneratedLoRALinear` applies in one forward: factors or a merged weight."""

    A: Tensor | None = None  # [r, d_in]
    B: Tensor | None = None  # [d_out, r]
    scaling: float = 1.0
    merged: Tensor | None = None  # [d_out, d_in], replaces W0 entirely


def lora_delta_weight(A: Tensor, B: Tensor, scaling: float) -> Tensor:
    """``(α/r)·B A``: the dense update (``[..., d_out, d_in]``)."""
    return scaling * (B @ A)


class GeneratedLoRALinear(nn.Linear):
    """A frozen Linear plus the LoRA update returned by ``lookup()`` (``None`` = no update)."""

    def __init__(self, base: nn.Linear, lookup: Callable[[], LoRAUpdate | None]) -> None:
        nn.Module.__init__(self)
        self.in_features, self.out_features = base.in_features, base.out_features
        self.weight = base.weight
        self.bias = base.bias
        self._lookup = lookup

    def forward(self, x: Tensor) -> Tensor:
        update = self._lookup()
        if update is None:
            return F.linear(x, self.weight, self.bias)
        if update.merged is not None:
            return F.linear(x, update.merged, self.bias)
        base = F.linear(x, self.weight, self.bias)
        delta = F.linear(F.linear(x, update.A), update.B)
        # α = r (the default) gives scaling 1: skipping the multiply is exact and saves an op
        # and an autograd node per LoRA linear.
        return base + (delta if update.scaling == 1.0 else update.scaling * delta)
