"""Faults injected into a real training run: a Ctrl-C or a non-finite loss at an exact moment.

The model, data, optimizer and checkpoints stay real; only the model's training loss is wrapped,
so a test decides what happens at the N-th training loss call (N-th micro-batch).
"""

from __future__ import annotations

import os
import signal
from typing import Callable

import torch

Hook = Callable[[torch.nn.Module, int], "torch.Tensor | None"]


def on_training_loss(monkeypatch, hook: Hook) -> None:
    """Every model ``hlcli.training`` builds calls ``hook(model, calls)`` before each training loss;
    a tensor it returns replaces that loss (``calls`` counts from 1 per built model)."""
    import hlcli.training.prepare

    build = hlcli.training.prepare.build_model

    def build_with_hook(*args, **kwargs):
        model = build(*args, **kwargs)
        real_loss, calls = model.loss, [0]

        def loss(task, batch, **options):
            if model.training:
                calls[0] += 1
                override = hook(model, calls[0])
                if override is not None:
                    return override
            return real_loss(task, batch, **options)

        model.loss = loss  # the loop calls tagger.loss (hlcli.training.loop.LossModule)
        return model

    monkeypatch.setattr(hlcli.training.prepare, "build_model", build_with_hook)


def ctrl_c_at(call: int) -> Hook:
    """Send this process SIGINT (Ctrl-C) during the ``call``-th training loss."""
    return lambda model, calls: os.kill(os.getpid(), signal.SIGINT) if calls == call else None


def loss_at(call: int, value: float) -> Hook:
    """A ``value`` (nan, inf) training loss at the ``call``-th micro-batch."""
    return lambda model, calls: torch.tensor(value, requires_grad=True) if calls == call else None
