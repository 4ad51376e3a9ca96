"""Method registry (peft-style): a method is a config dataclass, a build function and its facts.

    register_method("hyperloader", config_cls=HyperLoaderConfig, build=build_hyperloader,
                    display_name="HyperLoader", paper={"t5-base": ("229,640,304", "6,784,368")})
    model = build_model("hyperloader", backbone="t5-base", tasks=[TaskSpec("atis", [...])],
                        overrides={"lora_rank": 4})
    method_entry("unipelt").single_task  # True: what compare and params read

Built-in methods register themselves when their package is imported; the registry imports
them on first use so that ``import hlcli.methods`` stays cheap (no torch, no transformers).

Where things live: :mod:`hlcli.methods.base` (``TaggingModel``, ``TaskSpec``: what the loop
needs), :mod:`hlcli.methods.common` (backbone families and dispatch, config-field helpers),
:mod:`hlcli.methods.plain` (the taggers on a plain backbone: SentT' on T5, token
classification on encoders), then one package per method, each with its config and its
``register_method`` call (:data:`BUILTIN_METHOD_MODULES`): ``hyperloader`` (also the home of the
weight-source taggers and the hypernetwork, which ``hyperformer``, ``lora_only``, ``static`` and
``unipelt`` on T5 reuse), ``hyperformer``, ``hyperdecoder``, ``unipelt`` and the ablations
``lora_only``, ``static`` and ``full_finetune``.
"""

from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from hlcli.errors import UsageError, unknown_name

if TYPE_CHECKING:  # base imports torch: the registry's facts (hl compare --paper, --dry-run) need none
    from hlcli.methods.base import TaggingModel, TaskSpec

# Modules that call register_method on import, in the column order of hl compare's tables (the papers').
BUILTIN_METHOD_MODULES = (
    "hlcli.methods.hyperloader",
    "hlcli.methods.hyperformer",
    "hlcli.methods.hyperdecoder",
    "hlcli.methods.unipelt",
    # the ablations, in the order their one package registered them
    "hlcli.methods.lora_only",
    "hlcli.methods.static",
    "hlcli.methods.full_finetune",
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
    # Parameter counts the papers report, per parameter-count backbone (``hlcli.compare.param_counts.BACKBONES``):
    # (total, trainable) as printed, exact or rounded ("239M").
    paper: Mapping[str, tuple[str, str]] = dataclasses.field(default_factory=dict)
    # Changes to the method's modules since its first release, oldest first (:class:`ModuleRevision`).
    revisions: tuple[ModuleRevision, ...] = ()

    def module_revision(self, model_type: str | None = None) -> int:
        """The revision of this method's modules on a backbone of ``model_type`` (1: as first
        released; ``None``: the highest on any family). Checkpoints record it (``module_revision``)."""
        from hlcli.backbones import T5_MODEL_TYPES

        family = None if model_type is None else ("t5" if model_type in T5_MODEL_TYPES else "encoder")
        return max((r.number for r in self.revisions if family is None or family in r.families), default=1)


@dataclass(frozen=True)
class ModuleRevision:
    """A change to a method's modules after which the same config computes other numbers (seeded
    initial values, losses, F1). Not part of a run's config (``hl compare``'s folder names stay):
    each checkpoint records the revision it was trained at, and ``hl compare`` never reuses a run
    made at another one (:mod:`hlcli.compare.execute`)."""

    number: int  # 2, 3, ...: a checkpoint recorded without one was made at revision 1
    change: str  # what changed, as the CHANGELOG says
    families: tuple[str, ...] = ("t5", "encoder")  # the backbone families whose models changed


# The built-in methods' revisions, stated side by side because one change often spans the methods
# that share a module (``register_method(revisions=...)`` gives another method its own).
_ISSUE_18 = (
    "the authors' modules: task projector init N(0, 0.01), projector LayerNorm eps 1e-6, adapter activation gelu_new"
)
BUILTIN_REVISIONS: dict[str, tuple[ModuleRevision, ...]] = {
    "hyperloader": (ModuleRevision(2, _ISSUE_18),),
    "hyperformer": (ModuleRevision(2, _ISSUE_18),),
    "lora-only": (ModuleRevision(2, _ISSUE_18),),
    # HyperLoader's adapter module (both families); unipelt uses it on T5 only (its encoder adapter is its own).
    "static": (ModuleRevision(2, "adapter activation gelu_new (HyperLoader's adapter module)"),),
    "unipelt": (ModuleRevision(2, "adapter activation gelu_new (HyperLoader's adapter module, T5 only)", ("t5",)),),
}


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
    revisions: Sequence[ModuleRevision] | None = None,
) -> None:
    """Make ``name`` buildable. ``config_cls`` is a dataclass validated in ``__post_init__``;
    the other arguments are the :class:`MethodEntry` facts (``display_name`` defaults to ``name``,
    ``revisions`` to the built-in method's in :data:`BUILTIN_REVISIONS`)."""
    if not dataclasses.is_dataclass(config_cls):
        raise TypeError(f"config_cls of method {name!r} must be a dataclass")
    if name in _REGISTRY and _REGISTRY[name].config_cls is not config_cls:
        raise ValueError(f"method {name!r} is already registered")
    revisions = tuple(BUILTIN_REVISIONS.get(name, ()) if revisions is None else revisions)
    if [r.number for r in revisions] != list(range(2, len(revisions) + 2)):
        raise ValueError(f"revisions of method {name!r} must be numbered 2, 3, ... oldest first")
    _REGISTRY[name] = MethodEntry(
        name, config_cls, build, display_name or name, single_task, needs_decoder, dict(paper or {}), revisions
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


def registered_methods() -> list[str]:
    """The built-in methods in :data:`BUILTIN_METHOD_MODULES`' order, then any other registered method
    alphabetically: the column order of ``hl compare``'s tables (:func:`hlcli.compare.facts.method_order`).
    Fixed by that tuple, not by which module happened to register first."""
    _load_builtins()
    builtin = [module.rpartition(".")[2].replace("_", "-") for module in BUILTIN_METHOD_MODULES]
    return [m for m in builtin if m in _REGISTRY] + sorted(m for m in _REGISTRY if m not in builtin)


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
    if not model.method:  # a plugin's build may return a plain tagger: it is this method's model
        model.method = method
    if model.method != method:  # the model states its method at construction; checkpoints record it
        raise TypeError(f"the build function of method {method!r} made a {model.method or 'method-less'!r} model")
    model.backbone_name = backbone
    return model


def __getattr__(name: str) -> Any:
    # ``from hlcli.methods import TaskSpec`` keeps working without importing torch up front.
    if name in ("TaggingModel", "TaskSpec"):
        from hlcli.methods import base

        return getattr(base, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
