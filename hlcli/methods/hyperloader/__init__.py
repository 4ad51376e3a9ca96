"""HyperLoader (Ortiz-Barajas et al. 2024): hypernetwork-generated adapters + LoRA + layer norms.

``build_hyperloader`` is the registry's build function, shared with ``hyperformer``: it picks the
model class from the backbone's ``model_type`` (T5 family → :class:`HyperLoaderT5Model`,
BERT family → ``encoder.HyperLoaderEncoderModel``).
"""

from __future__ import annotations

from typing import Sequence

from hlcli.backbones import Backbone
from hlcli.errors import UsageError
from hlcli.methods import register_method
from hlcli.methods.base import TaggingModel, TaskSpec
from hlcli.methods.hyperloader.config import HyperLoaderConfig
from hlcli.methods.hyperloader.encoder import ENCODER_MODEL_TYPES, HyperLoaderEncoderModel
from hlcli.methods.hyperloader.model import HyperLoaderT5Model

T5_MODEL_TYPES = ("t5", "mt5")


def build_hyperloader(config: HyperLoaderConfig, backbone: Backbone, tasks: Sequence[TaskSpec]) -> TaggingModel:
    model_type = backbone.config.model_type
    if model_type in T5_MODEL_TYPES:
        return HyperLoaderT5Model(config, backbone.model, backbone.tokenizer, tasks)
    if model_type in ENCODER_MODEL_TYPES:
        return HyperLoaderEncoderModel(config, backbone.model, backbone.tokenizer, tasks)
    raise UsageError(
        f"backbone {backbone.name!r} has model_type {model_type!r}, which hyperloader does not support",
        expected=f"one of {', '.join(T5_MODEL_TYPES + ENCODER_MODEL_TYPES)}",
    )


register_method("hyperloader", config_cls=HyperLoaderConfig, build=build_hyperloader)
