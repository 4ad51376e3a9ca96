"""``full-finetune``, the reference baseline: every backbone parameter trains (``model.py``: the plain
taggers, T5 with tasks named in the input, encoders with one head per task).
"""

from __future__ import annotations

from typing import Sequence

from hlcli.backbones import Backbone
from hlcli.methods import register_method
from hlcli.methods.base import TaggingModel, TaskSpec
from hlcli.methods.common import build_for_backbone
from hlcli.methods.full_finetune.config import FullFineTuneConfig


def build_full_finetune(config: FullFineTuneConfig, backbone: Backbone, tasks: Sequence[TaskSpec]) -> TaggingModel:
    from hlcli.methods.full_finetune.model import FullFineTuneEncoderModel, FullFineTuneT5Model

    return build_for_backbone(
        "full-finetune", config, backbone, tasks, t5=FullFineTuneT5Model, encoder=FullFineTuneEncoderModel
    )


register_method("full-finetune", config_cls=FullFineTuneConfig, build=build_full_finetune, display_name="Fine-tuning")
