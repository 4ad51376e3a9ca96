"""``LoRAOnlyConfig``: HyperLoader's config with the adapters (and their layer norms) off."""

from __future__ import annotations

from dataclasses import dataclass

from hlcli.errors import UsageError
from hlcli.methods.common import help_field
from hlcli.methods.hyperloader.config import HyperLoaderConfig


@dataclass
class LoRAOnlyConfig(HyperLoaderConfig):
    """HyperLoader without adapters (and so without their layer norms): generated LoRA only."""

    use_adapters: bool = help_field("Must stay false: lora-only generates LoRA updates only.", default=False)
    use_layer_norm: bool = help_field(
        "Must stay false: the conditional layer norm belongs to the adapters.", default=False
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.use_adapters or self.use_layer_norm:
            raise UsageError("lora-only has no adapters or adapter layer norms; use method 'hyperloader'")
        if not self.use_lora:
            raise UsageError("lora-only without LoRA generates nothing")
