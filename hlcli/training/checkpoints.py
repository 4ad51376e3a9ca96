"""Writing and reading back a run's checkpoints (``checkpoints/last``, ``checkpoints/best``).

The files themselves (model, optimizer, scheduler, sampler, RNG: safetensors + JSON, never pickle) are
:mod:`hlcli.checkpoint`'s; each checkpoint is written into a temporary folder swapped in whole
(:func:`hlcli.io.atomic_dir`), so a kill at any moment leaves the previous one complete.
"""

from __future__ import annotations

from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import gather_object

from hlcli.checkpoint import read_training_state, write_model_files, write_training_state
from hlcli.io import atomic_dir
from hlcli.methods.base import TaggingModel
from hlcli.sampler import TaskSampler
from hlcli.training.loop import Loop, TrainState


def between_files(folder: Path) -> None:
    """Called while a checkpoint is half-written: its model files are in the temporary folder, its
    training state not yet. Does nothing; tests/test_killsafe.py replaces it with a pause, in the
    ``hl train`` process it kills, to SIGKILL that process with ``checkpoints/last`` half-written."""


def save(folder: Path, tagger: TaggingModel, loop: Loop, sampler: TaskSampler, state: TrainState,
         metrics: dict[str, float]) -> None:
    """Called by every process; the main one writes. Weights, optimizer and sampler are the same
    everywhere, the torch RNG (dropout) is not: each process's is kept."""
    accelerator, config = loop.accelerator, loop.config
    torch_rng = gather_object([torch.get_rng_state()])
    if accelerator.is_main_process:
        extra = {"step": state.step, "train_config": config.to_dict()}
        with atomic_dir(folder) as tmp:
            write_model_files(tagger, tmp, metrics=metrics, extra=extra)
            between_files(folder)
            write_training_state(tmp, optimizer=loop.optimizer, scheduler=loop.scheduler, sampler=sampler,
                                 scaler=accelerator.scaler, torch_rng=torch_rng,
                                 state={**state.to_dict(), "select_best_by": config.select_best_by})  # fmt: skip
    accelerator.wait_for_everyone()


def restore(source: Path, loop: Loop, sampler: TaskSampler, accelerator: Accelerator) -> TrainState:
    """Optimizer, schedule, sampler, grad scaler and RNG back as ``source`` saved them; the loop's state."""
    saved = read_training_state(source, optimizer=loop.optimizer, scheduler=loop.scheduler, sampler=sampler,
                                scaler=accelerator.scaler, rank=accelerator.process_index)  # fmt: skip
    return TrainState.from_dict(saved)
