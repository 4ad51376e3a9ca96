"""UniPELT (Mao et al. 2022): adapter + LoRA + prefix-tuning under learned gates, one model per dataset.

On BERT-family encoders: the full method (:mod:`hlcli.methods.unipelt.encoder`, a
:class:`~hlcli.methods.plain.encoder.PlainEncoderTagger` with gated modules patched in). On T5, as
the HyperLoader paper ran it: static adapters + LoRA on q/v (HyperLoader's T5 model fed by a
shared :class:`~hlcli.methods.hyperloader.weight_source.StaticWeightSource`, as ``static``), no
prefix-tuning, no gates; T5's layer norms train, as in HyperLoader.
"""

from __future__ import annotations

import functools
from typing import Sequence

from hlcli.backbones import Backbone
from hlcli.methods import register_method
from hlcli.methods.base import TaggingModel, TaskSpec
from hlcli.methods.common import build_for_backbone
from hlcli.methods.unipelt.config import UniPELTConfig


def build_unipelt(config: UniPELTConfig, backbone: Backbone, tasks: Sequence[TaskSpec]) -> TaggingModel:
    from hlcli.methods.static.model import static_t5_model
    from hlcli.methods.unipelt.encoder import UniPELTEncoderModel

    t5 = functools.partial(static_t5_model, method="unipelt")
    return build_for_backbone("unipelt", config, backbone, tasks, t5=t5, encoder=UniPELTEncoderModel)


register_method(
    "unipelt",
    config_cls=UniPELTConfig,
    build=build_unipelt,
    display_name="UniPELT",
    single_task=True,
    # Per single-task model; the T5 numbers are the HyperLoader paper's baseline.
    paper={"bert-base": ("110M", "1.8M"), "t5-base": ("220M", "4.5M")},
)
