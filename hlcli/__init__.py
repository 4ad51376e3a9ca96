"""hlcli: multi-task, parameter-efficient sequence labelling with hypernetworks.

The library API is importable without the CLI; every ``hl`` command is a thin wrapper
around a function in this package that returns a result object and prints nothing.

    import hlcli

    tagger = hlcli.load("runs/quickstart")        # a run folder or a checkpoint folder
    tagger.tasks                                  # ['atis', 'restaurant']
    [doc] = tagger.tag(["book a table for two at an italian place"], task="restaurant")
    doc.spans                                     # [Span(type=..., start=..., end=..., text=...), ...]
    tagger.evaluate(split="test").scores          # what hl evaluate prints
    hlcli.train(recipe="recipes/quickstart.toml", max_steps=50)

``import hlcli`` is cheap (no torch): the names below are imported on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# Public name → the module that defines it (imported on first access, PEP 562).
_LAZY = {
    "load": "hlcli.api",
    "Tagger": "hlcli.api",
    "train": "hlcli.api",
    "evaluate": "hlcli.evaluation",
    "EvalResult": "hlcli.evaluation",
    "Tagged": "hlcli.tagging",
    "Span": "hlcli.tagging",
    "TrainConfig": "hlcli.config",
    "TrainResult": "hlcli.training",
    "HLError": "hlcli.errors",
    "UsageError": "hlcli.errors",
}

__all__ = ["__version__", *_LAZY]

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time __getattr__ imports them
    from hlcli.api import Tagger, load, train  # noqa: F401
    from hlcli.config import TrainConfig  # noqa: F401
    from hlcli.errors import HLError, UsageError  # noqa: F401
    from hlcli.evaluation import EvalResult, evaluate  # noqa: F401
    from hlcli.tagging import Span, Tagged  # noqa: F401
    from hlcli.training import TrainResult  # noqa: F401

    __version__: str


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from hlcli._version import version

        value: Any = version()
    elif name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
    else:
        raise AttributeError(f"module 'hlcli' has no attribute {name!r}")
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    # The public names (and the module's own dunders), not this file's imports.
    return sorted(set(__all__) | {name for name in globals() if name.startswith("__")})

