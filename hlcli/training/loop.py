"""The training loop itself: optimizer steps as a generator, in the shape of spaCy's ``training/loop.py``.

:func:`training_steps` runs optimizer steps and yields a :class:`StepResult` after each one; the
caller (:func:`hlcli.training.train`) decides what to do with it: log, validate, checkpoint, stop.
One optimizer step (:func:`optimizer_step`) draws ``grad_accum`` single-task batches from the
temperature sampler, back-propagates the loss, clips gradients, steps AdamW and the schedule, and
drops the model's generated-weight cache.

No host synchronisation per step: losses and gradient norms stay on the device, and are read (and
checked for NaN/inf) in one transfer at the steps where the caller needs them — every
``log_every``, ``eval_every`` and ``checkpoint_every`` step, the last step and a Ctrl-C — so a
GPU never waits for the host. A non-finite value found then stops the run naming the step and
task where it first appeared; no checkpoint is written after it. ``skip_nonfinite`` must decide
before the optimizer step, so it checks on the host at every step (slower, by the user's choice).

Data-parallel training (``torchrun`` / ``accelerate launch``): every process draws the same task at
each step and its own slice of that task's sentences (see :mod:`hlcli.sampler`); the model is
wrapped by accelerate's DDP through :class:`LossModule`, whose ``forward`` is the training loss,
with ``find_unused_parameters`` because the other tasks' heads get no gradient in a step.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Callable, Iterator, Mapping, Sequence

import torch
from accelerate import Accelerator
from accelerate.utils import send_to_device
from torch import nn

from hlcli.config import TrainConfig
from hlcli.data.example import Example
from hlcli.errors import Diverged
from hlcli.methods.base import TaggingModel

# With skip_nonfinite, give up when this many batches in a row are skipped: the run has diverged.
MAX_CONSECUTIVE_SKIPS = 100


@dataclass
class TrainState:
    """What the loop carries from step to step and what a checkpoint stores of it (as JSON)."""

    step: int = 0
    best_value: float | None = None
    best_step: int | None = None
    skipped_batches: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, saved: Mapping[str, Any]) -> TrainState:
        return cls(**{f.name: saved[f.name] for f in fields(cls)})


@dataclass
class StepResult:
    """One optimizer step (or, with ``skipped``, one batch skipped by ``skip_nonfinite``)."""

    step: int
    lr: float = math.nan
    # Mean training loss of each step since the previous result that had losses; None between syncs.
    losses: list[float] | None = None
    skipped: bool = False
    stopping: bool = False  # Ctrl-C: the caller saves and stops after this step


class NonFinite(Exception):
    """A NaN/inf loss or gradient norm, at ``step`` on ``task``."""

    def __init__(self, step: int, task: str, what: str) -> None:
        super().__init__(step, task, what)
        self.step, self.task, self.what = step, task, what


class LossModule(nn.Module):
    """``forward(task, batch)`` is the tagger's training loss: the call DDP wraps and hooks.

    The methods' own ``forward`` returns logits (and takes other arguments); this wrapper leaves
    them alone and holds no parameter of its own, so checkpoints keep the tagger's names.
    """

    def __init__(self, tagger: TaggingModel) -> None:
        super().__init__()
        self.tagger = tagger

    def forward(self, task: str, batch: dict[str, Any], *, label_smoothing: float = 0.0,
                reduction: str = "mean") -> torch.Tensor:
        # ``reduction`` is passed only when it is not the default, so a tagger written before
        # loss_reduction existed (its ``loss`` without the keyword) still trains with the mean.
        extra = {} if reduction == "mean" else {"reduction": reduction}
        return self.tagger.loss(task, batch, label_smoothing=label_smoothing, **extra)


@dataclass
class Loop:
    """Everything one optimizer step touches (built by :func:`hlcli.training.train`)."""

    config: TrainConfig
    accelerator: Accelerator
    tagger: TaggingModel
    model: nn.Module  # LossModule, DDP-wrapped when data-parallel
    params: list[nn.Parameter]
    optimizer: Any
    scheduler: Any
    batches: Iterator[tuple[str, dict[str, Any]]]


@dataclass
class StepOutput:
    """An optimizer step's values still on the device, in the order the loop checks them."""

    tasks: list[str] = field(default_factory=list)
    losses: list[torch.Tensor] = field(default_factory=list)
    norm: torch.Tensor | None = None


def batches(sampler: Iterator[tuple[str, list[int]]], tagger: TaggingModel, train_sets: Mapping[str, Sequence[Example]],
            device: torch.device) -> Iterator[tuple[str, dict[str, Any]]]:
    """The sampler's batches, collated and on ``device`` (pinned, copied without blocking on CUDA).

    Drawn lazily, one per micro-batch: the sampler's state at a checkpoint is exactly what was used.
    """
    cuda = device.type == "cuda"
    for task, indices in sampler:
        batch = tagger.collate(task, [train_sets[task][i] for i in indices])
        if cuda:
            batch = {k: v.pin_memory() if torch.is_tensor(v) else v for k, v in batch.items()}
        yield task, send_to_device(batch, device, non_blocking=cuda)


