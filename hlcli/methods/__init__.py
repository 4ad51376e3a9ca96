"""Method registry (peft-style): a method is a config dataclass plus a build function.

    register_method("hyperloader", config_cls=HyperLoaderConfig, build=build_hyperloader)
    model = build_model("hyperloader", backbone="t5-base", tasks=[TaskSpec("atis", [...])],
                        overrides={"lora_rank": 4})

Built-in methods register themselves when their module is imported; the registry imports
them on first use so that ``import hlcli.methods`` stays cheap.
"""

from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from hlcli.errors import UsageError, unknown_name
from hlcli.methods.base import TaggingModel, TaskSpec

# Modules that call register_method on import.
BUILTIN_METHOD_MODULES = (
    "hlcli.methods.hyperloader",
    "hlcli.methods.hyperformer",
    "hlcli.methods.hyperdecoder",
    "hlcli.methods.unipelt",
    "hlcli.methods.ablations",
)


@dataclass(frozen=True)
class MethodEntry:
    name: str
    config_cls: type
    build: Callable[..., TaggingModel]  # build(config, backbone: Backbone, tasks) -> TaggingModel


_REGISTRY: dict[str, MethodEntry] = {}
_loaded = False


def register_method(name: str, *, config_cls: type, build: Callable[..., TaggingModel]) -> None:
    """Make ``name`` buildable. ``config_cls`` is a dataclass validated in ``__post_init__``."""
    if not dataclasses.is_dataclass(config_cls):
        raise TypeError(f"config_cls of method {name!r} must be a dataclass")
    if name in _REGISTRY and _REGISTRY[name].config_cls is not config_cls:
        raise ValueError(f"method {name!r} is already registered")
    _REGISTRY[name] = MethodEntry(name, config_cls, build)


def _load_builtins() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        for module in BUILTIN_METHOD_MODULES:
            importlib.import_module(module)


def known_methods() -> list[str]:
    _load_builtins()
    return sorted(_REGISTRY)


def _entry(name: str) -> MethodEntry:
    _load_builtins()
    if name not in _REGISTRY:
        raise unknown_name("method", name, list(_REGISTRY))
    return _REGISTRY[name]


def method_config(name: str, overrides: dict[str, Any] | None = None):
    """The config of method ``name`` with ``overrides`` applied (and validated)."""
    config_cls = _entry(name).config_cls
    known = [f.name for f in dataclasses.fields(config_cls)]
    unknown = sorted(set(overrides or {}) - set(known))
    if unknown:
        raise UsageError(
            f"unknown option(s) {', '.join(map(repr, unknown))} for method {name!r}",
            expected=f"one of {', '.join(known)}",
        )
    return config_cls(**(overrides or {}))


def build_model(
    method: str, *, backbone: str, tasks: Sequence[TaskSpec], overrides: dict[str, Any] | None = None
) -> TaggingModel:
    """Load ``backbone`` (folder, hub id or alias) and wrap it with ``method`` for ``tasks``."""
    from hlcli.backbones import load_backbone

    entry = _entry(method)
    config = method_config(method, overrides)
    if not tasks:
        raise UsageError("a model needs at least one task")
    names = [t.name for t in tasks]
    if len(set(names)) != len(names):
        raise UsageError(f"duplicate task names: {', '.join(names)}")
    loaded = load_backbone(backbone)
    model = entry.build(config, loaded, list(tasks))
    model.method = method
    model.backbone_name = backbone
    return model
