"""``HyperdecoderConfig`` (defaults: Ivison & Peters 2022, allenai/hyperdecoders ``T5WithAdapterConfig``)."""

from __future__ import annotations

from dataclasses import dataclass

from hlcli.methods.common import check_flags, check_positive_ints, help_field
from hlcli.methods.plain.config import SentTLimits


@dataclass
class HyperdecoderConfig(SentTLimits):
    """Shared encoder adapters; decoder adapters generated per example from the encoded input."""

    encoder_adapter_dim: int = help_field("Bottleneck of the shared (task-agnostic) encoder adapters.", default=64)
    decoder_adapter_dim: int = help_field("Bottleneck of the generated decoder adapters.", default=64)
    hypernetwork_bottleneck: int = help_field(
        "Hidden size of the generator (d_model + layer embedding → this).", default=128
    )
    layer_embedding_dim: int = help_field(
        "Size of the decoder-layer embedding concatenated to the pooled input.", default=10
    )
    process_encoder_output: bool = help_field(
        "Pass the pooled encoder output through an MLP (Linear d→d, ReLU, Linear d→d) before the generator.",
        default=True,
    )
    adapter_norm_input: bool = help_field(
        "Feed the adapters the layer-normed FFN input instead of the raw residual stream (authors' default: off).",
        default=False,
    )
    train_layer_norms: bool = help_field("Also train T5's own layer norms (authors' default: frozen).", default=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive_ints(
            self, "encoder_adapter_dim", "decoder_adapter_dim", "hypernetwork_bottleneck", "layer_embedding_dim"
        )
        check_flags(self, "process_encoder_output", "adapter_norm_input", "train_layer_norms")
