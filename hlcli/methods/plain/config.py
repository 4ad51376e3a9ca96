"""``SentTLimits``: the SentT' sequence limits every T5 tagger reads (in every T5 method's config)."""

from __future__ import annotations

from dataclasses import dataclass

from hlcli.errors import UsageError
from hlcli.methods.common import help_field
from hlcli.sentt import MAX_WORDS


@dataclass
class SentTLimits:
    """The SentT' sequence limits every T5 tagger reads (HyperLoader, Hyperdecoder, full fine-tuning)."""

    max_input_length: int = help_field(
        "Expected input tokens per sequence; longer ones are kept whole (never truncated) with a warning.",
        default=128,
    )
    max_target_length: int = help_field(
        "Expected target tokens per sequence; longer ones are kept whole (never truncated) with a warning.",
        default=128,
    )
    max_words: int = help_field(
        f"Words per SentT' window; longer sentences are cut into windows (at most {MAX_WORDS}).", default=MAX_WORDS
    )

    def __post_init__(self) -> None:
        # Cooperative: HyperLoaderConfig also inherits HyperNetworkConfig's checks.
        parent = getattr(super(), "__post_init__", None)
        if parent is not None:
            parent()
        for name in ("max_input_length", "max_target_length"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 8:
                raise UsageError(f"{name} must be an integer >= 8, got {value!r}")
        words = self.max_words
        if isinstance(words, bool) or not isinstance(words, int) or not 1 <= words <= MAX_WORDS:
            raise UsageError(f"max_words must be in 1..{MAX_WORDS}, got {self.max_words!r}")
