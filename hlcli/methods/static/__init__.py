"""``static``, an ablation of HyperLoader: its adapters + LoRA + layer norms as plain parameters
shared by all tasks (``model.py``: HyperLoader's models fed by a static weight source).
"""

from __future__ import annotations

from typing import Sequence

from hlcli.backbones import Backbone
from hlcli.methods import register_method
from hlcli.methods.base import TaggingModel, TaskSpec
from hlcli.methods.common import build_for_backbone
from hlcli.methods.static.config import StaticConfig


def build_static(config: StaticConfig, backbone: Backbone, tasks: Sequence[TaskSpec]) -> TaggingModel:
    from hlcli.methods.static.model import static_encoder_model, static_t5_model

    return build_for_backbone("static", config, backbone, tasks, t5=static_t5_model, encoder=static_encoder_model)


register_method("static", config_cls=StaticConfig, build=build_static, display_name="Static")
