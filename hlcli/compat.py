"""Every use hlcli makes of a private (or module-internal) transformers / torch / datasets API, in one place.

Each entry says which versions it was checked on and what it relies on; ``tests/test_compat.py``
checks each assumption directly against the installed libraries and fails with
"transformers X changed Y: hlcli/compat.py <entry> needs updating" when a release breaks one.
``pyproject.toml`` pins transformers and torch to the versions these checks passed on.

Checked on: transformers 5.24.0 and 5.25.0 (the latter with ``USE_HUB_KERNELS=0``: by default 5.25
replaces layers with Hub kernels at load, which is why pyproject.toml stops at 5.24), torch 2.13.0 (CPU).

Entries:

* :func:`cache_keyword` — the KV-cache keyword of a transformers ``forward`` (``cache`` or ``past_key_values``);
* :func:`t5_sublayer_kind` — ``isinstance`` against ``modeling_t5.T5LayerFF`` / ``T5LayerSelfAttention`` /
  ``T5LayerCrossAttention`` (where adapters and LoRA go in a T5 block);
* :func:`t5_relative_attention`, :func:`t5_relative_bias`, :func:`t5_position_bias_override` — T5's relative
  position bias: ``T5Attention.compute_bias`` (replaced on an instance) and ``_relative_position_bucket``;
* :func:`t5_decoder_output_scale` — how ``T5ForConditionalGeneration`` scales decoder states before ``lm_head``;
* :func:`register_attention`, :func:`attention_function`, :func:`attention_implementation` — transformers'
  global ``AttentionInterface`` / ``AttentionMaskInterface`` registries and ``config._attn_implementation``;
* :func:`bert_attention_result` — the call and return conventions of ``modeling_bert``'s attention and
  output sub-layers, which the encoder methods replace or hook;
* :func:`parameter_versions` — torch's ``Tensor._version`` (in-place modification counter) as a cache key;
* :func:`dataset_fingerprint` — datasets' ``Dataset._fingerprint`` (a content hash) as a data pin.

Importing this module imports none of those libraries (``hlcli.data`` uses it without torch); each
entry imports what it needs.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

if TYPE_CHECKING:
    from torch import Tensor, nn


# -- KV cache keyword ------------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def cache_keyword(module_type: type) -> str:
    """The KV-cache keyword of ``module_type.forward``: ``cache`` in current releases, where
    ``past_key_values`` warns (FutureWarning, removed in 5.40); older 5.x releases know only the old name.

    Relies on: the keyword being a named parameter of ``forward`` (read with ``inspect.signature``).
    Checked on transformers 5.24 and 5.25 (``T5Stack``, ``T5ForConditionalGeneration``: ``cache``)."""
    return "cache" if "cache" in inspect.signature(module_type.forward).parameters else "past_key_values"


# -- T5 block layout -------------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def _t5_sublayers() -> tuple[tuple[type, str], ...]:
    # modeling_t5's sub-layer classes (not exported at the top level of transformers).
    from transformers.models.t5 import modeling_t5

    return (
        (modeling_t5.T5LayerFF, "feed_forward"),
        (modeling_t5.T5LayerSelfAttention, "self_attention"),
        (modeling_t5.T5LayerCrossAttention, "cross_attention"),
    )


def t5_sublayer_kind(module: nn.Module) -> str | None:
    """``"feed_forward"``, ``"self_attention"`` or ``"cross_attention"`` for an entry of a T5 block's
    ``layer`` list (None for anything else).

    Relies on: ``modeling_t5.T5LayerFF`` (its ``DenseReluDense`` and ``layer_norm``), ``T5LayerSelfAttention``
    (``SelfAttention``) and ``T5LayerCrossAttention`` (``EncDecAttention``), each with a ``q`` and a ``v``
    ``nn.Linear``. Checked on transformers 5.24 and 5.25."""
    for cls, kind in _t5_sublayers():
        if isinstance(module, cls):
            return kind
    return None


# -- T5 relative position bias ---------------------------------------------------------------------------------------
def t5_relative_attention(stack: nn.Module) -> nn.Module | None:
    """Block 0's self-attention of a T5 stack when it holds the relative position bias (the only
    attention that computes it; the others reuse its result), else None (not a T5 layout).

    Relies on: ``stack.block[0].layer[0].SelfAttention.has_relative_attention_bias``. Checked on 5.24, 5.25."""
    attention = getattr(getattr(stack, "block", [None])[0], "layer", [None])[0]
    attention = getattr(attention, "SelfAttention", None)
    return attention if getattr(attention, "has_relative_attention_bias", False) else None


def t5_relative_bias(attention: nn.Module, relative_position: Tensor, *, bidirectional: bool) -> Tensor:
    """T5's bias for ``relative_position`` (memory − query, ``[batch, query, key]``): ``[batch, heads, query, key]``.

    Relies on: the private static method ``T5Attention._relative_position_bucket(relative_position,
    bidirectional, num_buckets, max_distance)`` and the ``relative_attention_bias`` embedding
    (``[buckets, heads]``). Checked on transformers 5.24 and 5.25."""
    bucket = attention._relative_position_bucket(
        relative_position,
        bidirectional=bidirectional,
        num_buckets=attention.relative_attention_num_buckets,
        max_distance=attention.relative_attention_max_distance,
    )
    return attention.relative_attention_bias(bucket).permute(0, 3, 1, 2)


@contextlib.contextmanager
def t5_position_bias_override(attention: nn.Module, bias: Callable[[int, int], Tensor]) -> Iterator[None]:
    """While active, ``attention`` (a T5Attention with the relative bias) takes its position bias from
    ``bias(query_length, key_length)`` instead of computing it from consecutive positions.

    Relies on: ``T5Attention.forward`` calling ``self.compute_bias(query_length, key_length, device=...,
    past_seen_tokens=...)`` when no ``position_bias`` is passed (block 0), with that private signature
    (5.24's; the replacement accepts and ignores ``device``/``past_seen_tokens``). An instance attribute
    shadows the class's method; deleting it restores the method. Checked on transformers 5.24 and 5.25."""

    def compute_bias(query_length: int, key_length: int, device=None, past_seen_tokens=0) -> Tensor:
        return bias(query_length, key_length)

    attention.compute_bias = compute_bias
    try:
        yield
    finally:
        del attention.compute_bias  # back to the class's method


# -- T5 decoder output scaling ---------------------------------------------------------------------------------------
def t5_decoder_output_scale(config) -> float:
    """The factor ``T5ForConditionalGeneration`` multiplies the last decoder states by before ``lm_head``.

    Relies on: ``config.scale_decoder_outputs`` (5.x; releases without it scaled when the embeddings
    are tied) meaning ``states * d_model ** -0.5``. Checked on transformers 5.24 and 5.25."""
    return config.d_model**-0.5 if getattr(config, "scale_decoder_outputs", config.tie_word_embeddings) else 1.0


# -- attention implementations ---------------------------------------------------------------------------------------
def attention_function(name: str) -> Callable:
    """transformers' attention function registered as ``name`` (e.g. ``"sdpa"``).

    Relies on: ``AttentionInterface()[name]`` returning the function T5Attention calls as
    ``f(module, query, key, value, mask, dropout=, scaling=, position_bias=, **kwargs) -> (output, weights)``.
    Checked on transformers 5.24 and 5.25."""
    from transformers import AttentionInterface

    return AttentionInterface()[name]


def register_attention(name: str, function: Callable, *, masks_as: str) -> None:
    """Register ``function`` process-wide as attention implementation ``name``, its masks built as
    for ``masks_as`` (transformers builds no mask at all for a name it has no mask function for:
    every padding token would be attended to).

    Relies on: the global registries ``AttentionInterface.register`` and
    ``AttentionMaskInterface.register`` / ``AttentionMaskInterface()[name]``. Checked on 5.24, 5.25."""
    from transformers import AttentionInterface, AttentionMaskInterface

    AttentionInterface.register(name, function)
    AttentionMaskInterface.register(name, AttentionMaskInterface()[masks_as])


def attention_implementation(config) -> str:
    """The attention implementation a loaded model uses (``"sdpa"``, ``"eager"``, a registered name).

    Relies on: the private ``config._attn_implementation`` (no public getter on the config; a model's
    ``set_attn_implementation`` is the public setter). Checked on transformers 5.24 and 5.25."""
    return config._attn_implementation


# -- BERT-family encoder layers --------------------------------------------------------------------------------------
def bert_attention_result(output: Tensor) -> tuple[Tensor, None]:
    """What a module standing in for ``BertSelfAttention`` returns: its output ``[batch, tokens, d]``
    and no attention weights.

    Relies on (``modeling_bert`` internals, used by methods/unipelt/encoder.py, which replaces
    ``BertSelfAttention`` and ``BertOutput``, and by methods/hyperloader/encoder.py, which hooks the
    ``dropout`` of ``BertSelfOutput`` / ``BertOutput``): ``BertAttention.forward`` calling
    ``self.self(hidden_states, attention_mask=..., **kwargs)`` with a mask that is None or 4-D
    (``[batch, 1, query or 1, key]``, bool or additive float) and unpacking two values;
    ``BertSelfOutput`` / ``BertOutput`` computing ``LayerNorm(dropout(dense(h)) + input_tensor)``
    through submodules of those names, called as ``output(hidden_states, input_tensor)``. Checked on
    transformers 5.24 and 5.25 (BERT; RoBERTa, XLM-R and ELECTRA share the layout)."""
    return output, None


# -- torch -----------------------------------------------------------------------------------------------------------
def parameter_versions(parameters: Iterable[Tensor]) -> tuple[int, ...]:
    """Each tensor's in-place modification counter: a cache keyed on it is stale after any in-place
    change (an optimizer step, ``copy_``, ``add_``), without hashing the tensors.

    Relies on: torch's private ``Tensor._version``, bumped by every in-place op on the tensor
    (optimizers' ``step`` included). Checked on torch 2.13."""
    return tuple(p._version for p in parameters)


# -- datasets --------------------------------------------------------------------------------------------------------
def dataset_fingerprint(dataset: Any) -> str:
    """A pin of a loaded ``datasets.Dataset``'s content, recorded so that a later run can tell the data changed.

    Relies on: datasets' private ``Dataset._fingerprint`` (no public accessor): a hash equal for equal
    content, different for different content, and the same when a dataset saved with ``save_to_disk``
    is loaded again. Checked on datasets 5.2."""
    return dataset._fingerprint
