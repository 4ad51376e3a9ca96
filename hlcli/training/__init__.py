"""``hl train``: multi-task training. Where things are:

* :mod:`hlcli.training.loop` — **the training loop**: optimizer steps as a generator of
  :class:`~hlcli.training.loop.StepResult`, the :class:`~hlcli.training.loop.TrainState` it advances;
* this module — :func:`train`, the entry point: builds accelerator, data, model and optimizer, then
  consumes the loop's steps and does what they call for (log, validate, checkpoint, stop);
* :mod:`hlcli.training.validate` — validation loss (and F1) per task;
* :mod:`hlcli.checkpoint` — the files of a checkpoint (model, optimizer, scheduler, sampler, RNG:
  safetensors + JSON, never pickle); :mod:`hlcli.runs` — the run folder and its logs.

Only the main process validates and writes the run folder; every process takes the same
decisions (the validation metrics are broadcast), so data-parallel runs stay in lockstep.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
from accelerate import Accelerator, DataLoaderConfiguration
from accelerate.utils import DistributedDataParallelKwargs, broadcast_object_list, gather_object, set_seed
from transformers import get_constant_schedule_with_warmup, get_linear_schedule_with_warmup

from hlcli import runs
from hlcli.checkpoint import (check_run_config, load_tensors, load_trainable, read_training_state, write_model_files,
                              write_training_state)
from hlcli.config import TrainConfig, read_config, resolve_defaults, save_config
from hlcli.data.corpora import label_types, load_split
from hlcli.data.example import Example
from hlcli.errors import HLError, UsageError
from hlcli.io import atomic_dir
from hlcli.methods import build_model, method_config
from hlcli.methods.base import TaggingModel, TaskSpec
from hlcli.sampler import TaskSampler
from hlcli.training.loop import Loop, LossModule, NonFinite, StepResult, TrainState, batches, training_steps
from hlcli.training import report
from hlcli.training.validate import summary, validate

__all__ = ["train", "resume_config", "TrainResult", "TrainState", "StepResult", "Interrupted"]

Log = Callable[[str], None]
# Test-only (tests/test_killsafe.py): seconds to pause in the middle of every checkpoints/last write,
# so that a test can SIGKILL ``hl train`` while that checkpoint is half-written. Never set it otherwise.
DEBUG_CHECKPOINT_DELAY = "HL_DEBUG_CHECKPOINT_DELAY"


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
        return f"trained {self.steps} steps; best {self.best_metric} {best}; hl evaluate scores {scored_checkpoint(self.run_dir)}"


def scored_checkpoint(run_dir: Path) -> str:
    """``checkpoints/last (step 4, select_checkpoint = "last")``: what a run folder stands for."""
    try:
        checkpoint, _ = runs.resolve_checkpoint(run_dir)
        step = runs.checkpoint_step(checkpoint)
    except HLError:
        return "nothing yet (no checkpoint written)"
    return f'{runs.CHECKPOINTS}/{checkpoint.name} (step {step}, select_checkpoint = "{runs.selected_checkpoint(run_dir)}")'


def resume_config(run_dir: str | Path, *, max_steps: int | None = None) -> TrainConfig:
    """The config of an existing run, for ``hl train --resume`` (only ``max_steps`` may change).

    A run killed before its first checkpoint has only its config: resuming it starts over at step 0.
    One killed after an evaluation but before its first ``checkpoint_every`` resumes from ``best``.
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


# Hook for ``hl adapt`` (hlcli.adapt): given the specs of the tasks to train (labels read from the
# data), build the model and its optimizer groups ([{"params": [...], "lr": x}, ...], requires_grad
# already set) instead of build_model and the default groups. The rest of the loop runs unchanged.
ModelSetup = Callable[[list[TaskSpec]], tuple[TaggingModel, list[dict[str, Any]]]]


