"""``lora-only``, an ablation of HyperLoader: the hypernetwork generates LoRA updates only (no
adapters, no conditional layer norm). HyperLoader's models (:mod:`hlcli.methods.hyperloader`)
under :class:`~hlcli.methods.lora_only.config.LoRAOnlyConfig`.
"""

from __future__ import annotations

from hlcli.methods import register_method
from hlcli.methods.hyperloader import weight_source_builder
from hlcli.methods.lora_only.config import LoRAOnlyConfig

register_method("lora-only", config_cls=LoRAOnlyConfig, build=weight_source_builder("lora-only"), display_name="LoRA")
