"""The Hyperdecoder's adapter generator and its adapters (Ivison & Peters 2022, §2).

Decoder adapters are generated *per example* from the encoded input:

    e = MLP(masked_mean(encoder last hidden state))              (d → d → d, ReLU)
    h_l = ReLU(W · [e ; layer_embedding(l)] + c)                  (d + 10 → 128)
    down_l, down_bias_l, up_l, up_bias_l = heads(h_l)             (128 → 64·d, 64, d·64, d)

The adapters run in parallel to T5's feed-forward sub-layer (``h + FFN(LN(h)) + A(h)``, see
:func:`parallel_adapter`) with a ReLU bottleneck and no internal layer norm, as in the authors'
``T5LayerFFWithAdapter`` / ``AdapterLayer``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def masked_mean(hidden: Tensor, mask: Tensor) -> Tensor:
    """Mean over the non-padding tokens: ``[B, T, d]``, ``[B, T]`` → ``[B, d]``."""
    mask = mask.to(hidden.dtype).unsqueeze(-1)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)


def _hyperfanin(linear: nn.Linear, fan_in: int) -> None:
    # Hyperfan-in (Chang et al. 2020), scaled by 1e-3 as in the authors' code: generated adapters
    # start near zero, so the frozen T5 starts intact.
    bound = 1e-3 * math.sqrt(3 / fan_in)
    nn.init.uniform_(linear.weight, -bound, bound)
    nn.init.zeros_(linear.bias)


@dataclass
class ExampleAdapters:
    """Generated adapters of one batch: one adapter per (example, decoder layer)."""

    down: Tensor  # [L, B, b, d]
    down_bias: Tensor  # [L, B, b]
    up: Tensor  # [L, B, d, b]
    up_bias: Tensor  # [L, B, d]

    def apply(self, x: Tensor, layer: int) -> Tensor:
        """``U_l,i · ReLU(D_l,i · x_i + b) + c`` for every example ``i`` of ``x`` (``[B, T, d]``)."""
        z = torch.einsum("btd,bkd->btk", x, self.down[layer]) + self.down_bias[layer][:, None]
        return torch.einsum("btk,bdk->btd", F.relu(z), self.up[layer]) + self.up_bias[layer][:, None]


class AdapterGenerator(nn.Module):
    """Turns the pooled encoder output into every decoder layer's adapter weights, per example."""

    def __init__(
        self,
        *,
        d_model: int,
        n_layers: int,
        bottleneck: int,
        hidden: int,
        layer_embedding_dim: int,
        process_input: bool,
    ) -> None:
        super().__init__()
        self.d_model, self.n_layers, self.bottleneck = d_model, n_layers, bottleneck
        self.mlp = (
            nn.Sequential(nn.Linear(d_model, d_model), nn.ReLU(), nn.Linear(d_model, d_model))
            if process_input
            else nn.Identity()
        )
        self.layer_embeddings = nn.Embedding(n_layers, layer_embedding_dim)
        self.hidden = nn.Sequential(nn.Linear(d_model + layer_embedding_dim, hidden), nn.ReLU())
        self.down = nn.Linear(hidden, bottleneck * d_model)
        self.down_bias = nn.Linear(hidden, bottleneck)
        self.up = nn.Linear(hidden, d_model * bottleneck)
        self.up_bias = nn.Linear(hidden, d_model)
        _hyperfanin(self.down, hidden * d_model)
        _hyperfanin(self.up, hidden * bottleneck)
        _hyperfanin(self.down_bias, hidden)
        _hyperfanin(self.up_bias, hidden)

    def forward(self, encoder_hidden: Tensor, encoder_mask: Tensor) -> ExampleAdapters:
        e = self.mlp(masked_mean(encoder_hidden, encoder_mask))  # [B, d]
        B, L = e.shape[0], self.n_layers
        x = torch.cat(
            [e[None].expand(L, -1, -1), self.layer_embeddings.weight[:, None].expand(-1, B, -1)], dim=-1
        )  # [L, B, d + e]
        h = self.hidden(x)
        d, b = self.d_model, self.bottleneck
        return ExampleAdapters(
            down=self.down(h).view(L, B, b, d),
            down_bias=self.down_bias(h),
            up=self.up(h).view(L, B, d, b),
            up_bias=self.up_bias(h),
        )


class SharedAdapter(nn.Module):
    """An ordinary (static) bottleneck adapter, shared by all tasks: ``U · ReLU(D x + b) + c``.

    Initialised near zero (Xavier, gain 1e-4), as the authors' ``adapter_*_manual`` layers.
    """

    def __init__(self, d_model: int, bottleneck: int) -> None:
        super().__init__()
        self.down = nn.Linear(d_model, bottleneck)
        self.up = nn.Linear(bottleneck, d_model)
        for linear in (self.down, self.up):
            nn.init.xavier_uniform_(linear.weight, gain=1e-4)
            nn.init.zeros_(linear.bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.up(F.relu(self.down(x)))


def parallel_adapter(
    ff_layer: nn.Module, hidden_states: Tensor, ff_output: Tensor, adapter, *, norm_input: bool
) -> Tensor:
    """``T5LayerFF`` output plus the adapter run beside it: ``h + FFN(LN(h)) + A(h)``.

    ``adapter`` maps ``[B, T, d]`` → ``[B, T, d]``. With ``norm_input`` the adapter sees ``LN(h)``
    (the authors' ``adapter_norm_input``, off by default: it sees the residual stream ``h``).
    """
    x = ff_layer.layer_norm(hidden_states) if norm_input else hidden_states
    return ff_output + adapter(x)
