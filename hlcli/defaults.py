"""Settings whose default depends on the run: ``lr``, ``head_lr`` and ``warmup_steps``.

:class:`hlcli.config.TrainConfig` leaves them None ("not set"); :func:`resolve_defaults` fills them once
the backbone is known, and ``config.json`` records the values used.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hlcli.config import TrainConfig

# What they were before they depended on the backbone (hl compare's run identity treats them as
# defaults, see config_hash):
FORMER_DEFAULTS: dict[str, Any] = {"lr": 3e-4, "warmup_steps": 500}
# Per backbone family: T5 keeps the papers' rate (it has no per-task heads); encoders get the
# rates measured on MiniLM (README "Quick start", recipes/quickstart.toml): at 3e-4 HyperLoader
# stays at the label prior, and the freshly initialised heads need a far larger step.
BACKBONE_DEFAULTS: dict[str, dict[str, float | None]] = {
    "t5": {"lr": 3e-4, "head_lr": None},
    "encoder": {"lr": 1e-4, "head_lr": 3e-3},
}
# Warm-up: 6 % of the run (as BERT-style fine-tuning recipes use), at most the papers' 500 steps,
# which is what their 65,536-step runs get. More than 20 % of the run is warned about.
WARMUP_SHARE = 0.06
WARMUP_CAP = 500
WARMUP_WARN_SHARE = 0.2


def default_warmup(max_steps: int) -> int:
    """Warm-up steps when ``warmup_steps`` is not set: 6 % of ``max_steps``, at most 500."""
    return min(WARMUP_CAP, math.ceil(WARMUP_SHARE * max_steps))


def resolve_defaults(config: TrainConfig, *, family: str, resumed: bool = False) -> tuple[list[str], list[str]]:
    """Fill the settings left unset (None) for a backbone of ``family`` ("t5" or "encoder").

    Returns (notes on what was filled in, warnings). Settings already set are kept, whatever they
    are; a warm-up longer than 20 % of the run is only warned about. A ``resumed`` run, and one
    made by ``hl adapt``, keep ``head_lr`` as recorded: before it depended on the backbone, None
    meant "= lr" (and a resumed optimizer restores its rates anyway).
    """
    defaults = BACKBONE_DEFAULTS[family]
    filled: list[str] = []
    if config.lr is None:
        config.lr = defaults["lr"]
        filled.append(f"lr {config.lr:g}")
    if config.head_lr is None and not resumed and config.adapt is None and defaults["head_lr"] is not None:
        config.head_lr = defaults["head_lr"]
        filled.append(f"head_lr {config.head_lr:g}")
    warned = _warmup_warnings(config) if config.warmup_steps is not None else []
    if config.warmup_steps is None:
        config.warmup_steps = default_warmup(config.max_steps)
        share = f"{WARMUP_SHARE:.0%} of {config.max_steps:,} steps, at most {WARMUP_CAP}"
        filled.append(f"warmup_steps {config.warmup_steps} ({share})")
    if not filled:
        return [], warned
    return [f"defaults for {'an' if family == 'encoder' else 'a'} {family} backbone: {', '.join(filled)}"], warned


def _warmup_warnings(config: TrainConfig) -> list[str]:
    warmup, steps, lr = config.warmup_steps or 0, config.max_steps, config.lr or 0.0
    if warmup <= WARMUP_WARN_SHARE * steps:
        return []
    hint = f"leave warmup_steps unset for {default_warmup(steps)} ({WARMUP_SHARE:.0%} of the run)"
    if warmup >= steps:
        return [f"warmup_steps {warmup:,} is not shorter than max_steps {steps:,}: the learning rate peaks at "
                f"{lr * steps / warmup:.2e} instead of {lr:.2e}; {hint}"]
    return [f"warmup_steps {warmup:,} is {warmup / steps:.0%} of max_steps {steps:,}: the learning rate reaches "
            f"{lr:.2e} only at step {warmup:,}; {hint}"]
