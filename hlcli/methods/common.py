"""What every method shares (as peft keeps ``tuners_utils.py`` and ``constants.py``).

* the backbone families — :data:`T5_MODEL_TYPES` (encoder-decoder, SentT' generation) and
  :data:`ENCODER_MODEL_TYPES` (BERT-family encoders, token classification) — and
  :func:`build_for_backbone`, which picks a method's T5 or encoder model class by family;
* :func:`encoder_layers`, the check every encoder model runs on its backbone;
* config-field helpers for the methods' config dataclasses: :func:`help_field` (a field with
  ``--help`` text), :func:`check_flags` and :func:`check_positive_ints` (``__post_init__`` checks).

The tables live in :mod:`hlcli.backbones` (which loads backbones and must not import the methods);
nothing here imports torch or transformers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Sequence

from hlcli.backbones import ENCODER_MODEL_TYPES, T5_MODEL_TYPES, Backbone
from hlcli.errors import UsageError
from hlcli.fields import help_field  # noqa: F401 - re-exported: the methods' configs import it from here

if TYPE_CHECKING:
    from hlcli.methods.base import TaggingModel, TaskSpec

Builder = Callable[..., "TaggingModel"]


def build_for_backbone(
    method: str,
    config: Any,
    backbone: Backbone,
    tasks: Sequence[TaskSpec],
    *,
    t5: Builder,
    encoder: Builder | None = None,
) -> TaggingModel:
    """Call ``t5`` or ``encoder`` (``(config, model, tokenizer, tasks)``) by the backbone's family.

    Every method's build function dispatches here, so the facts in its registry entry are
    enforced the same way for all: a ``single_task`` method takes exactly one task, a
    ``needs_decoder`` method (no ``encoder`` builder) refuses encoder-only backbones, and every
    method refuses another ``model_type`` with the same message.
    """
    from hlcli.methods import method_entry

    entry = method_entry(method)
    if entry.single_task and len(tasks) != 1:
        raise UsageError(
            f"{method} is single-task: one model per dataset, "
            f"got {len(tasks)} tasks ({', '.join(t.name for t in tasks)})",
            hint=f"train one {method} model per dataset (hl compare does)",
        )
    model_type = backbone.config.model_type
    if entry.needs_decoder and model_type not in T5_MODEL_TYPES:
        raise UsageError(
            f"{method} needs an encoder-decoder (T5) backbone",
            expected=f"model_type one of {', '.join(T5_MODEL_TYPES)}, got {model_type!r}",
        )
    if model_type in T5_MODEL_TYPES:
        return t5(config, backbone.model, backbone.tokenizer, tasks)
    if model_type in ENCODER_MODEL_TYPES and encoder is not None:
        return encoder(config, backbone.model, backbone.tokenizer, tasks)
    raise UsageError(
        f"backbone {backbone.name!r} has model_type {model_type!r}, which {method} does not support",
        expected=f"one of {', '.join(T5_MODEL_TYPES + ENCODER_MODEL_TYPES)}",
    )


def encoder_layers(backbone: Any) -> Any:
    """``backbone.encoder.layer`` of a supported, bidirectional encoder (else a UsageError)."""
    model_type = getattr(backbone.config, "model_type", None)
    if model_type not in ENCODER_MODEL_TYPES:
        raise UsageError(
            f"backbone model type {model_type!r} has no HyperLoader encoder path",
            expected="one of " + ", ".join(ENCODER_MODEL_TYPES),
        )
    if getattr(backbone.config, "is_decoder", False):
        raise UsageError(f"backbone {model_type!r} is configured as a decoder", expected="a bidirectional encoder")
    return backbone.encoder.layer


def check_positive_ints(config: Any, *names: str) -> None:
    """Raise a UsageError unless every field in ``names`` is an int >= 1 (bools refused)."""
    for name in names:
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise UsageError(f"{name} must be a positive integer, got {value!r}")


def check_flags(config: Any, *names: str) -> None:
    """Raise a UsageError unless every field in ``names`` is a bool."""
    for name in names:
        if not isinstance(getattr(config, name), bool):
            raise UsageError(f"{name} must be true or false, got {getattr(config, name)!r}")
