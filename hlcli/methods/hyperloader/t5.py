"""Injection of generated adapters / LoRA into a Hugging Face T5 (transformers 5.x modeling_t5).

Where each position sits in a T5 block (see :data:`~hypernetwork.POSITIONS`):

* 0 — adapter on ``T5LayerFF.DenseReluDense``'s output, i.e. before ``dropout`` and the residual;
* 1 — adapter on ``T5LayerSelfAttention.SelfAttention``'s output (same place, self-attention);
* 2/3 — LoRA on ``SelfAttention.q`` / ``.v``; 4/5 — LoRA on ``EncDecAttention.q`` / ``.v`` (decoder).

Adapters are forward hooks (module names and state-dict keys of T5 stay unchanged); q/v are
replaced by :class:`GeneratedLoRALinear`, which adopts the original weight Parameter. Both read
the weights of the current forward from an :class:`InjectionContext` owned by the model, so two
models in one process never see each other's weights.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Iterator

import torch
from torch import Tensor, nn

from hlcli.compat import attention_function, attention_implementation, register_attention, t5_sublayer_kind
from hlcli.methods.hyperloader.context import AdapterHook, InjectionContext, LoRALookup
from hlcli.methods.hyperloader.hypernetwork import GeneratedWeights, HyperNetworkConfig
from hlcli.methods.hyperloader.lora import GeneratedLoRALinear, lora_delta_weight
from hlcli.methods.hyperloader.weight_source import StackSpec

STACKS = ("encoder", "decoder")
ENCODER_POSITIONS = (0, 1, 2, 3)
DECODER_POSITIONS = (0, 1, 2, 3, 4, 5)


# T5's attention always carries an additive position bias, which SDPA takes as a float mask. On
# CUDA, torch then picks cuDNN's fused attention, which took 4-5 ms per call forward and as much
# backward on an H200 (issue 10: 107 ms of a 394 ms T5-base step; 174 ms with it off). So these
# models' attention is "sdpa" (this implementation calls exactly it) with cuDNN ruled out, and the
# memory-efficient kernel (or flash / math) runs instead; on a CPU nothing changes.
#
# How cuDNN is ruled out: torch has only a process-wide flag (``sdpa_kernel`` sets the same global
# flags), so the choice is scoped to the model's own work. Whether a model needs it is decided once,
# when it is placed on a device (``_apply``: ``.to()`` / ``.cuda()``); each forward / generate of a
# model on CUDA then runs inside :func:`cudnn_ruled_out`, which switches the flag off for as long as
# one such scope is open in any thread (a counter under a lock, so overlapping threads cannot leave
# it off or turn it back on under each other) and restores the user's setting when the last closes.
# The backward pass needs no scope: the kernel picked in forward records its own backward. Before,
# the flag was switched off for good at placement, and every later model of the process (another
# method in the same ``hl compare``) ran without cuDNN too: results depended on run order.
BIASED_ATTENTION = "hlcli_sdpa_no_cudnn"
_SDPA = attention_function("sdpa")


def biased_sdpa_attention(module: nn.Module, query: Tensor, key: Tensor, value: Tensor, attention_mask, **kwargs):
    """transformers' "sdpa" (the one entry every T5 attention of these models goes through)."""
    return _SDPA(module, query, key, value, attention_mask, **kwargs)


register_attention(BIASED_ATTENTION, biased_sdpa_attention, masks_as="sdpa")


def use_biased_attention(backbone: nn.Module) -> None:
    """Route every T5 attention of ``backbone`` through :func:`biased_sdpa_attention` when it
    would use SDPA (an "eager" backbone stays eager: same results either way, but eager was chosen)."""
    if attention_implementation(backbone.config) in ("sdpa", BIASED_ATTENTION):
        backbone.set_attn_implementation(BIASED_ATTENTION)


def needs_cudnn_ruled_out(backbone: nn.Module) -> bool:
    """The model's kernel choice, made when it is placed on a device (see the comment above)."""
    if attention_implementation(backbone.config) != BIASED_ATTENTION:
        return False
    return any(p.is_cuda for p in backbone.parameters())


class _CudnnScopes:
    """Open :func:`cudnn_ruled_out` scopes of the process, and the flag they found."""

    lock = threading.Lock()
    open = 0
    found: bool = True


