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
from hlcli.methods.hyperloader import build_for_backbone
from hlcli.methods.unipelt.config import UniPELTConfig


def build_unipelt(config: UniPELTConfig, backbone: Backbone, tasks: Sequence[TaskSpec]) -> TaggingModel:
    if len(tasks) != 1:
        raise UsageError(
            f"unipelt is single-task: one model per dataset, got {len(tasks)} tasks ({', '.join(t.name for t in tasks)})",
            hint="train one unipelt model per dataset (hl compare does)",
        )
    from hlcli.methods.ablations.static import static_t5_model
    from hlcli.methods.unipelt.encoder import UniPELTEncoderModel

    return build_for_backbone("unipelt", config, backbone, tasks, t5=static_t5_model, encoder=UniPELTEncoderModel)


register_method("unipelt", config_cls=UniPELTConfig, build=build_unipelt)
