"""``HyperdecoderConfig`` (defaults: Ivison & Peters 2022, allenai/hyperdecoders ``T5WithAdapterConfig``)."""

from __future__ import annotations

from dataclasses import dataclass

from hlcli.errors import UsageError
from hlcli.methods.hyperloader.hypernetwork import _help
from hlcli.methods.hyperloader.config import SentTLimits


def _positive_int(config, *names: str) -> None:
    for name in names:
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise UsageError(f"{name} must be a positive integer, got {value!r}")


def _flag(config, *names: str) -> None:
    for name in names:
        if not isinstance(getattr(config, name), bool):
            raise UsageError(f"{name} must be true or false, got {getattr(config, name)!r}")


@dataclass
class HyperdecoderConfig(SentTLimits):
    """Shared encoder adapters; decoder adapters generated per example from the encoded input."""

    encoder_adapter_dim: int = _help("Bottleneck of the shared (task-agnostic) encoder adapters.", default=64)
    decoder_adapter_dim: int = _help("Bottleneck of the generated decoder adapters.", default=64)
    hypernetwork_bottleneck: int = _help("Hidden size of the generator (d_model + layer embedding → this).", default=128)
    layer_embedding_dim: int = _help("Size of the decoder-layer embedding concatenated to the pooled input.", default=10)
    process_encoder_output: bool = _help(
        "Pass the pooled encoder output through an MLP (Linear d→d, ReLU, Linear d→d) before the generator.",
        default=True,
    )
    adapter_norm_input: bool = _help(
        "Feed the adapters the layer-normed FFN input instead of the raw residual stream (authors' default: off).",
        default=False,
    )
    train_layer_norms: bool = _help("Also train T5's own layer norms (authors' default: frozen).", default=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        _positive_int(self, "encoder_adapter_dim", "decoder_adapter_dim", "hypernetwork_bottleneck", "layer_embedding_dim")
        _flag(self, "process_encoder_output", "adapter_norm_input", "train_layer_norms")
