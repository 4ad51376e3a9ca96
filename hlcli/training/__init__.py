"""``hl train``: multi-task training. :func:`train` is the entry point; where the rest is:

* :mod:`hlcli.training.prepare` — setting a run up: accelerator, run folder, data, model, optimizer;
* :mod:`hlcli.training.loop` — **the training loop**: optimizer steps as a generator of
  :class:`~hlcli.training.loop.StepResult`, the :class:`~hlcli.training.loop.TrainState` it advances;
* :mod:`hlcli.training.consumers` — what a run does with each step: log, validate, checkpoint, stop;
* :mod:`hlcli.training.validate` — validation loss (and F1) per task;
* :mod:`hlcli.training.checkpoints` — writing and restoring ``checkpoints/last`` and ``best``
  (their files are :mod:`hlcli.checkpoint`'s: safetensors + JSON, never pickle);
* :mod:`hlcli.training.signals` — Ctrl-C, SIGTERM and SIGHUP; :mod:`hlcli.training.report` — defaults
  chosen, duration estimate, TensorBoard; :mod:`hlcli.runs` — the run folder and its logs.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed

from hlcli import runs
from hlcli.config import TrainConfig, read_config
from hlcli.defaults import resolve_defaults
from hlcli.errors import HLError, UsageError
from hlcli.io import Log
from hlcli.methods.base import TaggingModel
from hlcli.training import checkpoints, consumers, prepare, report
from hlcli.training.loop import StepResult, TrainState
from hlcli.training.prepare import ModelSetup
from hlcli.training.signals import Interrupted, signals_interrupt

__all__ = ["train", "resume_config", "scored_checkpoint", "TrainResult", "TrainState", "StepResult", "ModelSetup",
           "Interrupted"]


@dataclass
class TrainResult:
    """What a finished run reports; everything is also in the run folder."""

    run_dir: Path
    steps: int
    best_metric: str
    best_value: float | None
    best_step: int | None
    final_metrics: dict[str, float] = field(default_factory=dict)
    skipped_batches: int = 0
    main_process: bool = True  # False on ranks > 0 of a multi-process run (they stay quiet)

    def summary(self) -> str:
        """``trained 4 steps; best val_loss 1.2345 at step 2; hl evaluate scores checkpoints/last
        (step 4, select_checkpoint = "last")``: the best step is not always the model scored."""
        best = "n/a" if self.best_value is None else f"{self.best_value:.4f} at step {self.best_step}"
        return (f"trained {self.steps} steps; best {self.best_metric} {best}; "
                f"hl evaluate scores {scored_checkpoint(self.run_dir)}")


def scored_checkpoint(run_dir: Path) -> str:
    """``checkpoints/last (step 4, select_checkpoint = "last")``: what a run folder stands for."""
    try:
        checkpoint, _ = runs.resolve_checkpoint(run_dir)
        step = runs.checkpoint_step(checkpoint)
    except HLError:
        return "nothing yet (no checkpoint written)"
    selected = runs.selected_checkpoint(run_dir)
    return f'{runs.CHECKPOINTS}/{checkpoint.name} (step {step}, select_checkpoint = "{selected}")'


def resume_config(run_dir: str | Path, *, max_steps: int | None = None) -> TrainConfig:
    """The config of an existing run, for ``hl train --resume`` (only ``max_steps`` may change).

    A run killed before its first checkpoint has only its config: resuming it starts over at step 0.
    One killed after an evaluation but before its first ``checkpoint_every`` resumes from ``best``.
    A run made by ``hl adapt`` resumes with ``setup=hlcli.adapt.setup_for(config)``.
    """
    run_dir = Path(run_dir)
    if not (run_dir / runs.CONFIG).is_file():
        raise HLError("nothing to resume: no config.json and no checkpoints/last", path=run_dir,
                      hint="pass a run folder written by hl train")
    config = read_config(run_dir / runs.CONFIG)
    config.output_dir = str(run_dir)
    if max_steps is not None:
        config.max_steps = max_steps
    return config


def train(config: TrainConfig, *, resume: bool = False, model: TaggingModel | None = None, log: Log | None = None,
          on_step: Callable[[StepResult], None] | None = None, setup: ModelSetup | None = None,
          restart: bool = False) -> TrainResult:
    """Train ``config.method`` on ``config.tasks``; with ``resume`` continue ``config.output_dir``
    (from ``checkpoints/last``, else ``checkpoints/best``; ``restart``: start it over at step 0).
    ``config`` itself is left as given: the run's own copy gets the defaults and the run folder.

    The main process holds the run folder's lock (:class:`hlcli.runs.RunLock`) from before its first
    write to the end: a second writer of the same folder fails at once.

    ``model``: a ready-built model to train instead of building ``config.method`` (it must serve
    every task of ``config.tasks``); only its parameters with ``requires_grad`` are trained, so
    freeze what must not change before passing it. ``setup``: build the model and its optimizer
    groups from the task specs instead — a run made by ``hl adapt`` (``config.adapt`` set) needs
    :func:`hlcli.adapt.setup_for`'s. ``log`` gets one-line messages for the user (main process
    only); ``on_step`` is called after every optimizer step.
    """
    if config.adapt is not None and model is None and setup is None:
        raise UsageError("config.adapt is set (a run made by hl adapt) but no model setup was given",
                         hint="pass setup=hlcli.adapt.setup_for(config)")
    # A deep copy, not dataclasses.replace: that would run __post_init__ again (its fp16 warning too).
    config = copy.deepcopy(config)
    accelerator = prepare.make_accelerator(config)
    if model is None and setup is None:
        prepare.check_method(config)
    main = accelerator.is_main_process
    say = (log if main else None) or (lambda line: None)
    run_dir = prepare.run_folder(config, resume=resume)
    with signals_interrupt():
        lock = runs.RunLock(run_dir).acquire() if main else None
        try:
            return _train(config, accelerator, run_dir, resume=resume, restart=restart, model=model, setup=setup,
                          say=say, on_step=on_step)  # fmt: skip
        finally:
            if lock is not None:
                lock.release()


def _train(config: TrainConfig, accelerator: Accelerator, run_dir: Path, *, resume: bool, restart: bool,
           model: TaggingModel | None, setup: ModelSetup | None, say: Log,
           on_step: Callable[[StepResult], None] | None) -> TrainResult:  # fmt: skip
    """:func:`train` once the run folder is locked."""
    main = accelerator.is_main_process
    if not resume:
        prepare.check_empty(run_dir)  # under the lock: a run that finished meanwhile is not written into
    has_config = (run_dir / runs.CONFIG).is_file()
    accelerator.wait_for_everyone()  # every process has looked at the folder before the main one fills it
    set_seed(config.seed)  # the same on every process: identical initial weights
    train_sets, val_sets = prepare.load_data(config)
    model, groups = prepare.make_model(config, train_sets, val_sets, given=model, setup=setup)
    # Unset lr / head_lr / warmup_steps get the backbone's defaults before config.json records them.
    notes, warned = resolve_defaults(config, family=report.backbone_family(model), resumed=resume)
    for line in warned:
        say(f"warning: {line}")
    source = prepare.open_run_dir(config, run_dir, model, accelerator, resume=resume, restart=restart,
                                  has_config=has_config, say=say)  # fmt: skip
    if main:  # the thread count changes the last bits of CPU results (README, "Reproducibility")
        threads = f"{torch.get_num_threads()} CPU threads"
        runs.append_log(run_dir, f"torch {torch.__version__} on {accelerator.device}, {threads}")
        for line in notes + [f"warning: {line}" for line in warned]:
            runs.append_log(run_dir, line)
    loop, sampler = prepare.build_loop(config, accelerator, model, train_sets, groups=groups)
    state = TrainState()
    if source is not None:
        state = checkpoints.restore(source, loop, sampler, accelerator)
        if main:
            runs.truncate_metrics(run_dir, state.step)
            runs.append_log(run_dir, f"resumed at step {state.step}")
        say(f"resumed {run_dir} at step {state.step}")
    report.start_tracking(accelerator, config, run_dir, step=state.step)  # --report-to tensorboard
    run = consumers.RunContext(loop, state, sampler, val_sets, run_dir, say)
    try:
        metrics = consumers.consume(run, on_step=on_step)
    finally:
        report.stop_tracking(accelerator)  # flushes TensorBoard's events (on Ctrl-C and errors too)
    return TrainResult(run_dir=run_dir, steps=state.step, best_metric=config.select_best_by,
                       best_value=state.best_value, best_step=state.best_step, final_metrics=metrics,
                       skipped_batches=state.skipped_batches, main_process=main)  # fmt: skip