def train(config: TrainConfig, *, resume: bool = False, model: TaggingModel | None = None, log: Log | None = None,
          on_step: Callable[[StepResult], None] | None = None, setup: ModelSetup | None = None,
          restart: bool = False) -> TrainResult:
    """Train ``config.method`` on ``config.tasks``; with ``resume`` continue ``config.output_dir``
    (from ``checkpoints/last``, else ``checkpoints/best``; ``restart``: start it over at step 0).

    The main process holds the run folder's lock (:class:`hlcli.runs.RunLock`) from before its first
    write to the end: a second writer of the same folder fails at once.

    ``model``: a ready-built model to train instead of building ``config.method`` (it must serve
    every task of ``config.tasks``); only its parameters with ``requires_grad`` are trained, so
    freeze what must not change before passing it. ``setup``: build the model and its optimizer
    groups from the task specs instead (``hl adapt``; a run it made resumes through the same hook).
    ``log`` gets one-line messages for the user (main process only); ``on_step`` is called after
    every optimizer step.
    """
    if setup is None and model is None and config.adapt is not None:  # resuming a run made by hl adapt
        from hlcli.adapt import model_setup

        setup = model_setup(config)
    accelerator = _accelerator(config)
    if model is None and setup is None:
        method_config(config.method, dict(config.method_overrides))  # a misspelt method or option fails before any data is read
    main = accelerator.is_main_process
    say = (log if main else None) or (lambda line: None)
    run_dir = _run_dir(config, resume=resume)
    with _signals_interrupt():
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
    groups: list[dict[str, Any]] | None = None
    if not resume:
        _check_empty(run_dir)  # under the lock: a run that finished meanwhile is not written into
    has_config = (run_dir / runs.CONFIG).is_file()
    accelerator.wait_for_everyone()  # every process has looked at the folder before the main one fills it
    set_seed(config.seed)  # the same on every process: identical initial weights
    train_sets, val_sets = _load_data(config)
    if model is None:
        # Types seen in validation too, so that the validation loss never meets an unknown label.
        specs = [TaskSpec(task, label_types(train_sets[task] + val_sets[task])) for task in config.tasks]
        if setup is None:
            model = build_model(config.method, backbone=config.model, tasks=specs, overrides=dict(config.method_overrides))
        else:
            model, groups = setup(specs)
    else:
        _check_model_tasks(model, config)
    # Unset lr / head_lr / warmup_steps get the backbone's defaults before config.json records them.
    notes, warned = resolve_defaults(config, family=report.backbone_family(model), resumed=resume)
    for line in warned:
        say(f"warning: {line}")
    source = _open_run_dir(config, run_dir, model, accelerator, resume=resume, restart=restart, has_config=has_config,
                           say=say)  # fmt: skip
    if main:  # the thread count changes the last bits of CPU results (README, "Reproducibility")
        runs.append_log(run_dir, f"torch {torch.__version__} on {accelerator.device}, {torch.get_num_threads()} CPU threads")
        for line in notes + [f"warning: {line}" for line in warned]:
            runs.append_log(run_dir, line)
    loop, sampler = _build_loop(config, accelerator, model, train_sets, groups=groups)
    state = TrainState()
    if source is not None:
        state = TrainState.from_dict(read_training_state(
            source, optimizer=loop.optimizer, scheduler=loop.scheduler, sampler=sampler, scaler=accelerator.scaler,
            rank=accelerator.process_index))  # fmt: skip
        if main:
            runs.truncate_metrics(run_dir, state.step)
            runs.append_log(run_dir, f"resumed at step {state.step}")
        say(f"resumed {run_dir} at step {state.step}")
    report.start_tracking(accelerator, config, run_dir, step=state.step)  # --report-to tensorboard
    try:
        metrics = _run(loop, state, sampler, val_sets, run_dir, say=say, on_step=on_step)
    finally:
        report.stop_tracking(accelerator)  # flushes TensorBoard's events (on Ctrl-C and errors too)
    return TrainResult(run_dir=run_dir, steps=state.step, best_metric=config.select_best_by, best_value=state.best_value,
                       best_step=state.best_step, final_metrics=metrics, skipped_batches=state.skipped_batches,
                       main_process=main)  # fmt: skip


