"""Module revisions of checkpoints: which revision of its method's modules a model's weights were
trained at (:class:`hlcli.methods.ModuleRevision`), as a checkpoint's ``config.json`` records it.

Apart from :mod:`hlcli.checkpoint` (which records and reads them) so that the rule is in one short
place: a resumed or adapted run keeps the oldest revision its weights went through, and ``hl
compare`` never takes a checkpoint of another revision for a current run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hlcli.methods import known_methods, method_entry

if TYPE_CHECKING:
    from hlcli.methods.base import TaggingModel


def trained_revision(model: TaggingModel) -> int:
    """The module revision ``model``'s weights were trained at: its method's current one, unless
    they started from an older checkpoint's (a resumed or adapted run keeps the older number, so
    ``hl compare`` never takes it for a current run)."""
    if model.method not in known_methods():  # a model built outside the registry: nothing to record against
        return 1
    current = method_entry(model.method).module_revision(model.backbone.config.model_type)
    return min(getattr(model, "loaded_revision", current), current)


def recorded_revision(config: dict[str, Any]) -> int:
    """The module revision a checkpoint config records (1: written before revisions were recorded)."""
    value = config.get("module_revision", 1)
    return value if type(value) is int and value >= 1 else 1


def current_revision(config: dict[str, Any]) -> int:
    """This hlcli's module revision of the method and backbone family a checkpoint config names."""
    if config.get("method") not in known_methods():  # loading it fails with its own error
        return recorded_revision(config)
    backbone = config.get("backbone")
    fingerprint = backbone.get("fingerprint") if isinstance(backbone, dict) else None
    model_type = fingerprint.get("model_type") if isinstance(fingerprint, dict) else None
    return method_entry(config["method"]).module_revision(model_type)


def remember_revision(model: TaggingModel, config_path: Path) -> None:
    """Note the module revision of the checkpoint whose tensors ``model`` now holds (beside them),
    so that the checkpoints a resumed run writes record it, not this hlcli's (:func:`trained_revision`)."""
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return  # tensors from elsewhere: nothing recorded to keep
    if isinstance(config, dict):
        model.loaded_revision = recorded_revision(config)
