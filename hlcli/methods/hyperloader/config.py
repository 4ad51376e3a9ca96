"""``HyperLoaderConfig``: the hypernetwork's fields plus the SentT' sequence limits."""

from __future__ import annotations

from dataclasses import dataclass

from hlcli.methods.hyperloader.hypernetwork import HyperNetworkConfig
from hlcli.methods.plain.config import SentTLimits


@dataclass
class HyperLoaderConfig(SentTLimits, HyperNetworkConfig):
    """HyperLoader = generated adapters + generated LoRA + conditional layer norm (all on)."""
