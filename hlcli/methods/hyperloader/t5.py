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

import torch
from torch import Tensor, nn
from transformers import AttentionInterface, AttentionMaskInterface
from transformers.models.t5.modeling_t5 import T5LayerCrossAttention, T5LayerFF, T5LayerSelfAttention

from hlcli.methods.hyperloader.context import AdapterHook, InjectionContext, LoRALookup
from hlcli.methods.hyperloader.hypernetwork import GeneratedWeights, HyperNetworkConfig
from hlcli.methods.hyperloader.lora import GeneratedLoRALinear, lora_delta_weight
from hlcli.methods.hyperloader.weight_source import StackSpec

STACKS = ("encoder", "decoder")
ENCODER_POSITIONS = (0, 1, 2, 3)
DECODER_POSITIONS = (0, 1, 2, 3, 4, 5)


# T5's attention always carries an additive position bias, which SDPA takes as a float mask. On
# CUDA, torch then picks cuDNN's fused attention, which took 4-5 ms per call forward and as much
# backward on an H200 (issue 10: 107 ms of a 394 ms T5-base step; 174 ms with it off). This
# implementation is transformers' own "sdpa" with cuDNN ruled out, so the memory-efficient kernel
# (or flash / math) runs instead; on a CPU it is "sdpa" unchanged. Flipping the global flag
# around the call costs two C calls (``sdpa_kernel`` costs ~0.1 ms per entry on a CPU).
BIASED_ATTENTION = "hlcli_sdpa_no_cudnn"
_SDPA = AttentionInterface()["sdpa"]


def biased_sdpa_attention(module: nn.Module, query: Tensor, key: Tensor, value: Tensor, attention_mask, **kwargs):
    if not query.is_cuda or not torch.backends.cuda.cudnn_sdp_enabled():
        return _SDPA(module, query, key, value, attention_mask, **kwargs)
    torch.backends.cuda.enable_cudnn_sdp(False)
    try:
        return _SDPA(module, query, key, value, attention_mask, **kwargs)
    finally:
        torch.backends.cuda.enable_cudnn_sdp(True)


AttentionInterface.register(BIASED_ATTENTION, biased_sdpa_attention)
# The masks must be built as for "sdpa": transformers builds no mask at all for a name it has no
# mask function for (every padding token would be attended to).
AttentionMaskInterface.register(BIASED_ATTENTION, AttentionMaskInterface()["sdpa"])


def use_biased_attention(backbone: nn.Module) -> None:
    """Route every T5 attention of ``backbone`` through :func:`biased_sdpa_attention` when it
    would use SDPA (an "eager" backbone stays eager: same results either way, but eager was chosen)."""
    if backbone.config._attn_implementation in ("sdpa", BIASED_ATTENTION):
        backbone.set_attn_implementation(BIASED_ATTENTION)


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


def inject_t5(backbone: nn.Module, context: InjectionContext, hn: HyperNetworkConfig) -> dict[str, list[list[GeneratedLoRALinear]]]:
    """Hook adapters and swap q/v for LoRA linears in every block of both stacks.

    Returns, per stack, the LoRA linears per layer in LoRA-slot order (what merging needs).
    """
    use_biased_attention(backbone)
    lora_modules: dict[str, list[list[GeneratedLoRALinear]]] = {}
    for stack_name in STACKS:
        stack = getattr(backbone, stack_name)
        lora_modules[stack_name] = []
        for layer, block in enumerate(stack.block):
            linears: list[GeneratedLoRALinear] = []
            for sub in block.layer:
                if isinstance(sub, T5LayerFF) and hn.use_adapters:
                    sub.DenseReluDense.register_forward_hook(AdapterHook(context, stack_name, layer, 0))
                elif isinstance(sub, T5LayerSelfAttention):
                    if hn.use_adapters:
                        sub.SelfAttention.register_forward_hook(AdapterHook(context, stack_name, layer, 1))
                    if hn.use_lora:
                        linears += _swap_qv(sub.SelfAttention, context, stack_name, layer, (2, 3))
                elif isinstance(sub, T5LayerCrossAttention) and hn.use_lora:
                    linears += _swap_qv(sub.EncDecAttention, context, stack_name, layer, (4, 5))
            lora_modules[stack_name].append(linears)
    return lora_modules


def merge_lora(weights: dict[str, GeneratedWeights], lora_modules: dict[str, list[list[GeneratedLoRALinear]]]) -> dict[str, Tensor] | None:
    """``W0 + (α/r)·B A`` for every LoRA slot of every layer, per stack (None when LoRA is off)."""
    merged: dict[str, Tensor] = {}
    for stack_name, layers in lora_modules.items():
        w = weights[stack_name]
        if w.lora_A is None:
            continue
        base = torch.stack([torch.stack([m.weight for m in linears]) for linears in layers])
        merged[stack_name] = base + lora_delta_weight(w.lora_A, w.lora_B, w.lora_scaling).to(base.dtype)
    return merged or None


def _swap_qv(attention: nn.Module, context: InjectionContext, stack: str, layer: int, positions: tuple[int, int]) -> list[GeneratedLoRALinear]:
    swapped = []
    for attr, position in zip(("q", "v"), positions):
        module = GeneratedLoRALinear(getattr(attention, attr), LoRALookup(context, stack, layer, position))
        setattr(attention, attr, module)
        swapped.append(module)
    return swapped
