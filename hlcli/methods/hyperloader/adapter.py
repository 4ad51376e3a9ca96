"""Generated bottleneck adapters (HyperFormer++ / HyperLoader), applied to a sub-layer output.

Semantics follow the authors' HyperFormer code: ``MetaLayersAdapterController.forward`` (rabeehk/
hyperformer, ``adapters/adapter_controller.py``) computes the adapter, applies the generated post
layer norm and then ``outputs = outputs + inputs``. Its input is the sub-layer output ``y`` (T5's
``T5LayerFF`` calls the controller on ``DenseReluDense``'s output, before ``dropout`` and the block
residual), so the adapter keeps ``y``::

    y' = y + LN_gen(U · gelu_new(D · y + b_D) + b_U)    block output: h + dropout(y')

rather than replacing it. With the generators' N(0, 0.01) initialisation the generated γ is
close to 0, so a fresh adapter is close to the identity and the frozen backbone starts intact.

The activation is ``gelu_new``, the tanh approximation ``0.5 x (1 + tanh(√(2/π) (x + 0.044715 x³)))``:
the authors' config sets ``non_linearity: gelu_new`` (configs/hyperformer++.json) and their
controller applies ``transformers.activations.get_activation`` to it. ``F.gelu(approximate="tanh")``
is that formula as one fused kernel (transformers' own ``ACT2FN["gelu_new"]`` is five elementwise
ops, and its class may be swapped for a Hub kernel); tests/test_fidelity.py checks both against the
formula. Exact (erf) gelu differs from it by up to 4.7e-4.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from hlcli.methods.hyperloader.hypernetwork import GeneratedWeights
from hlcli.methods.hyperloader.layer_norm import conditional_layer_norm


def adapter_activation(x: Tensor) -> Tensor:
    """``gelu_new`` (see the module docstring)."""
    return F.gelu(x, approximate="tanh")


def apply_adapter(y: Tensor, weights: GeneratedWeights, layer: int, slot: int) -> Tensor:
    """``y + LN_gen(adapter(y))`` with layer ``layer``'s adapter ``slot`` (0 FFN, 1 self-attention)."""
    w = weights.at
    down = F.linear(y, w("adapter_down", layer, slot), w("adapter_down_bias", layer, slot))
    out = F.linear(adapter_activation(down), w("adapter_up", layer, slot), w("adapter_up_bias", layer, slot))
    if weights.ln_weight is not None:
        out = conditional_layer_norm(out, w("ln_weight", layer, slot), w("ln_bias", layer, slot))
    return y + out
