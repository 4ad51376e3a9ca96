"""Conditional layer norm: a standard LayerNorm whose γ and β come from a weight source."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

LAYER_NORM_EPS = 1e-5  # nn.LayerNorm's default, as in the authors' F.layer_norm call


def conditional_layer_norm(x: Tensor, weight: Tensor, bias: Tensor, eps: float = LAYER_NORM_EPS) -> Tensor:
    """``LayerNorm(x)`` over the last axis with generated ``weight`` (γ) and ``bias`` (β)."""
    return F.layer_norm(x, (x.shape[-1],), weight=weight, bias=bias, eps=eps)
