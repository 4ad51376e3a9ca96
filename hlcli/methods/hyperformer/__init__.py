"""HyperFormer++ (Karimi Mahabadi et al. 2021): HyperLoader with the generated LoRA switched off.

Same model classes, same hypernetwork; only the default of ``use_lora`` differs (and the
position table shrinks to the two adapter rows, as in the authors' code).
"""

from __future__ import annotations

from dataclasses import dataclass

from hlcli.errors import UsageError
from hlcli.methods import register_method
from hlcli.methods.common import help_field
from hlcli.methods.hyperloader import hyperloader_builder
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


register_method(
    "hyperformer",
    config_cls=HyperFormerConfig,
    build=hyperloader_builder("hyperformer"),
    display_name="HyperFormer++",
    # HyperLoader's released code with LoRA off, seven tasks.
    paper={"t5-base": ("228,066,928", "5,210,992")},
)