def _run(loop: Loop, state: TrainState, sampler: TaskSampler, val_sets: dict[str, list[Example]], run_dir: Path, *,
         say: Log, on_step: Callable[[StepResult], None] | None) -> dict[str, float]:
    """Consume the loop's steps: log every ``log_every``, validate every ``eval_every``, checkpoint, stop."""
    config, accelerator = loop.config, loop.accelerator
    main = accelerator.is_main_process
    checkpoint = lambda which: _save_checkpoint(  # noqa: E731 - one call site per reason, same arguments
        run_dir / runs.CHECKPOINTS / which, loop.tagger, loop, sampler, state, metrics)
    metrics: dict[str, float] = {}
    window: list[float] = []
    with _StopRequest(say) as stop:
        try:
            estimate = report.DurationEstimate(max_steps=config.max_steps, report=lambda line: _note(run_dir, line, main, say))
            for result in estimate.timed(training_steps(loop, state, stop_requested=lambda: stop.requested)):
                step = result.step
                if result.skipped:
                    if main:
                        runs.append_log(run_dir, f"step {step}: non-finite loss or gradient, batch skipped")
                    continue
                window.extend(result.losses or ())
                if on_step is not None:
                    on_step(result)
                if step % config.log_every == 0 or step == config.max_steps:
                    record = {"step": step, "loss": sum(window) / len(window), "lr": result.lr}
                    window.clear()
                    line = f"step {step} loss {record['loss']:.4f} lr {record['lr']:.3e}"
                    if main:
                        runs.append_log(run_dir, line)
                        runs.append_metrics(run_dir, record)
                    accelerator.log({"loss": record["loss"], "lr": record["lr"]}, step=step)  # no-op without --report-to
                    say(line)
                if step % config.eval_every == 0 or step == config.max_steps:
                    metrics = _evaluate(loop, val_sets, state, run_dir, say=say)
                    if state.best_step == step or not runs.is_checkpoint_dir(runs.checkpoint_dir(run_dir, runs.BEST)):
                        checkpoint(runs.BEST)
                saved = step % config.checkpoint_every == 0 or step == config.max_steps
                if saved or result.stopping:
                    checkpoint(runs.LAST)
                if result.stopping:
                    if main:
                        runs.append_log(run_dir, f"interrupted ({stop.name}) at step {step}; checkpoints/last saved")
                    say(f"interrupted at step {step}; resume with: hl train --resume {run_dir}")
                    raise Interrupted(stop.signum)
        except NonFinite as error:
            last = runs.checkpoint_dir(run_dir, runs.LAST)
            kept = (f"{last} (step {runs.checkpoint_step(last)}) is the last good checkpoint"
                    if runs.is_checkpoint_dir(last) else "no checkpoint was written yet")  # fmt: skip
            raise HLError(
                f"non-finite {error.what} at step {error.step} on task {error.task!r}",
                hint=f"{kept}; lower --lr, use --mixed-precision no/bf16, or pass --skip-nonfinite to skip such batches",
            ) from None
    return metrics


def _note(run_dir: Path, line: str, main: bool, say: Log) -> None:
    """A line for the user and train.log (the duration estimate)."""
    if main:
        runs.append_log(run_dir, line)
    say(line)


def _evaluate(loop: Loop, val_sets: dict[str, list[Example]], state: TrainState, run_dir: Path, *, say: Log) -> dict[str, float]:
    """Validate (main process), share the metrics, and move ``state``'s best if they improved."""
    config, accelerator = loop.config, loop.accelerator
    metrics = validate(loop.tagger, val_sets, config, accelerator) if accelerator.is_main_process else {}
    if accelerator.num_processes > 1:  # every process takes the same best-checkpoint decision
        metrics = broadcast_object_list([metrics])[0]
    value = metrics.get(config.select_best_by)
    lower_is_better = config.select_best_by == "val_loss"
    improved = value is not None and (
        state.best_value is None or (value < state.best_value if lower_is_better else value > state.best_value)
    )
    if improved:
        state.best_value, state.best_step = value, state.step
    line = summary(state.step, metrics, improved)
    if accelerator.is_main_process:
        runs.append_log(run_dir, line)
        runs.append_metrics(run_dir, {"step": state.step, "eval": metrics})
    accelerator.log(report.eval_scalars(metrics), step=state.step)  # no-op without --report-to
    say(line)
    return metrics


