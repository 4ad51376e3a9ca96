"""Hyperdecoder (Ivison & Peters 2022): decoder adapters generated per example from the encoded input.

T5 only: the method conditions the decoder on the encoder's output, so an encoder-only backbone
has nothing to condition.
"""

from __future__ import annotations

from typing import Sequence

from hlcli.backbones import Backbone
from hlcli.errors import UsageError
from hlcli.methods import register_method
from hlcli.methods.base import TaggingModel, TaskSpec
from hlcli.methods.hyperdecoder.config import HyperdecoderConfig
from hlcli.methods.hyperloader import T5_MODEL_TYPES


def build_hyperdecoder(config: HyperdecoderConfig, backbone: Backbone, tasks: Sequence[TaskSpec]) -> TaggingModel:
    if backbone.config.model_type not in T5_MODEL_TYPES:
        raise UsageError(
            "hyperdecoder needs an encoder-decoder (T5) backbone",
            expected=f"model_type one of {', '.join(T5_MODEL_TYPES)}, got {backbone.config.model_type!r}",
        )
    from hlcli.methods.hyperdecoder.model import HyperdecoderT5Model

    return HyperdecoderT5Model(config, backbone.model, backbone.tokenizer, tasks)


register_method("hyperdecoder", config_cls=HyperdecoderConfig, build=build_hyperdecoder)
