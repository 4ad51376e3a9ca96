"""Ablations of HyperLoader (registered methods ``lora-only``, ``static``, ``full-finetune``).

* ``lora-only`` — the hypernetwork generates LoRA updates only (no adapters, no conditional LN);
* ``static`` — adapters + LoRA + layer norms as plain parameters shared by all tasks;
* ``full-finetune`` — every backbone parameter trains (T5: the whole model, tasks named in the
  input; encoders: the whole encoder plus one head per task).
"""

from __future__ import annotations

from typing import Sequence

from hlcli.backbones import Backbone
from hlcli.methods import register_method
from hlcli.methods.ablations.config import FullFineTuneConfig, LoRAOnlyConfig, StaticConfig
from hlcli.methods.base import TaggingModel, TaskSpec
from hlcli.methods.hyperloader import build_for_backbone, build_hyperloader


def build_static(config: StaticConfig, backbone: Backbone, tasks: Sequence[TaskSpec]) -> TaggingModel:
    from hlcli.methods.ablations.static import StaticEncoderModel, static_t5_model

    return build_for_backbone("static", config, backbone, tasks, t5=static_t5_model, encoder=StaticEncoderModel)


def build_full_finetune(config: FullFineTuneConfig, backbone: Backbone, tasks: Sequence[TaskSpec]) -> TaggingModel:
    from hlcli.methods.ablations.full_finetune import FullFineTuneEncoderModel, FullFineTuneT5Model

    return build_for_backbone(
        "full-finetune", config, backbone, tasks, t5=FullFineTuneT5Model, encoder=FullFineTuneEncoderModel
    )


register_method("lora-only", config_cls=LoRAOnlyConfig, build=build_hyperloader)
register_method("static", config_cls=StaticConfig, build=build_static)
register_method("full-finetune", config_cls=FullFineTuneConfig, build=build_full_finetune)