# -- setting up ------------------------------------------------------------------------------------
def _accelerator(config: TrainConfig) -> Accelerator:
    try:
        # split_batches: the scheduler steps once per optimizer step whatever the number of processes
        # (max_steps counts optimizer steps; there is no dataloader that shrinks with the world size).
        # find_unused_parameters: a step trains one task, so the other tasks' heads get no gradient.
        accelerator = Accelerator(
            mixed_precision=config.mixed_precision,
            log_with=report.log_with(config),
            project_dir=os.getcwd() if config.report_to else None,  # the run folder, once known (report.start_tracking)
            gradient_accumulation_steps=config.grad_accum,
            dataloader_config=DataLoaderConfiguration(split_batches=True),
            kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True, broadcast_buffers=False)],
        )
    except ValueError as error:
        raise UsageError(f"mixed_precision {config.mixed_precision!r}: {error}") from None
    launched = int(os.environ.get("WORLD_SIZE", "1"))
    if launched != accelerator.num_processes:
        # Without a GPU accelerate sets up gloo only when asked: each process would train alone.
        raise UsageError(
            f"launched as {launched} processes but accelerate runs {accelerator.num_processes}",
            hint="on CPU set ACCELERATE_USE_CPU=1 (or use `accelerate launch --cpu`)",
        )
    return accelerator


def _run_dir(config: TrainConfig, *, resume: bool) -> Path:
    if resume:
        if config.output_dir is None:
            raise UsageError("resume needs the run folder")
        return Path(config.output_dir)
    run_dir = Path(config.output_dir) if config.output_dir else runs.default_run_dir(config.method, config.tasks, config.fraction)
    return run_dir  # checked under the run's lock (_check_empty): a folder in use is "being trained"


def _check_empty(run_dir: Path) -> None:
    if run_dir.is_dir() and any(p.name != runs.LOCK for p in run_dir.iterdir()):
        raise UsageError(
            "run folder already exists and is not empty",
            path=run_dir,
            hint=f"continue it with --resume {run_dir} or pick another --output-dir",
        )
    if run_dir.exists() and not run_dir.is_dir():
        raise HLError("a file is in the way", path=run_dir, expected="a folder for the run")


def _load_data(config: TrainConfig) -> tuple[dict[str, list[Example]], dict[str, list[Example]]]:
    train_sets: dict[str, list[Example]] = {}
    val_sets: dict[str, list[Example]] = {}
    for task in config.tasks:
        fraction = config.task_fraction(task)
        train_sets[task] = load_split(
            task, "train", data_dir=config.data_dir, fraction=fraction, seed=config.seed, sources=config.task_sources
        )
        if not train_sets[task]:
            raise HLError(f"task {task!r} has no training sentences (fraction {fraction})")
        # The readers shrink val like train (a low-resource run has a low-resource val set).
        val = load_split(task, "val", data_dir=config.data_dir, fraction=fraction, seed=config.seed, sources=config.task_sources)
        val_sets[task] = val[: config.max_val_examples]
    return train_sets, val_sets


def _check_model_tasks(model: TaggingModel, config: TrainConfig) -> None:
    missing = [task for task in config.tasks if task not in model.task_index]
    if missing:
        raise UsageError(f"the model does not serve task(s) {', '.join(missing)}",
                         expected=f"tasks among {', '.join(model.task_index)}")