@contextlib.contextmanager
def cudnn_ruled_out() -> Iterator[None]:
    """cuDNN's fused SDPA off while any such scope is open (any thread); the user's setting after."""
    with _CudnnScopes.lock:
        if _CudnnScopes.open == 0:
            _CudnnScopes.found = torch.backends.cuda.cudnn_sdp_enabled()
            torch.backends.cuda.enable_cudnn_sdp(False)
        _CudnnScopes.open += 1
    try:
        yield
    finally:
        with _CudnnScopes.lock:
            _CudnnScopes.open -= 1
            if _CudnnScopes.open == 0:
                torch.backends.cuda.enable_cudnn_sdp(_CudnnScopes.found)


def t5_stack_specs(config, hn: HyperNetworkConfig) -> dict[str, StackSpec]:
    """Stack shapes of a T5 config. Both stacks keep a 6-row position table when LoRA is on
    (2 rows when off), as the authors' code does; the encoder only uses positions 0–3."""
    n_positions = len(DECODER_POSITIONS) if hn.use_lora else 2
    inner = config.num_heads * config.d_kv

    def used(positions: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(p for p in positions if p < n_positions)

    decoder_layers = config.num_decoder_layers if config.num_decoder_layers is not None else config.num_layers
    return {
        "encoder": StackSpec(config.num_layers, config.d_model, inner, n_positions, used(ENCODER_POSITIONS)),
        "decoder": StackSpec(decoder_layers, config.d_model, inner, n_positions, used(DECODER_POSITIONS)),
    }


def is_t5_layer_norm(parameter_name: str) -> bool:
    """T5's own layer norms (``layer_norm`` / ``final_layer_norm``): trainable in HyperLoader."""
    return parameter_name.endswith("layer_norm.weight")


LoRAModules = dict[str, list[list[GeneratedLoRALinear]]]  # per stack, per layer: the LoRA linears in slot order


def inject_t5(backbone: nn.Module, context: InjectionContext, hn: HyperNetworkConfig) -> LoRAModules:
    """Hook adapters and swap q/v for LoRA linears in every block of both stacks.

    Returns, per stack, the LoRA linears per layer in LoRA-slot order (what merging needs).
    """
    use_biased_attention(backbone)
    lora_modules: LoRAModules = {}
    for stack_name in STACKS:
        stack = getattr(backbone, stack_name)
        lora_modules[stack_name] = []
        for layer, block in enumerate(stack.block):
            linears: list[GeneratedLoRALinear] = []
            for sub in block.layer:
                kind = t5_sublayer_kind(sub)
                if kind == "feed_forward" and hn.use_adapters:
                    sub.DenseReluDense.register_forward_hook(AdapterHook(context, stack_name, layer, 0))
                elif kind == "self_attention":
                    if hn.use_adapters:
                        sub.SelfAttention.register_forward_hook(AdapterHook(context, stack_name, layer, 1))
                    if hn.use_lora:
                        linears += _swap_qv(sub.SelfAttention, context, stack_name, layer, (2, 3))
                elif kind == "cross_attention" and hn.use_lora:
                    linears += _swap_qv(sub.EncDecAttention, context, stack_name, layer, (4, 5))
            lora_modules[stack_name].append(linears)
    return lora_modules


def merge_lora(weights: dict[str, GeneratedWeights], lora_modules: LoRAModules) -> dict[str, Tensor] | None:
    """``W0 + (α/r)·B A`` for every LoRA slot of every layer, per stack (None when LoRA is off)."""
    merged: dict[str, Tensor] = {}
    for stack_name, layers in lora_modules.items():
        w = weights[stack_name]
        if w.lora_A is None:
            continue
        base = torch.stack([torch.stack([m.weight for m in linears]) for linears in layers])
        merged[stack_name] = base + lora_delta_weight(w.lora_A, w.lora_B, w.lora_scaling).to(base.dtype)
    return merged or None


def _swap_qv(
    attention: nn.Module, context: InjectionContext, stack: str, layer: int, positions: tuple[int, int]
) -> list[GeneratedLoRALinear]:
    swapped = []
    for attr, position in zip(("q", "v"), positions):
        module = GeneratedLoRALinear(getattr(attention, attr), LoRALookup(context, stack, layer, position))
        setattr(attention, attr, module)
        swapped.append(module)
    return swapped
