"""``UniPELTConfig`` (defaults: Mao et al. 2022 on BERT-base; T5 sizes as the HyperLoader paper's baseline)."""

from __future__ import annotations

from dataclasses import dataclass

from hlcli.errors import UsageError
from hlcli.methods.common import check_flags, check_positive_ints, help_field
from hlcli.methods.hyperloader.config import HyperLoaderConfig


@dataclass
class UniPELTConfig(HyperLoaderConfig):
    """Adapter + LoRA (+ prefix-tuning and gates on encoders), one model per dataset.

    The hypernetwork fields inherited from ``HyperLoaderConfig`` are unused: nothing is generated.
    """

    reduction_factor: int = help_field(
        "Adapter bottleneck = d_model / reduction_factor (768/16 = 48, as UniPELT).", default=16
    )
    lora_alpha: float = help_field(
        "LoRA alpha; the update is scaled by alpha / rank (UniPELT: 16 for r=8).", default=16.0
    )
    use_layer_norm: bool = help_field(
        "T5 only: a layer norm after each static adapter (UniPELT has none).", default=False
    )
    use_prefix: bool = help_field("Encoders: prefix-tuning (T5, as in the HyperLoader paper: never).", default=True)
    use_gates: bool = help_field(
        "Encoders: UniPELT's gates sigmoid(Linear(d→1)) on each module (T5: never).", default=True
    )
    prefix_length: int = help_field("Encoders: number of prefix tokens per layer.", default=10)
    prefix_hidden_dim: int = help_field("Encoders: hidden size of the prefix reparameterisation MLP.", default=512)

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive_ints(self, "prefix_length", "prefix_hidden_dim")
        check_flags(self, "use_prefix", "use_gates")
        if not self.use_adapters or not self.use_lora:
            raise UsageError("unipelt combines an adapter and LoRA: use_adapters and use_lora must stay on")