def _open_run_dir(config: TrainConfig, run_dir: Path, model: TaggingModel, accelerator: Accelerator, *, resume: bool,
                  restart: bool, has_config: bool, say: Log) -> Path | None:
    """Repair the run folder and load the checkpoint to resume from (``last``, else ``best``), or
    create the run folder; the checkpoint folder resumed from, or None (a new run or a fresh start).

    Nothing a user trained is replaced by a resume that cannot continue it: a damaged checkpoint,
    or one whose config disagrees with ``config.json``, is refused (:func:`hlcli.runs.resume_point`);
    only ``restart`` (``--restart``) removes the checkpoints, deliberately.
    """
    main = accelerator.is_main_process
    source = None
    if resume:
        # A SIGKILL can leave a half-written checkpoint folder or a swap half-done: undo that first.
        if main:
            runs.repair_checkpoints(run_dir)
            if restart:
                shutil.rmtree(run_dir / runs.CHECKPOINTS, ignore_errors=True)
        accelerator.wait_for_everyone()
        if not restart:
            source = runs.resume_point(run_dir)
            recorded = json.loads(json.dumps(config.to_dict()))  # as config.json holds it
            for which in (runs.LAST, runs.BEST):  # both are kept or replaced by this run: both must be its own
                if runs.checkpoint_dir(run_dir, which).exists():
                    check_run_config(runs.checkpoint_dir(run_dir, which), recorded)
    if source is not None:
        if source.name != runs.LAST:
            say(f"no checkpoints/last: resuming from checkpoints/best (step {runs.checkpoint_step(source)})")
        path = source / runs.MODEL_WEIGHTS
        load_trainable(model, load_tensors(path), path=path)
    elif has_config:
        # --resume of a run killed before its first checkpoint, or --restart: start over in the same folder.
        why = "--restart" if restart else "no checkpoint yet"
        say(f"{run_dir}: {why}: started over at step 0")
        if main:
            runs.truncate_metrics(run_dir, 0)
            runs.append_log(run_dir, f"{why}: started over at step 0")
    else:
        # Only now that data and model are known to work: a failed start leaves no run folder.
        config.output_dir = str(run_dir)
        if main:
            run_dir.mkdir(parents=True, exist_ok=True)
            save_config(config, run_dir / runs.CONFIG)
    accelerator.wait_for_everyone()
    if main and accelerator.num_processes > 1:
        runs.append_log(run_dir, f"data-parallel over {accelerator.num_processes} processes: "
                                 f"{accelerator.num_processes} x {config.batch_size} sentences per micro-batch")
    return source


def _build_loop(config: TrainConfig, accelerator: Accelerator, model: TaggingModel, train_sets: dict[str, list[Example]],
                *, groups: list[dict[str, Any]] | None = None) -> tuple[Loop, TaskSampler]:
    groups = groups if groups is not None else _param_groups(config, model)
    params = [p for group in groups for p in group["params"]]
    if not params:
        raise HLError(f"method {config.method!r} left no trainable parameter")
    optimizer = _optimizer(groups, lr=config.lr, device=accelerator.device)
    if config.schedule == "linear":
        scheduler = get_linear_schedule_with_warmup(optimizer, config.warmup_steps, config.max_steps)
    else:
        scheduler = get_constant_schedule_with_warmup(optimizer, config.warmup_steps)
    # evaluation_mode: device placement and mixed precision for the tagger that validates and is saved;
    # the loss module around it is what trains (DDP-wrapped when data-parallel).
    tagger: TaggingModel = accelerator.unwrap_model(accelerator.prepare_model(model, evaluation_mode=True))
    step_model: torch.nn.Module = LossModule(tagger)
    if accelerator.num_processes > 1:
        step_model = accelerator.prepare_model(step_model)
    optimizer, scheduler = accelerator.prepare(optimizer, scheduler)
    sampler = TaskSampler(
        {task: len(examples) for task, examples in train_sets.items()},
        batch_size=config.batch_size,
        temperature=config.temperature,
        seed=config.seed,
        num_shards=accelerator.num_processes,
        shard=accelerator.process_index,
        lengths={task: tagger.lengths(task, examples) for task, examples in train_sets.items()} if config.group_by_length else None,
    )
    loop = Loop(config=config, accelerator=accelerator, tagger=tagger, model=step_model, params=params,
                optimizer=optimizer, scheduler=scheduler,
                batches=batches(sampler, tagger, train_sets, accelerator.device))  # fmt: skip
    return loop, sampler


