"""Ablations of HyperLoader (registered methods ``lora-only``, ``static``, ``full-finetune``).

* ``lora-only`` — the hypernetwork generates LoRA updates only (no adapters, no conditional LN);
* ``static`` — adapters + LoRA + layer norms as plain parameters shared by all tasks;
* ``full-finetune`` — every backbone parameter trains (T5: the whole model, tasks named in the
  input; encoders: the whole encoder plus one head per task).
"""

from __future__ import annotations

from typing import Sequence

from hlcli.backbones import Backbone
from hlcli.errors import UsageError
from hlcli.methods import register_method
from hlcli.methods.ablations.config import FullFineTuneConfig, LoRAOnlyConfig, StaticConfig
from hlcli.methods.base import TaggingModel, TaskSpec
from hlcli.methods.hyperloader import T5_MODEL_TYPES, build_hyperloader


def _unsupported(method: str, backbone: Backbone) -> UsageError:
    from hlcli.methods.hyperloader.encoder import ENCODER_MODEL_TYPES

    return UsageError(
        f"backbone {backbone.name!r} has model_type {backbone.config.model_type!r}, which {method} does not support",
        expected=f"one of {', '.join(T5_MODEL_TYPES + ENCODER_MODEL_TYPES)}",
    )


def build_static(config: StaticConfig, backbone: Backbone, tasks: Sequence[TaskSpec]) -> TaggingModel:
    from hlcli.methods.ablations.static import StaticEncoderModel, static_t5_model
    from hlcli.methods.hyperloader.encoder import ENCODER_MODEL_TYPES

    model_type = backbone.config.model_type
    if model_type in T5_MODEL_TYPES:
        return static_t5_model(config, backbone.model, backbone.tokenizer, tasks)
    if model_type in ENCODER_MODEL_TYPES:
        return StaticEncoderModel(config, backbone.model, backbone.tokenizer, tasks)
    raise _unsupported("static", backbone)


def build_full_finetune(config: FullFineTuneConfig, backbone: Backbone, tasks: Sequence[TaskSpec]) -> TaggingModel:
    from hlcli.methods.ablations.full_finetune import FullFineTuneEncoderModel, FullFineTuneT5Model
    from hlcli.methods.hyperloader.encoder import ENCODER_MODEL_TYPES

    model_type = backbone.config.model_type
    if model_type in T5_MODEL_TYPES:
        return FullFineTuneT5Model(config, backbone.model, backbone.tokenizer, tasks)
    if model_type in ENCODER_MODEL_TYPES:
        return FullFineTuneEncoderModel(config, backbone.model, backbone.tokenizer, tasks)
    raise _unsupported("full-finetune", backbone)


register_method("lora-only", config_cls=LoRAOnlyConfig, build=build_hyperloader)
register_method("static", config_cls=StaticConfig, build=build_static)
register_method("full-finetune", config_cls=FullFineTuneConfig, build=build_full_finetune)
