"""``HyperFormerConfig``: HyperLoader's config with the generated LoRA off."""

from __future__ import annotations

from dataclasses import dataclass

from hlcli.errors import UsageError
from hlcli.methods.common import help_field
from hlcli.methods.hyperloader.config import HyperLoaderConfig


@dataclass
class HyperFormerConfig(HyperLoaderConfig):
    """HyperFormer++: generated adapters and conditional layer norm, no LoRA."""

    use_lora: bool = help_field("Must stay false: HyperFormer++ has no LoRA (use method 'hyperloader').", default=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.use_lora:
            raise UsageError("hyperformer has no LoRA; use method 'hyperloader' for adapters + LoRA")
        if not self.use_adapters:
            raise UsageError("hyperformer without adapters generates nothing")