def _param_groups(config: TrainConfig, model: TaggingModel) -> list[dict[str, Any]]:
    """Every trainable parameter at ``lr``; new per-task heads (encoder backbones) at their own ``head_lr``."""
    params = [p for p in model.parameters() if p.requires_grad]
    heads = {id(p) for p in model.head_parameters() if p.requires_grad}
    groups = [{"params": [p for p in params if id(p) not in heads], "lr": config.lr}]
    if heads:
        groups.append({"params": [p for p in params if id(p) in heads], "lr": config.head_lr or config.lr})
    return groups


def _optimizer(groups: list[dict[str, Any]], *, lr: float, device: torch.device):
    """AdamW without weight decay (the papers' / transformers' old default).

    Fused AdamW (one kernel for all parameters) on CUDA only: on CPU the default keeps results
    bit-identical to earlier releases.
    """
    fused = {"fused": True} if device.type == "cuda" else {}
    return torch.optim.AdamW(groups, lr=lr, weight_decay=0.0, **fused)


# -- checkpoints ----------------------------------------------------------------------------------
def _save_checkpoint(folder: Path, tagger: TaggingModel, loop: Loop, sampler: TaskSampler, state: TrainState,
                     metrics: dict[str, float]) -> None:
    """Called by every process; the main one writes. Weights, optimizer and sampler are the same
    everywhere, the torch RNG (dropout) is not: each process's is kept."""
    accelerator, config = loop.accelerator, loop.config
    torch_rng = gather_object([torch.get_rng_state()])
    if accelerator.is_main_process:
        extra = {"step": state.step, "train_config": config.to_dict()}
        with atomic_dir(folder) as tmp:
            write_model_files(tagger, tmp, metrics=metrics, extra=extra)
            if DEBUG_CHECKPOINT_DELAY in os.environ and folder.name == runs.LAST:  # test-only, see its definition
                time.sleep(float(os.environ[DEBUG_CHECKPOINT_DELAY]))
            write_training_state(tmp, optimizer=loop.optimizer, scheduler=loop.scheduler, sampler=sampler,
                                 scaler=accelerator.scaler, torch_rng=torch_rng,
                                 state={**state.to_dict(), "select_best_by": config.select_best_by})  # fmt: skip
    accelerator.wait_for_everyone()


class Interrupted(KeyboardInterrupt):
    """Training stopped by a signal after saving ``checkpoints/last``; the CLI exits 128 + its number
    (130 Ctrl-C, 143 SIGTERM, 129 SIGHUP), as a shell reports a process that signal ended."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.exit_code = 128 + signum


# Ctrl-C, a scheduler's or `timeout`'s SIGTERM, a closed terminal's SIGHUP: each stops the same way.
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


@contextlib.contextmanager
def _signals_interrupt() -> Iterator[None]:
    """Outside the loop (reading data, building the model) SIGTERM and SIGHUP end ``hl train`` as
    Ctrl-C does there: at once, by an exception, so the lock is released and an unused run folder
    removed; in the loop :class:`_StopRequest` takes over (finish the step, save)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise Interrupted(signum)

    previous = {signum: signal.signal(signum, interrupt) for signum in STOP_SIGNALS if signum != signal.SIGINT}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)


class _StopRequest:
    """A first stop signal asks the loop to stop at the next step boundary (and save); a second aborts."""

    def __init__(self, say: Log) -> None:
        self.signum: int | None = None
        self._say = say
        self._previous: dict[int, Any] = {}

    @property
    def requested(self) -> bool:
        return self.signum is not None

    @property
    def name(self) -> str:
        return "Ctrl-C" if self.signum in (None, signal.SIGINT) else signal.Signals(self.signum).name

    def __enter__(self) -> _StopRequest:
        if threading.current_thread() is threading.main_thread():
            for signum in STOP_SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise Interrupted(signum)
        self.signum = signum
        try:
            self._say(f"{self.name}: stopping after this step and saving checkpoints/last ({self.name} again: stop now, no save)")
        except OSError:  # SIGHUP: the terminal may be gone; stopping and saving matter, the message does not
            pass

    def __exit__(self, *exc: Any) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, signal.SIG_DFL if previous is None else previous)  # None: not set from Python
