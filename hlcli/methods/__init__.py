"""Method registry (peft-style): a method is a config dataclass, a build function and its facts.

    register_method("hyperloader", config_cls=HyperLoaderConfig, build=build_hyperloader,
                    display_name="HyperLoader", paper={"t5-base": ("229,640,304", "6,784,368")})
    model = build_model("hyperloader", backbone="t5-base", tasks=[TaskSpec("atis", [...])],
                        overrides={"lora_rank": 4})
    method_entry("unipelt").single_task  # True: what compare and params read

Built-in methods register themselves when their package is imported; the registry imports
them on first use so that ``import hlcli.methods`` stays cheap (no transformers).

Where things live: :mod:`hlcli.methods.base` (``TaggingModel``, ``TaskSpec``: what the loop
needs), :mod:`hlcli.methods.common` (backbone families and dispatch, config-field helpers),
:mod:`hlcli.methods.plain` (the taggers on a plain backbone: SentT' on T5, token
classification on encoders), then one package per method: ``hyperloader`` (plain tagger +
weight source, with the hypernetwork), ``hyperformer``, ``hyperdecoder``, ``unipelt`` and
``ablations`` (``lora-only``, ``static``, ``full-finetune``).
"""

from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

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
    """Everything hlcli knows about a method; the one place each fact about it is stated."""

    name: str
    config_cls: type
    build: Callable[..., TaggingModel]  # build(config, backbone: Backbone, tasks) -> TaggingModel
    display_name: str = ""  # column name in comparison tables, as the papers print it
    single_task: bool = False  # one model per dataset (the papers' single-task baselines)
    needs_decoder: bool = False  # adapts a decoder: no encoder-only backbone (MiniLM, BERT)
    # Parameter counts the papers report, per parameter-count backbone (``hlcli.params.BACKBONES``):
    # (total, trainable) as printed, exact or rounded ("239M").
    paper: Mapping[str, tuple[str, str]] = dataclasses.field(default_factory=dict)


_REGISTRY: dict[str, MethodEntry] = {}
_loaded = False


def register_method(
    name: str,
    *,
    config_cls: type,
    build: Callable[..., TaggingModel],
    display_name: str | None = None,
    single_task: bool = False,
    needs_decoder: bool = False,
    paper: Mapping[str, tuple[str, str]] | None = None,
) -> None:
    """Make ``name`` buildable. ``config_cls`` is a dataclass validated in ``__post_init__``;
    the other arguments are the :class:`MethodEntry` facts (``display_name`` defaults to ``name``)."""
    if not dataclasses.is_dataclass(config_cls):
        raise TypeError(f"config_cls of method {name!r} must be a dataclass")
    if name in _REGISTRY and _REGISTRY[name].config_cls is not config_cls:
        raise ValueError(f"method {name!r} is already registered")
    _REGISTRY[name] = MethodEntry(
        name, config_cls, build, display_name or name, single_task, needs_decoder, dict(paper or {})
    )


def _load_builtins() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        for module in BUILTIN_METHOD_MODULES:
            importlib.import_module(module)


def known_methods() -> list[str]:
    _load_builtins()
    return sorted(_REGISTRY)


def method_entry(name: str) -> MethodEntry:
    """The registry entry of ``name`` (a UsageError listing the known methods if there is none)."""
    _load_builtins()
    if name not in _REGISTRY:
        raise unknown_name("method", name, list(_REGISTRY))
    return _REGISTRY[name]


def method_config(name: str, overrides: dict[str, Any] | None = None):
    """The config of method ``name`` with ``overrides`` applied (and validated)."""
    config_cls = method_entry(name).config_cls
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

    entry = method_entry(method)
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
