"""The one record every reader produces and every model consumes."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Example:
    """One sentence: whitespace-free tokens with one BIO tag each (``B-X``/``I-X``/``O``).

    ``task`` is the registry name of the corpus (``atis``, ``restaurant``, ...) or the name a
    user gave their own data. ``intent`` is kept where the corpus has one (ATIS, SNIPS, mTOP,
    mTOD); sequence labelling ignores it. ``source`` is ``"path:line"`` of the sentence's first
    line so that later errors can point at it.
    """

    task: str
    tokens: tuple[str, ...]
    tags: tuple[str, ...]
    intent: str | None = None
    source: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if len(self.tokens) != len(self.tags):
            raise ValueError(f"{len(self.tokens)} tokens but {len(self.tags)} tags")

    def to_json(self) -> dict:
        data = {"task": self.task, "tokens": list(self.tokens), "tags": list(self.tags)}
        if self.intent is not None:
            data["intent"] = self.intent
        return data
