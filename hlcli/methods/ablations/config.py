"""Configs of the ablations: ``lora-only``, ``static`` and ``full-finetune``."""

from __future__ import annotations

from dataclasses import dataclass

from hlcli.errors import UsageError
from hlcli.methods.common import check_flags, help_field
from hlcli.methods.hyperloader.config import HyperLoaderConfig
from hlcli.methods.plain.config import SentTLimits


@dataclass
class LoRAOnlyConfig(HyperLoaderConfig):
    """HyperLoader without adapters (and so without their layer norms): generated LoRA only."""

    use_adapters: bool = help_field("Must stay false: lora-only generates LoRA updates only.", default=False)
    use_layer_norm: bool = help_field("Must stay false: the conditional layer norm belongs to the adapters.", default=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.use_adapters or self.use_layer_norm:
            raise UsageError("lora-only has no adapters or adapter layer norms; use method 'hyperloader'")
        if not self.use_lora:
            raise UsageError("lora-only without LoRA generates nothing")


@dataclass
class StaticConfig(HyperLoaderConfig):
    """HyperLoader's adapters + LoRA + layer norms as plain parameters shared by all tasks (no hypernetwork)."""


@dataclass
class FullFineTuneConfig(SentTLimits):
    """Every backbone parameter trains (plus the per-task heads on encoders)."""

    task_prefix: bool = help_field('T5: name the task in the input ("atis: <extra_id_0> ..."), as T5 multi-task training does.', default=True)

    def __post_init__(self) -> None:
        super().__post_init__()
        check_flags(self, "task_prefix")
