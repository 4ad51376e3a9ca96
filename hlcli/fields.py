"""``help_field``: the dataclass field of every config dataclass (``TrainConfig``, the methods' configs).

At the bottom of the package so that :mod:`hlcli.config` and :mod:`hlcli.methods` both use it
without importing each other; free of torch so that the CLI starts fast.
"""

from __future__ import annotations

from dataclasses import field
from typing import Any


def help_field(text: str, **kwargs: Any) -> Any:
    """A dataclass field whose ``help`` metadata documents the option (``hl train --help``, docs)."""
    return field(metadata={"help": text}, **kwargs)
