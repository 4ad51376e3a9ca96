"""HyperLoader (Ortiz-Barajas et al. 2024): hypernetwork-generated adapters + LoRA + layer norms.

A HyperLoader model is a plain tagger (:mod:`hlcli.methods.plain`) plus a weight source whose
weights are patched into the frozen backbone's layers: :class:`WeightSourceT5Tagger` (``model.py``,
T5 family) and :class:`WeightSourceEncoderTagger` (``encoder.py``, BERT family). The pieces:
``hypernetwork.py`` (the generator), ``weight_source.py`` (hypernetworks or static tensors),
``t5.py`` / ``context.py`` / ``lora.py`` / ``adapter.py`` / ``layer_norm.py`` (how the weights
reach the layers). ``hyperformer``, ``lora-only``, ``static`` and ``unipelt`` (on T5) use these
models too, each registered in its own package.

``weight_source_builder(method)`` makes the registry's build function of ``hyperloader``,
``hyperformer`` and ``lora-only``: the config alone says which modules the hypernetworks generate.
"""

from __future__ import annotations

import functools
from typing import Callable, Sequence

from hlcli.backbones import Backbone
from hlcli.methods import register_method
from hlcli.methods.base import TaggingModel, TaskSpec
from hlcli.methods.common import build_for_backbone
from hlcli.methods.hyperloader.config import HyperLoaderConfig
from hlcli.methods.hyperloader.encoder import WeightSourceEncoderTagger
from hlcli.methods.hyperloader.model import WeightSourceT5Tagger


def weight_source_builder(method: str) -> Callable[..., TaggingModel]:
    """The build function of ``method``: the weight-source taggers with their default source (the
    hypernetworks) under ``method``'s config; the models record ``method`` and refusals name it."""
    t5 = functools.partial(WeightSourceT5Tagger, method=method)
    encoder = functools.partial(WeightSourceEncoderTagger, method=method)

    def build(config: HyperLoaderConfig, backbone: Backbone, tasks: Sequence[TaskSpec]) -> TaggingModel:
        return build_for_backbone(method, config, backbone, tasks, t5=t5, encoder=encoder)

    return build


build_hyperloader = weight_source_builder("hyperloader")

register_method(
    "hyperloader",
    config_cls=HyperLoaderConfig,
    build=build_hyperloader,
    display_name="HyperLoader",
    # The authors' released code, seven tasks.
    paper={"t5-base": ("229,640,304", "6,784,368")},
)
