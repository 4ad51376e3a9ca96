"""Hyperdecoder (Ivison & Peters 2022): decoder adapters generated per example from the encoded input.

T5 only (``needs_decoder``): the method conditions the decoder on the encoder's output, so an
encoder-only backbone has nothing to condition. The model is a
:class:`~hlcli.methods.plain.t5.PlainT5Tagger` plus the adapters (``model.py``, ``generator.py``).
"""

from __future__ import annotations

from typing import Sequence

from hlcli.backbones import Backbone
from hlcli.methods import register_method
from hlcli.methods.base import TaggingModel, TaskSpec
from hlcli.methods.common import build_for_backbone
from hlcli.methods.hyperdecoder.config import HyperdecoderConfig


def build_hyperdecoder(config: HyperdecoderConfig, backbone: Backbone, tasks: Sequence[TaskSpec]) -> TaggingModel:
    from hlcli.methods.hyperdecoder.model import HyperdecoderT5Model

    return build_for_backbone("hyperdecoder", config, backbone, tasks, t5=HyperdecoderT5Model)


register_method(
    "hyperdecoder",
    config_cls=HyperdecoderConfig,
    build=build_hyperdecoder,
    display_name="Hyperdecoder",
    needs_decoder=True,
    paper={"t5-base": ("239M", "16M")},
)