def training_steps(loop: Loop, state: TrainState, *, stop_requested: Callable[[], bool],
                   step_fn: Callable[[Loop], StepOutput | None] | None = None) -> Iterator[StepResult]:
    """Optimizer steps from ``state.step`` to ``config.max_steps``, one :class:`StepResult` each.

    ``state`` is advanced in place. Raises :class:`NonFinite` (at the next sync) unless
    ``skip_nonfinite``, and :class:`~hlcli.errors.Diverged` after ``MAX_CONSECUTIVE_SKIPS`` skipped batches in a row.
    """
    config, step_fn = loop.config, step_fn or optimizer_step
    pending: list[tuple[int, StepOutput]] = []
    consecutive_skips = 0
    loop.model.train()
    while state.step < config.max_steps:
        step = state.step + 1
        output = step_fn(loop)
        if output is None:  # skip_nonfinite skipped this batch
            state.skipped_batches += 1
            consecutive_skips += 1
            if consecutive_skips >= MAX_CONSECUTIVE_SKIPS:
                raise Diverged(
                    f"{consecutive_skips} batches in a row gave a non-finite loss or gradient at step {step}",
                    hint="lower --lr or check the data",
                )
            yield StepResult(step, skipped=True)
            continue
        consecutive_skips = 0
        state.step = step
        pending.append((step, output))
        stopping = any_process(stop_requested(), loop.accelerator) and step < config.max_steps
        losses = None
        if stopping or _sync_step(step, config):
            losses, pending = settle(pending, loop), []
        yield StepResult(step, lr=loop.scheduler.get_last_lr()[0], losses=losses, stopping=stopping)


def _sync_step(step: int, config: TrainConfig) -> bool:
    every = (config.log_every, config.eval_every, config.checkpoint_every)
    return step == config.max_steps or any(step % n == 0 for n in every)


def optimizer_step(loop: Loop) -> StepOutput | None:
    """One optimizer step over ``grad_accum`` single-task micro-batches; None if skipped.

    ``loss_reduction = "mean"``: the gradient is the mean over micro-batches of each one's mean
    token loss. ``"sum"``: it is the gradient of the sum of every token loss of every micro-batch
    (the authors' summed loss over the step's sentences), so ``grad_accum`` micro-batches of n
    sentences give the gradient of one batch of ``grad_accum × n``; with several processes DDP
    then averages the per-process sums, as the authors' 4-GPU runs did.
    """
    config, accelerator, optimizer = loop.config, loop.accelerator, loop.optimizer
    summed = config.loss_reduction == "sum"
    output = StepOutput()
    for _ in range(config.grad_accum):
        task, batch = next(loop.batches)
        with accelerator.autocast():
            loss = loop.model(task, batch, label_smoothing=config.label_smoothing, reduction=config.loss_reduction)
        if config.skip_nonfinite and any_process(not torch.isfinite(loss).item(), accelerator):
            optimizer.zero_grad(set_to_none=True)
            return None
        # accelerate divides by grad_accum (a mean over micro-batches); a summed loss undoes that.
        # DDP averages the gradients over processes.
        accelerator.backward(loss * config.grad_accum if summed and config.grad_accum > 1 else loss)
        output.tasks.append(task)
        output.losses.append(loss.detach())
    if config.max_grad_norm > 0:
        norm = accelerator.clip_grad_norm_(loop.params, config.max_grad_norm)
        # A finite loss can still overflow in backward; fp16's grad scaler handles that case itself.
        if norm is not None and accelerator.scaler is None:
            if config.skip_nonfinite and not torch.isfinite(norm):
                optimizer.zero_grad(set_to_none=True)
                return None
            output.norm = norm.detach()
    optimizer.step()
    loop.scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    loop.tagger.invalidate_cache()
    return output


def settle(pending: list[tuple[int, StepOutput]], loop: Loop) -> list[float]:
    """Read the pending steps' values in one transfer: each step's mean loss, or NonFinite at the first bad value.

    With several processes the values are summed over them first (a NaN anywhere is then seen
    everywhere, so every process stops at the same step) and the losses averaged.
    """
    flat = [value for _, output in pending for value in (*output.losses, *_optional(output.norm))]
    values = torch.stack(flat).double()
    processes = loop.accelerator.num_processes
    if processes > 1:
        torch.distributed.all_reduce(values)
        values /= processes
    numbers = iter(values.tolist())
    means = []
    for step, output in pending:
        losses = [next(numbers) for _ in output.losses]
        norm = [next(numbers) for _ in _optional(output.norm)]
        for task, value in zip(output.tasks, losses):
            if not math.isfinite(value):
                raise NonFinite(step, task, f"loss ({value})")
        if norm and not math.isfinite(norm[0]):
            raise NonFinite(step, output.tasks[-1], f"gradient norm ({norm[0]})")
        total = 0.0
        for value in losses:  # summed like the earlier per-step `.item()` loop: the same logged figures
            total += value
        means.append(total / len(losses))
    return means


def _optional(value: torch.Tensor | None) -> tuple[torch.Tensor, ...]:
    return () if value is None else (value,)


def any_process(flag: bool, accelerator: Accelerator) -> bool:
    """``flag`` or-ed over the processes: a decision that changes the control flow must be shared."""
    if accelerator.num_processes == 1:
        return flag
    value = torch.tensor([float(flag)], device=accelerator.device)
    torch.distributed.all_reduce(value, op=torch.distributed.ReduceOp.MAX)
    return bool(value.item())
