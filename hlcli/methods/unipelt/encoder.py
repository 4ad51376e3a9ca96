"""UniPELT (Mao et al. 2022) on a frozen BERT-family encoder: gated LoRA, adapter and prefix-tuning.

Per layer, each submodule ``m`` is scaled by its gate ``G_m = sigmoid(Linear_m(x))`` averaged over
the input's (non-padding) tokens, so a module can be switched off per input:

* LoRA on query and value: ``W0 x + G_L · (α/r) B A x`` (gate input: ``x``, the projection's input);
* a bottleneck adapter on the feed-forward output (``BertOutput``: dense → dropout → **adapter** →
  LayerNorm(h + residual)): ``h + G_A · U ReLU(D h)`` (gate input: ``h``);
* prefix-tuning: ``prefix_length`` key/value vectors per layer, prepended to the attention's keys
  and values, scaled by ``G_P`` computed from the layer input (our reading of "G_P is applied to
  the prefix vectors"). The vectors come from the reparameterisation
  ``Embedding(P, d) → Linear(d, 512) → tanh → Linear(512, 2·L·d)``; after training only its output
  would be needed, but it stays in the model (and the counts).

The gates average over non-padding tokens (the original averages over all positions, padding
included, which makes a prediction depend on the rest of its batch).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hlcli.compat import bert_attention_result
from hlcli.errors import UsageError
from hlcli.methods.base import TaskSpec
from hlcli.methods.plain.encoder import PlainEncoderTagger
from hlcli.methods.unipelt.config import UniPELTConfig


class _Context:
    """Per-forward state shared by the patched layers: token mask and prefix vectors."""

    def __init__(self) -> None:
        self.mask: Tensor | None = None  # [B, T]
        self.prefix: Tensor | None = None  # [L, 2, H, P, head_dim]

    def gate(self, linear: nn.Linear | None, x: Tensor) -> Tensor | float:
        """``mean_t sigmoid(linear(x_t))`` over non-padding tokens: ``[B, 1, 1]`` (1.0 without gates)."""
        if linear is None:
            return 1.0
        g = torch.sigmoid(linear(x))  # [B, T, 1]
        if self.mask is None:
            return g.mean(1, keepdim=True)
        m = self.mask.to(g.dtype)[..., None]
        return (g * m).sum(1, keepdim=True) / m.sum(1, keepdim=True).clamp(min=1)


def _gate(d: int, enabled: bool) -> nn.Linear | None:
    return nn.Linear(d, 1) if enabled else None


class GatedLoRALinear(nn.Module):
    """A frozen Linear (same ``weight``/``bias`` names) plus a gated LoRA update."""

    def __init__(self, base: nn.Linear, context: _Context, *, rank: int, alpha: float, gated: bool) -> None:
        super().__init__()
        self.weight, self.bias = base.weight, base.bias
        self.context, self.scaling = context, alpha / rank
        self.lora_A = nn.Parameter(torch.empty(rank, base.in_features))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, rank))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        self.gate = _gate(base.in_features, gated)

    def forward(self, x: Tensor) -> Tensor:
        update = F.linear(F.linear(x, self.lora_A), self.lora_B)
        return F.linear(x, self.weight, self.bias) + self.context.gate(self.gate, x) * self.scaling * update


class GatedAdapterOutput(nn.Module):
    """``BertOutput`` with a gated bottleneck adapter before the residual LayerNorm (same submodule names)."""

    def __init__(self, base: nn.Module, context: _Context, *, bottleneck: int, gated: bool) -> None:
        super().__init__()
        self.dense, self.dropout, self.LayerNorm = base.dense, base.dropout, base.LayerNorm
        d = base.LayerNorm.normalized_shape[0]
        self.context = context
        self.adapter_down = nn.Linear(d, bottleneck)
        self.adapter_up = nn.Linear(bottleneck, d)
        nn.init.normal_(self.adapter_down.weight, std=0.01)
        nn.init.zeros_(self.adapter_down.bias)
        nn.init.zeros_(self.adapter_up.weight)  # identity at start
        nn.init.zeros_(self.adapter_up.bias)
        self.gate = _gate(d, gated)

    def forward(self, hidden_states: Tensor, input_tensor: Tensor) -> Tensor:
        h = self.dropout(self.dense(hidden_states))
        h = h + self.context.gate(self.gate, h) * self.adapter_up(F.relu(self.adapter_down(h)))
        return self.LayerNorm(h + input_tensor)


class PrefixSelfAttention(nn.Module):
    """``BertSelfAttention`` (same ``query``/``key``/``value`` names) with gated prefix keys/values."""

    def __init__(self, base: nn.Module, context: _Context, *, layer: int, gated: bool) -> None:
        super().__init__()
        self.query, self.key, self.value, self.dropout = base.query, base.key, base.value, base.dropout
        self.num_attention_heads, self.attention_head_size = base.num_attention_heads, base.attention_head_size
        self.context, self.layer = context, layer
        self.gate = _gate(base.query.in_features, gated)

    def forward(
        self, hidden_states: Tensor, attention_mask: Tensor | None = None, **kwargs: Any
    ) -> tuple[Tensor, None]:
        B, T, _ = hidden_states.shape
        shape = (B, T, self.num_attention_heads, self.attention_head_size)
        q, k, v = (proj(hidden_states).view(shape).transpose(1, 2) for proj in (self.query, self.key, self.value))
        prefix = self.context.prefix
        if prefix is not None:
            gate = self.context.gate(self.gate, hidden_states)
            gate = gate[..., None] if isinstance(gate, Tensor) else gate  # [B, 1, 1, 1]
            pk, pv = (gate * prefix[self.layer, i].expand(B, -1, -1, -1) for i in (0, 1))
            k, v = torch.cat([pk, k], dim=2), torch.cat([pv, v], dim=2)
            attention_mask = _extend_mask(attention_mask, prefix.shape[-2])
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=attention_mask, dropout_p=self.dropout.p if self.training else 0.0
        )
        return bert_attention_result(out.transpose(1, 2).reshape(B, T, -1))


def _extend_mask(mask: Tensor | None, n_prefix: int) -> Tensor | None:
    """Let every query see the prefix: pad a 4-D bool/additive mask on the key axis."""
    if mask is None:
        return None
    fill = True if mask.dtype == torch.bool else 0.0
    pad = torch.full((*mask.shape[:-1], n_prefix), fill, dtype=mask.dtype, device=mask.device)
    return torch.cat([pad, mask], dim=-1)


class PrefixEncoder(nn.Module):
    """Prefix reparameterisation: ``Embedding(P, d) → Linear(d, h) → tanh → Linear(h, 2·L·d)``."""

    def __init__(self, *, prefix_length: int, n_layers: int, d_model: int, n_heads: int, hidden: int) -> None:
        super().__init__()
        self.shape = (prefix_length, n_layers, 2, n_heads, d_model // n_heads)
        self.embedding = nn.Embedding(prefix_length, d_model)
        self.mlp = nn.Sequential(nn.Linear(d_model, hidden), nn.Tanh(), nn.Linear(hidden, 2 * n_layers * d_model))

    def forward(self) -> Tensor:
        """``[L, 2 (key, value), H, P, head_dim]``."""
        return self.mlp(self.embedding.weight).view(self.shape).permute(1, 2, 3, 0, 4)


class UniPELTEncoderModel(PlainEncoderTagger):
    """Single-task UniPELT tagger: frozen encoder; LoRA, adapter, prefix, gates and the head train."""

    method = "unipelt"

    def __init__(self, config: UniPELTConfig, backbone: nn.Module, tokenizer: Any, tasks: Sequence[TaskSpec]) -> None:
        super().__init__(config, backbone, tokenizer, tasks)
        backbone.requires_grad_(False)
        hidden = backbone.config.hidden_size
        bottleneck = hidden // config.reduction_factor
        if bottleneck < 1:
            raise UsageError(
                f"reduction_factor {config.reduction_factor} leaves no adapter bottleneck for hidden size {hidden}"
            )
        self._context = _Context()
        layers = backbone.encoder.layer
        for i, layer in enumerate(layers):
            attention = layer.attention
            if config.use_prefix:
                attention.self = PrefixSelfAttention(attention.self, self._context, layer=i, gated=config.use_gates)
            for name in ("query", "value"):
                setattr(
                    attention.self,
                    name,
                    GatedLoRALinear(
                        getattr(attention.self, name), self._context, rank=config.lora_rank, alpha=config.lora_alpha,
                        gated=config.use_gates,
                    ),
                )
            gated = config.use_gates
            layer.output = GatedAdapterOutput(layer.output, self._context, bottleneck=bottleneck, gated=gated)
        self.prefix_encoder = (
            PrefixEncoder(
                prefix_length=config.prefix_length,
                n_layers=len(layers),
                d_model=hidden,
                n_heads=backbone.config.num_attention_heads,
                hidden=config.prefix_hidden_dim,
            )
            if config.use_prefix
            else None
        )

    def forward(self, task: str, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        self._context.mask = attention_mask
        self._context.prefix = self.prefix_encoder() if self.prefix_encoder is not None else None
        try:
            return super().forward(task, input_ids, attention_mask)
        finally:
            self._context.mask = self._context.prefix = None
