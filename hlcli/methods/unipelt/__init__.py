"""UniPELT (Mao et al. 2022): adapter + LoRA + prefix-tuning under learned gates, one model per dataset.

On BERT-family encoders: the full method (:mod:`hlcli.methods.unipelt.encoder`). On T5, as the
HyperLoader paper ran it: static adapters + LoRA on q/v (HyperLoader's layers fed by a shared
:class:`~hlcli.methods.hyperloader.weight_source.StaticWeightSource`), no prefix-tuning, no gates;
T5's layer norms train, as in HyperLoader.
"""

from __future__ import annotations

from typing import Sequence

from hlcli.backbones import Backbone
from hlcli.errors import UsageError
from hlcli.methods import register_method
from hlcli.methods.base import TaggingModel, TaskSpec
from hlcli.methods.hyperloader import T5_MODEL_TYPES
from hlcli.methods.unipelt.config import UniPELTConfig


def build_unipelt(config: UniPELTConfig, backbone: Backbone, tasks: Sequence[TaskSpec]) -> TaggingModel:
    if len(tasks) != 1:
        raise UsageError(
            f"unipelt is single-task: one model per dataset, got {len(tasks)} tasks ({', '.join(t.name for t in tasks)})",
            hint="train one unipelt model per dataset (hl compare does)",
        )
    from hlcli.methods.hyperloader.encoder import ENCODER_MODEL_TYPES

    model_type = backbone.config.model_type
    if model_type in T5_MODEL_TYPES:
        from hlcli.methods.ablations.static import static_t5_model

        return static_t5_model(config, backbone.model, backbone.tokenizer, tasks)
    if model_type in ENCODER_MODEL_TYPES:
        from hlcli.methods.unipelt.encoder import UniPELTEncoderModel

        return UniPELTEncoderModel(config, backbone.model, backbone.tokenizer, tasks)
    raise UsageError(
        f"backbone {backbone.name!r} has model_type {model_type!r}, which unipelt does not support",
        expected=f"one of {', '.join(T5_MODEL_TYPES + ENCODER_MODEL_TYPES)}",
    )


register_method("unipelt", config_cls=UniPELTConfig, build=build_unipelt)
