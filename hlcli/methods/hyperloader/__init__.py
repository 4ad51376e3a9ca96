"""HyperLoader (Ortiz-Barajas et al. 2024): hypernetwork-generated adapters + LoRA + layer norms.

``build_hyperloader`` is the registry's build function, shared with ``hyperformer``: it picks the
model class from the backbone's ``model_type`` (T5 family → :class:`HyperLoaderT5Model`,
BERT family → ``encoder.HyperLoaderEncoderModel``).
"""

from __future__ import annotations

from typing import Callable, Sequence

from hlcli.backbones import Backbone
from hlcli.errors import UsageError
from hlcli.methods import register_method
from hlcli.methods.base import TaggingModel, TaskSpec
from hlcli.methods.hyperloader.config import HyperLoaderConfig
from hlcli.methods.hyperloader.encoder import ENCODER_MODEL_TYPES, HyperLoaderEncoderModel
from hlcli.methods.hyperloader.model import HyperLoaderT5Model

T5_MODEL_TYPES = ("t5", "mt5")

Builder = Callable[..., TaggingModel]


def build_for_backbone(
    method: str, config, backbone: Backbone, tasks: Sequence[TaskSpec], *, t5: Builder, encoder: Builder
) -> TaggingModel:
    """Call ``t5`` or ``encoder`` (``(config, model, tokenizer, tasks)``) by the backbone's family.

    Every method that runs on both families dispatches here, so they all refuse another
    ``model_type`` with the same message.
    """
    model_type = backbone.config.model_type
    if model_type in T5_MODEL_TYPES:
        return t5(config, backbone.model, backbone.tokenizer, tasks)
    if model_type in ENCODER_MODEL_TYPES:
        return encoder(config, backbone.model, backbone.tokenizer, tasks)
    raise UsageError(
        f"backbone {backbone.name!r} has model_type {model_type!r}, which {method} does not support",
        expected=f"one of {', '.join(T5_MODEL_TYPES + ENCODER_MODEL_TYPES)}",
    )


def build_hyperloader(config: HyperLoaderConfig, backbone: Backbone, tasks: Sequence[TaskSpec]) -> TaggingModel:
    return build_for_backbone(
        "hyperloader", config, backbone, tasks, t5=HyperLoaderT5Model, encoder=HyperLoaderEncoderModel
    )


register_method("hyperloader", config_cls=HyperLoaderConfig, build=build_hyperloader)
