"""Ablations of HyperLoader (registered methods ``lora-only``, ``static``, ``full-finetune``).

* ``lora-only`` — the hypernetwork generates LoRA updates only (no adapters, no conditional LN);
* ``static`` — adapters + LoRA + layer norms as plain parameters shared by all tasks
  (``static.py``: HyperLoader's models fed by a static weight source);
* ``full-finetune`` — every backbone parameter trains (``full_finetune.py``: the plain taggers,
  T5 with tasks named in the input, encoders with one head per task).
"""

from __future__ import annotations

from typing import Sequence

from hlcli.backbones import Backbone
from hlcli.methods import register_method
from hlcli.methods.ablations.config import FullFineTuneConfig, LoRAOnlyConfig, StaticConfig
from hlcli.methods.base import TaggingModel, TaskSpec
from hlcli.methods.common import build_for_backbone
from hlcli.methods.hyperloader import hyperloader_builder


def build_static(config: StaticConfig, backbone: Backbone, tasks: Sequence[TaskSpec]) -> TaggingModel:
    from hlcli.methods.ablations.static import static_encoder_model, static_t5_model

    return build_for_backbone("static", config, backbone, tasks, t5=static_t5_model, encoder=static_encoder_model)


def build_full_finetune(config: FullFineTuneConfig, backbone: Backbone, tasks: Sequence[TaskSpec]) -> TaggingModel:
    from hlcli.methods.ablations.full_finetune import FullFineTuneEncoderModel, FullFineTuneT5Model

    return build_for_backbone(
        "full-finetune", config, backbone, tasks, t5=FullFineTuneT5Model, encoder=FullFineTuneEncoderModel
    )


register_method("lora-only", config_cls=LoRAOnlyConfig, build=hyperloader_builder("lora-only"), display_name="LoRA")
register_method("static", config_cls=StaticConfig, build=build_static, display_name="Static")
register_method("full-finetune", config_cls=FullFineTuneConfig, build=build_full_finetune, display_name="Fine-tuning")
