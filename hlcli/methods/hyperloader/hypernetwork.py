"""The HyperNetwork of HyperLoader (arXiv 2407.01411, §3.1), generic over the backbone.

One HyperNetwork serves one stack of Transformer blocks (T5's encoder, T5's decoder, a BERT
encoder). It turns ``(task, layer, position)`` into the weights of that block's adapters,
LoRA updates and post-adapter layer norms:

    x = [task embedding ; layer embedding ; position embedding]        (64 + 64 + 64)
    h = LayerNorm(W2 · relu(W1 · x + c1) + c2)                         (192 → 128 → 64)
    adapter / LoRA / layer-norm weights = generator Linears applied to h

Positions (:data:`POSITIONS`): 0 adapter after the feed-forward sub-layer, 1 adapter after
self-attention, 2/3 LoRA on self-attention q/v, 4/5 LoRA on cross-attention q/v (decoders).
The generators are shared by all layers and by all positions of one kind (the two adapter
positions share the adapter generators, the LoRA positions share A's and B's).

The reference implementation regenerates every weight inside every block on every forward.
Here :meth:`HyperNetwork.forward` computes everything a stack needs in one batched pass: the
``[L·P, 192]`` input matrix goes through the projector once and each generator runs once over
the rows of its kind. The result is a :class:`GeneratedWeights` stacked over layers.

Nothing here knows about T5 or BERT: the colleague modules that inject the weights do.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Sequence

import torch
from torch import Tensor, nn

from hlcli.errors import UsageError
from hlcli.methods.common import check_flags, check_positive_ints, help_field

POSITIONS: tuple[str, ...] = (
    "adapter_ffn",  # 0: adapter after the feed-forward sub-layer
    "adapter_self_attention",  # 1: adapter after the self-attention sub-layer
    "lora_self_q",  # 2
    "lora_self_v",  # 3
    "lora_cross_q",  # 4 (decoder only)
    "lora_cross_v",  # 5 (decoder only)
)
ADAPTER_POSITIONS: tuple[int, ...] = (0, 1)
LORA_POSITIONS: tuple[int, ...] = (2, 3, 4, 5)
# The authors' projector LayerNorm (jgermanob/hyperformer, adapters/adapter_modeling.py:
# ``nn.LayerNorm(projected_task_embedding_dim, eps=1e-6)``), not nn.LayerNorm's default 1e-5. At
# their N(0, 0.01) projector init the projector output has std ~0.01, so eps is not negligible
# against its variance (1e-4): the two eps values give projected embeddings up to 0.33 apart.
PROJECTOR_LAYER_NORM_EPS = 1e-6
# Std of every Linear of the projector and of the generators at init (biases 0): the authors'
# ``init_linear_layer`` (adapters/adapter_utils.py), used by their ``linear_layer`` everywhere.
INIT_STD = 0.01


@dataclass
class HyperNetworkConfig:
    """Sizes and switches of the hypernetwork (defaults: the authors' released code)."""

    task_embedding_dim: int = help_field("Size of the learned task embedding.", default=64)
    layer_embedding_dim: int = help_field("Size of the layer-id embedding.", default=64)
    position_embedding_dim: int = help_field("Size of the position (adapter/LoRA slot) embedding.", default=64)
    projector_hidden_dim: int = help_field("Hidden size of the projector MLP (192 → this → hyper_dim).", default=128)
    hyper_dim: int = help_field("Size of the projected embedding fed to every weight generator.", default=64)
    reduction_factor: int = help_field("Adapter bottleneck = d_model / reduction_factor.", default=32)
    lora_rank: int = help_field("Rank r of the generated LoRA updates.", default=8)
    lora_alpha: float = help_field("LoRA alpha; the update is scaled by alpha / rank.", default=8.0)
    use_adapters: bool = help_field(
        "Generate adapters after the feed-forward and self-attention sub-layers.", default=True
    )
    use_lora: bool = help_field("Generate LoRA updates of the attention q and v projections.", default=True)
    use_layer_norm: bool = help_field(
        "Generate the post-adapter layer norm (conditional LN); only meaningful with adapters.", default=True
    )

    def __post_init__(self) -> None:
        check_positive_ints(
            self, "task_embedding_dim", "layer_embedding_dim", "position_embedding_dim", "projector_hidden_dim",
            "hyper_dim", "reduction_factor", "lora_rank",
        )  # fmt: skip
        if isinstance(self.lora_alpha, bool) or not isinstance(self.lora_alpha, (int, float)) or self.lora_alpha <= 0:
            raise UsageError(f"lora_alpha must be a positive number, got {self.lora_alpha!r}")
        self.lora_alpha = float(self.lora_alpha)
        check_flags(self, "use_adapters", "use_lora", "use_layer_norm")
        if not (self.use_adapters or self.use_lora):
            raise UsageError("use_adapters and use_lora are both off: the hypernetwork would generate nothing")

    @property
    def lora_scaling(self) -> float:
        return self.lora_alpha / self.lora_rank


@dataclass
class GeneratedWeights:
    """Everything one stack's blocks need for one task, stacked over layers.

    Adapter slots: 0 = after the feed-forward sub-layer (position 0), 1 = after self-attention
    (position 1). LoRA slot ``j`` is position ``lora_positions[j]`` (2, 3, then 4, 5 in a
    decoder). ``F.linear`` conventions: a weight is ``[out, in]``.
    """

    adapter_down: Tensor | None = None  # [L, 2, b, d]
    adapter_down_bias: Tensor | None = None  # [L, 2, b]
    adapter_up: Tensor | None = None  # [L, 2, d, b]
    adapter_up_bias: Tensor | None = None  # [L, 2, d]
    ln_weight: Tensor | None = None  # [L, 2, d]
    ln_bias: Tensor | None = None  # [L, 2, d]
    lora_A: Tensor | None = None  # [L, n_lora_positions, r, d_model]
    lora_B: Tensor | None = None  # [L, n_lora_positions, inner, r]
    lora_positions: tuple[int, ...] = ()
    lora_scaling: float = 1.0

    def __post_init__(self) -> None:
        self._views: dict[str, tuple[Tensor, ...]] = {}  # not a field: detached() copies start empty

    def at(self, name: str, layer: int, slot: int) -> Tensor:
        """``getattr(self, name)[layer, slot]`` as one of the views of a single ``unbind``.

        Indexing the stack once per block would put one ``SelectBackward`` per use into the
        graph, and each of them builds a zero tensor the size of the whole stack in the backward
        (865 such nodes and as many memsets and copies per T5-base step on a GPU); one
        ``UnbindBackward`` stacks the gradients of every layer and slot at once.
        """
        views = self._views.get(name)
        stacked = getattr(self, name)
        if views is None:
            views = self._views[name] = stacked.flatten(0, 1).unbind(0)
        return views[layer * stacked.shape[1] + slot]

    def lora_slot(self, position: int) -> int:
        """Index into the second axis of ``lora_A``/``lora_B`` for a LoRA position (2..5)."""
        return self.lora_positions.index(position)

    def detached(self) -> "GeneratedWeights":
        """A copy holding detached tensors (inference caches keep no autograd graph)."""
        values = {
            f.name: (v.detach() if isinstance(v := getattr(self, f.name), Tensor) else v) for f in fields(self)
        }
        return GeneratedWeights(**values)


def _generated_positions(
    config: HyperNetworkConfig, n_positions: int, used_positions: Sequence[int] | None
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(adapter positions, LoRA positions) a hypernetwork generates: the used ones of each enabled kind."""
    if used_positions is None:
        used_positions = range(n_positions)
    used = sorted(set(used_positions))
    if any(not 0 <= p < n_positions for p in used):
        raise UsageError(f"used positions {used} outside the {n_positions}-row position table")
    adapter_positions = tuple(p for p in used if p in ADAPTER_POSITIONS) if config.use_adapters else ()
    lora_positions = tuple(p for p in used if p in LORA_POSITIONS) if config.use_lora else ()
    if config.use_adapters and adapter_positions != ADAPTER_POSITIONS:
        raise UsageError(f"adapters need positions {ADAPTER_POSITIONS}, got {adapter_positions}")
    if not adapter_positions + lora_positions:
        raise UsageError("the hypernetwork has no position to generate weights for")
    return adapter_positions, lora_positions


class HyperNetwork(nn.Module):
    """Generates one stack's adapter, LoRA and layer-norm weights from a task embedding.

    ``n_positions`` is the size of the position-embedding table. ``used_positions`` (default:
    every position of an enabled kind below ``n_positions``) are the rows actually generated: a
    T5 encoder keeps the decoder's 6-row table (as the authors' code does) but only uses 0–3.
    """

    def __init__(
        self,
        config: HyperNetworkConfig,
        *,
        n_layers: int,
        d_model: int,
        attn_inner_dim: int,
        n_positions: int,
        used_positions: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        if n_layers < 1 or d_model < 1 or attn_inner_dim < 1:
            raise UsageError(
                f"bad stack shape: n_layers={n_layers}, d_model={d_model}, attn_inner_dim={attn_inner_dim}"
            )
        if not 1 <= n_positions <= len(POSITIONS):
            raise UsageError(f"n_positions must be in 1..{len(POSITIONS)}, got {n_positions}")
        bottleneck = d_model // config.reduction_factor
        if config.use_adapters and bottleneck < 1:
            raise UsageError(
                f"reduction_factor {config.reduction_factor} leaves no adapter bottleneck for d_model {d_model}",
                expected=f"reduction_factor <= {d_model}",
            )
        self.config = config
        self.n_layers, self.d_model, self.inner_dim, self.bottleneck = n_layers, d_model, attn_inner_dim, bottleneck
        self.adapter_positions, self.lora_positions = _generated_positions(config, n_positions, used_positions)
        rows = self.adapter_positions + self.lora_positions
        self.register_buffer("_rows", torch.tensor(rows, dtype=torch.long), persistent=False)

        self.layer_embeddings = nn.Embedding(n_layers, config.layer_embedding_dim)
        self.position_embeddings = nn.Embedding(n_positions, config.position_embedding_dim)
        in_dim = config.task_embedding_dim + config.layer_embedding_dim + config.position_embedding_dim
        self.projector = nn.Sequential(
            nn.Linear(in_dim, config.projector_hidden_dim),
            nn.ReLU(),
            nn.Linear(config.projector_hidden_dim, config.hyper_dim),
            nn.LayerNorm(config.hyper_dim, eps=PROJECTOR_LAYER_NORM_EPS),
        )
        h = config.hyper_dim
        if config.use_adapters:
            self.adapter_down = nn.Linear(h, bottleneck * d_model)
            self.adapter_down_bias = nn.Linear(h, bottleneck)
            self.adapter_up = nn.Linear(h, d_model * bottleneck)
            self.adapter_up_bias = nn.Linear(h, d_model)
            if config.use_layer_norm:
                self.ln_weight = nn.Linear(h, d_model)
                self.ln_bias = nn.Linear(h, d_model)
        if config.use_lora:
            self.lora_A = nn.Linear(h, config.lora_rank * d_model, bias=False)
            self.lora_B = nn.Linear(h, attn_inner_dim * config.lora_rank, bias=False)
        self.reset_generators()

    def reset_generators(self) -> None:
        """The authors' initialisation: the projector's two Linears and the generators ~ N(0, 0.01)
        with zero bias (``init_linear_layer``); LoRA A Kaiming-uniform, B zero (ΔW = 0 at step 0).

        The projector first, as the authors' ``TaskHyperNet`` is built before the generators. Its
        PyTorch default init (std 0.042 / 0.051) would make the projected embedding, before its
        LayerNorm, 16× larger and so each Adam step on the projector 4–5× smaller relatively.
        """
        for linear in (self.projector[0], self.projector[2]):
            nn.init.normal_(linear.weight, std=INIT_STD)
            nn.init.zeros_(linear.bias)
        for name in ("adapter_down", "adapter_down_bias", "adapter_up", "adapter_up_bias", "ln_weight", "ln_bias"):
            module = getattr(self, name, None)
            if module is not None:
                nn.init.normal_(module.weight, std=INIT_STD)
                nn.init.zeros_(module.bias)
        if self.config.use_lora:
            nn.init.kaiming_uniform_(self.lora_A.weight, a=math.sqrt(5))
            nn.init.zeros_(self.lora_B.weight)

    def embed(self, task_embedding: Tensor) -> Tensor:
        """Projected embeddings of every (layer, generated position): ``[L, P, hyper_dim]``."""
        if task_embedding.dim() != 1 or task_embedding.shape[0] != self.config.task_embedding_dim:
            raise ValueError(
                f"task_embedding must have shape [{self.config.task_embedding_dim}], got {tuple(task_embedding.shape)}"
            )
        n_rows = self._rows.shape[0]
        layers = self.layer_embeddings.weight  # [L, e]
        positions = self.position_embeddings(self._rows)  # [P, e]
        x = torch.cat(
            [
                task_embedding.expand(self.n_layers, n_rows, -1),
                layers[:, None, :].expand(-1, n_rows, -1),
                positions[None, :, :].expand(self.n_layers, -1, -1),
            ],
            dim=-1,
        )
        return self.projector(x)

    def forward(self, task_embedding: Tensor) -> GeneratedWeights:
        h = self.embed(task_embedding)  # [L, P, hyper_dim]
        L, d, b, r = self.n_layers, self.d_model, self.bottleneck, self.config.lora_rank
        out = GeneratedWeights(lora_positions=self.lora_positions, lora_scaling=self.config.lora_scaling)
        n_adapter = len(self.adapter_positions)
        if n_adapter:
            ha = h[:, :n_adapter]
            out.adapter_down = self.adapter_down(ha).view(L, n_adapter, b, d)
            out.adapter_down_bias = self.adapter_down_bias(ha)
            out.adapter_up = self.adapter_up(ha).view(L, n_adapter, d, b)
            out.adapter_up_bias = self.adapter_up_bias(ha)
            if self.config.use_layer_norm:
                out.ln_weight = self.ln_weight(ha)
                out.ln_bias = self.ln_bias(ha)
        if self.lora_positions:
            hl = h[:, n_adapter:]
            n_lora = len(self.lora_positions)
            out.lora_A = self.lora_A(hl).view(L, n_lora, r, d)
            out.lora_B = self.lora_B(hl).view(L, n_lora, self.inner_dim, r)
        return out
