"""``StaticConfig``: HyperLoader's config, its modules as plain parameters."""

from __future__ import annotations

from dataclasses import dataclass

from hlcli.methods.hyperloader.config import HyperLoaderConfig


@dataclass
class StaticConfig(HyperLoaderConfig):
    """HyperLoader's adapters + LoRA + layer norms as plain parameters shared by all tasks (no hypernetwork)."""
