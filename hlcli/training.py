"""The multi-task training loop (``hl train``), in the style of accelerate's examples: one loop.

Each optimizer step draws ``grad_accum`` single-task batches from the temperature sampler,
back-propagates the method's loss, clips gradients, steps AdamW and the schedule, and drops the
model's generated-weight cache. Every ``eval_every`` steps the validation sets are scored
(loss always, F1 when asked) and the best checkpoint is kept; every ``checkpoint_every`` steps
``checkpoints/last`` is rewritten. The run folder layout is described in :mod:`hlcli.runs`.

Data-parallel training (``torchrun --nproc_per_node N -m hlcli train ...`` or ``accelerate launch``):
every process draws the same task at each step and its own slice of that task's examples (see
:mod:`hlcli.sampler`), so a micro-batch is ``N × batch_size`` sentences of one task. The model is
not wrapped in DDP, whose hooks expect ``forward()`` while the loop calls ``model.loss()``: instead
the gradients are averaged over the processes before clipping (:func:`_average_gradients`), which
keeps the weights identical everywhere. Only the main process validates and writes the run folder.

Checkpoints hold no pickle: accelerate's ``save_state`` writes optimizer, scheduler and RNG state
with ``torch.save``, so the loop writes them itself (tensors → safetensors, the rest → JSON).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from accelerate import Accelerator, DataLoaderConfiguration
from accelerate.utils import broadcast_object_list, gather_object, send_to_device, set_seed
from safetensors.torch import load_file, save_file
from transformers import get_constant_schedule_with_warmup, get_linear_schedule_with_warmup

from hlcli import runs
from hlcli.checkpoint import load_trainable, write_model_files
from hlcli.config import TrainConfig, read_config, save_config
from hlcli.data.corpora import label_types, load_split
from hlcli.data.example import Example
from hlcli.errors import HLError, UsageError
from hlcli.evaluation import score
from hlcli.io import atomic_dir, atomic_write, write_json
from hlcli.methods import build_model, method_config
from hlcli.methods.base import TaggingModel, TaskSpec
from hlcli.sampler import TaskSampler

Log = Callable[[str], None]
# With skip_nonfinite, give up when this many batches in a row are skipped: the run has diverged.
MAX_CONSECUTIVE_SKIPS = 100
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


class _StopRequest:
    """First Ctrl-C asks the loop to stop at the next step boundary (and save); a second aborts."""

    def __init__(self, say: Log) -> None:
        self.requested = False
        self._say = say
        self._previous: Any = None

    def __enter__(self) -> _StopRequest:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        self._say("Ctrl-C: stopping after this step and saving checkpoints/last (Ctrl-C again: stop now, no save)")

    def __exit__(self, *exc: Any) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def resume_config(run_dir: str | Path, *, max_steps: int | None = None) -> TrainConfig:
    """The config of an existing run, for ``hl train --resume`` (only ``max_steps`` may change).

    A run killed before its first checkpoint has only its config: resuming it starts over at step 0.
    """
    run_dir = Path(run_dir)
    if not (run_dir / runs.CONFIG).is_file():
        raise HLError(
            f"nothing to resume: no {runs.CONFIG} and no checkpoints/last",
            path=run_dir,
            hint="pass a run folder written by hl train",
        )
    config = read_config(run_dir / runs.CONFIG)
    config.output_dir = str(run_dir)
    if max_steps is not None:
        config.max_steps = max_steps
    return config


# Hook for ``hl adapt`` (hlcli.adapt): given the specs of the tasks to train, build the model and
# its optimizer groups ([{"params": [...], "lr": x}, ...], requires_grad already set) instead of
# build_model + the default groups. The rest of the loop runs unchanged.
ModelSetup = Callable[[list[TaskSpec]], tuple[TaggingModel, list[dict[str, Any]]]]


def train(
    config: TrainConfig, *, resume: bool = False, progress: bool = False, log: Log | None = None, setup: ModelSetup | None = None
) -> TrainResult:
    """Train ``config.method`` on ``config.tasks``; with ``resume`` continue ``config.output_dir``."""
    if setup is None and config.adapt is not None:  # resuming a run made by hl adapt
        from hlcli.adapt import model_setup

        setup = model_setup(config)
    try:
        # split_batches: the scheduler steps once per optimizer step whatever the number of processes
        # (max_steps counts optimizer steps; there is no dataloader that shrinks with the world size).
        accelerator = Accelerator(
            mixed_precision=config.mixed_precision,
            gradient_accumulation_steps=config.grad_accum,
            dataloader_config=DataLoaderConfiguration(split_batches=True),
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
    method_config(config.method, dict(config.method_overrides))  # a misspelt method or option fails before any data is read
    main = accelerator.is_main_process
    say = (log if main else None) or (lambda line: None)
    run_dir = _run_dir(config, resume=resume)
    has_config = (run_dir / runs.CONFIG).is_file()
    accelerator.wait_for_everyone()  # every process has looked at the folder before the main one fills it
    set_seed(config.seed)  # the same on every process: identical initial weights

    train_sets: dict[str, list[Example]] = {}
    val_sets: dict[str, list[Example]] = {}
    for task in config.tasks:
        train_sets[task] = load_split(task, "train", data_dir=config.data_dir, fraction=config.fraction, seed=config.seed)
        if not train_sets[task]:
            raise HLError(f"task {task!r} has no training sentences (fraction {config.fraction})")
        # The readers shrink val like train (a low-resource run has a low-resource val set).
        val = load_split(task, "val", data_dir=config.data_dir, fraction=config.fraction, seed=config.seed)
        val_sets[task] = val[: config.max_val_examples]
    # Types seen in validation too, so that the validation loss never meets an unknown label.
    specs = [TaskSpec(task, label_types(train_sets[task] + val_sets[task])) for task in config.tasks]

    if setup is None:
        model = build_model(config.method, backbone=config.model, tasks=specs, overrides=dict(config.method_overrides))
        groups = _param_groups(model, config)
    else:
        model, groups = setup(specs)
    if resume:
        # A SIGKILL can leave a half-written checkpoint folder or a swap half-done: undo that first.
        if main:
            runs.repair_checkpoints(run_dir)
        accelerator.wait_for_everyone()
        resume = runs.is_checkpoint_dir(runs.checkpoint_dir(run_dir, runs.LAST))
    if resume:
        _load_weights(model, runs.checkpoint_dir(run_dir, runs.LAST))
    elif has_config:
        # --resume of a run killed before its first checkpoint: start over in the same folder.
        say(f"{run_dir} has no checkpoint yet: starting over at step 0")
        if main:
            _truncate_metrics(run_dir, 0)
            _append_log(run_dir, "no checkpoint to resume from; started over at step 0")
    else:
        # Only now that data and model are known to work: a failed start leaves no run folder.
        config.output_dir = str(run_dir)
        if main:
            run_dir.mkdir(parents=True, exist_ok=True)
            save_config(config, run_dir / runs.CONFIG)
    accelerator.wait_for_everyone()
    if main and accelerator.num_processes > 1:
        _append_log(run_dir, f"data-parallel over {accelerator.num_processes} processes: "
                             f"{accelerator.num_processes} x {config.batch_size} sentences per micro-batch")
    params = [p for group in groups for p in group["params"]]
    if not params:
        raise HLError(f"method {config.method!r} left no trainable parameter")
    # The papers' AdamW has no weight decay (HyperFormer++ / transformers' old default).
    optimizer = torch.optim.AdamW(groups, lr=config.lr, weight_decay=0.0)
    if config.schedule == "linear":
        scheduler = get_linear_schedule_with_warmup(optimizer, config.warmup_steps, config.max_steps)
    else:
        scheduler = get_constant_schedule_with_warmup(optimizer, config.warmup_steps)
    # evaluation_mode: device placement and mixed precision, but no DDP wrapper (see the module docstring).
    model = accelerator.prepare_model(model, evaluation_mode=True)
    optimizer, scheduler = accelerator.prepare(optimizer, scheduler)
    tagger: TaggingModel = accelerator.unwrap_model(model)

    sampler = TaskSampler(
        {task: len(examples) for task, examples in train_sets.items()},
        batch_size=config.batch_size,
        temperature=config.temperature,
        seed=config.seed,
        num_shards=accelerator.num_processes,
        shard=accelerator.process_index,
        lengths={task: tagger.lengths(task, examples) for task, examples in train_sets.items()} if config.group_by_length else None,
    )
    state = {"step": 0, "best_value": None, "best_step": None, "skipped_batches": 0}
    if resume:
        state.update(_load_training_state(runs.checkpoint_dir(run_dir, runs.LAST), optimizer, scheduler, sampler, accelerator))
        if main:
            _truncate_metrics(run_dir, state["step"])
            _append_log(run_dir, f"resumed at step {state['step']}")
        say(f"resumed {run_dir} at step {state['step']}")

    checkpoint = lambda which: _save_checkpoint(  # noqa: E731 - one call site per reason, same arguments
        run_dir / runs.CHECKPOINTS / which, tagger, optimizer, scheduler, sampler, accelerator, config, state, metrics
    )
    lower_is_better = config.select_best_by == "val_loss"
    metrics: dict[str, float] = {}
    window: list[float] = []
    consecutive_skips = 0
    bar = _ProgressBar(config.max_steps, state["step"]) if progress and main else None
    model.train()
    with _StopRequest(say) as stop, (bar or contextlib.nullcontext()):
        while state["step"] < config.max_steps:
            step = state["step"] + 1
            try:
                loss_value = _optimizer_step(model, tagger, params, optimizer, scheduler, accelerator, sampler, train_sets, config)
            except _NonFinite as error:
                last = runs.checkpoint_dir(run_dir, runs.LAST)
                kept = f"{last} (step {runs.checkpoint_step(last)}) is the last good checkpoint" if runs.is_checkpoint_dir(last) else "no checkpoint was written yet"
                raise HLError(
                    f"non-finite {error.what} at step {step} on task {error.task!r}",
                    hint=f"{kept}; lower --lr, use --mixed-precision no/bf16, or pass --skip-nonfinite to skip such batches",
                ) from None
            if loss_value is None:  # non-finite loss or gradient, skip_nonfinite
                state["skipped_batches"] += 1
                consecutive_skips += 1
                if main:
                    _append_log(run_dir, f"step {step}: non-finite loss or gradient, batch skipped")
                if consecutive_skips >= MAX_CONSECUTIVE_SKIPS:
                    raise HLError(
                        f"{consecutive_skips} batches in a row gave a non-finite loss or gradient at step {step}",
                        hint="lower --lr or check the data",
                    )
                continue
            consecutive_skips = 0
            state["step"] = step
            window.append(loss_value)
            if bar:
                bar.update(step, loss_value)
            if step % config.log_every == 0 or step == config.max_steps:
                record = {"step": step, "loss": sum(window) / len(window), "lr": scheduler.get_last_lr()[0]}
                window.clear()
                if main:
                    _append_log(run_dir, f"step {step} loss {record['loss']:.4f} lr {record['lr']:.3e}")
                    _append_metrics(run_dir, record)
            if step % config.eval_every == 0 or step == config.max_steps:
                metrics = _validate(tagger, val_sets, config, accelerator) if main else {}
                if accelerator.num_processes > 1:  # every process takes the same best-checkpoint decision
                    metrics = broadcast_object_list([metrics])[0]
                key = config.select_best_by
                value = metrics.get(key)
                improved = value is not None and (
                    state["best_value"] is None
                    or (value < state["best_value"] if lower_is_better else value > state["best_value"])
                )
                if improved:
                    state["best_value"], state["best_step"] = value, step
                summary = _summary(step, metrics, improved)
                if main:
                    _append_log(run_dir, summary)
                    _append_metrics(run_dir, {"step": step, "eval": metrics})
                say(summary)
                if improved or not runs.is_checkpoint_dir(runs.checkpoint_dir(run_dir, runs.BEST)):
                    checkpoint(runs.BEST)
            saved = step % config.checkpoint_every == 0 or step == config.max_steps
            if saved:
                checkpoint(runs.LAST)
            if _any_process(stop.requested, accelerator) and step < config.max_steps:
                if not saved:
                    checkpoint(runs.LAST)
                if main:
                    _append_log(run_dir, f"interrupted at step {step}; checkpoints/last saved")
                say(f"interrupted at step {step}; resume with: hl train --resume {run_dir}")
                raise KeyboardInterrupt

    return TrainResult(
        run_dir=run_dir,
        steps=state["step"],
        best_metric=config.select_best_by,
        best_value=state["best_value"],
        best_step=state["best_step"],
        final_metrics=metrics,
        skipped_batches=state["skipped_batches"],
        main_process=accelerator.is_main_process,
    )


def _param_groups(model: TaggingModel, config: TrainConfig) -> list[dict[str, Any]]:
    """Every trainable parameter at ``lr``; new per-task heads (encoder backbones) at their own, larger ``head_lr``."""
    params = [p for p in model.parameters() if p.requires_grad]
    heads = {id(p) for p in model.head_parameters() if p.requires_grad}
    groups = [{"params": [p for p in params if id(p) not in heads], "lr": config.lr}]
    if heads:
        groups.append({"params": [p for p in params if id(p) in heads], "lr": config.head_lr or config.lr})
    return groups


def _run_dir(config: TrainConfig, *, resume: bool) -> Path:
    if resume:
        if config.output_dir is None:
            raise UsageError("resume needs the run folder")
        return Path(config.output_dir)
    run_dir = Path(config.output_dir) if config.output_dir else runs.default_run_dir(config.method, config.tasks, config.fraction)
    if run_dir.exists() and any(run_dir.iterdir()):
        raise UsageError(
            "run folder already exists and is not empty",
            path=run_dir,
            hint=f"continue it with --resume {run_dir} or pick another --output-dir",
        )
    return run_dir


class _NonFinite(Exception):
    def __init__(self, task: str, what: str) -> None:
        super().__init__(task, what)
        self.task, self.what = task, what


def _optimizer_step(model, tagger, params, optimizer, scheduler, accelerator, sampler, train_sets, config) -> float | None:
    """One optimizer step over ``grad_accum`` single-task micro-batches; its mean loss, or None if skipped."""
    total = 0.0
    for _ in range(config.grad_accum):
        task, indices = next(sampler)
        batch = send_to_device(tagger.collate(task, [train_sets[task][i] for i in indices]), accelerator.device)
        with accelerator.autocast():
            loss = tagger.loss(task, batch, label_smoothing=config.label_smoothing)
        if _any_process(not torch.isfinite(loss).item(), accelerator):
            if config.skip_nonfinite:
                optimizer.zero_grad(set_to_none=True)
                return None
            raise _NonFinite(task, f"loss ({loss.item()})")
        accelerator.backward(loss)  # divides by grad_accum
        total += loss.item()
    if accelerator.num_processes > 1:
        _average_gradients(params, accelerator)
        total = accelerator.reduce(torch.tensor(total, device=accelerator.device), reduction="mean").item()
    if config.max_grad_norm > 0:
        norm = accelerator.clip_grad_norm_(model.parameters(), config.max_grad_norm)
        # A finite loss can still overflow in backward; fp16's grad scaler handles that case itself.
        if norm is not None and not torch.isfinite(norm) and accelerator.scaler is None:
            if config.skip_nonfinite:
                optimizer.zero_grad(set_to_none=True)
                return None
            raise _NonFinite(task, f"gradient norm ({norm.item()})")
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    tagger.invalidate_cache()
    return total / config.grad_accum


def _any_process(flag: bool, accelerator: Accelerator) -> bool:
    """``flag`` or-ed over the processes: a decision that changes the control flow must be shared."""
    if accelerator.num_processes == 1:
        return flag
    value = torch.tensor([float(flag)], device=accelerator.device)
    torch.distributed.all_reduce(value, op=torch.distributed.ReduceOp.MAX)
    return bool(value.item())


@torch.no_grad()
def _average_gradients(params: list[torch.nn.Parameter], accelerator: Accelerator) -> None:
    """Replace each gradient by its mean over the processes (what DDP does), in one all-reduce.

    Every process trained on the same task, so the same parameters have a gradient everywhere.
    """
    grads = [p.grad for p in params if p.grad is not None]
    flat = accelerator.reduce(torch.cat([g.reshape(-1) for g in grads]), reduction="mean")
    offset = 0
    for grad in grads:
        grad.copy_(flat[offset : offset + grad.numel()].view_as(grad))
        offset += grad.numel()


@torch.no_grad()
def _validate(tagger: TaggingModel, val_sets: dict[str, list[Example]], config: TrainConfig, accelerator: Accelerator) -> dict[str, float]:
    """Validation loss per task and its mean over tasks (plus F1 when ``config.compute_f1``)."""
    tagger.eval()
    metrics: dict[str, float] = {}
    losses, f1s = [], []
    try:
        for task, examples in val_sets.items():
            if not examples:
                continue
            weighted = 0.0
            for start in range(0, len(examples), config.eval_batch_size):
                chunk = examples[start : start + config.eval_batch_size]
                batch = send_to_device(tagger.collate(task, chunk), accelerator.device)
                with accelerator.autocast():
                    weighted += tagger.loss(task, batch).item() * len(chunk)
            metrics[f"val_loss/{task}"] = weighted / len(examples)
            losses.append(metrics[f"val_loss/{task}"])
            if config.compute_f1:
                pred = tagger.predict(task, [list(e.tokens) for e in examples], batch_size=config.eval_batch_size)
                metrics[f"f1/{task}"] = score([list(e.tags) for e in examples], pred)["f1"]
                f1s.append(metrics[f"f1/{task}"])
    finally:
        tagger.train()
    if losses:
        metrics["val_loss"] = sum(losses) / len(losses)
    if f1s:
        metrics["avg_f1"] = sum(f1s) / len(f1s)
    return metrics


def _summary(step: int, metrics: dict[str, float], improved: bool) -> str:
    parts = [f"eval step {step}:"]
    if "val_loss" in metrics:
        parts.append(f"val_loss {metrics['val_loss']:.4f}")
    if "avg_f1" in metrics:
        parts.append(f"avg_f1 {metrics['avg_f1']:.4f}")
    for key, value in metrics.items():
        if key.startswith("f1/"):
            parts.append(f"{key[3:]} {value:.4f}")
    if improved:
        parts.append("(best)")
    return " ".join(parts)


# -- checkpoints: safetensors + JSON only ---------------------------------------------------------
def _save_checkpoint(folder, tagger, optimizer, scheduler, sampler, accelerator, config, state, metrics) -> None:
    """Called by every process; the main one writes. Weights, optimizer and sampler are the same
    everywhere, the torch RNG (dropout) is not: each process's is kept (``torch.<rank>`` for rank > 0)."""
    torch_rng = gather_object([torch.get_rng_state()])
    if accelerator.is_main_process:
        _write_checkpoint(folder, tagger, optimizer, scheduler, sampler, accelerator, config, state, metrics, torch_rng)
    accelerator.wait_for_everyone()


def _write_checkpoint(folder, tagger, optimizer, scheduler, sampler, accelerator, config, state, metrics, torch_rng) -> None:
    optimizer_state = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, Any] = {}
    for param_id, values in optimizer_state["state"].items():
        for key, value in values.items():
            if torch.is_tensor(value):
                tensors[f"{param_id}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars[f"{param_id}.{key}"] = value
    version, internal, gauss = random.getstate()
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    rng = {
        "torch": torch_rng[0],
        **{f"torch.{rank}": value for rank, value in enumerate(torch_rng) if rank},
        "python": torch.tensor(internal, dtype=torch.int64),
        "numpy": torch.from_numpy(np_keys.astype(np.int64)),
    }
    if torch.cuda.is_available():
        rng.update({f"cuda.{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())})
    trainer_state = {
        **state,
        "select_best_by": config.select_best_by,
        "sampler": sampler.state_dict(),
        "optimizer": {"param_groups": optimizer_state["param_groups"], "scalars": scalars},
        "scheduler": scheduler.state_dict(),
        "scaler": accelerator.scaler.state_dict() if accelerator.scaler is not None else None,
        # The big state vectors are in rng.safetensors; these are the scalars beside them.
        "python_rng": {"version": version, "gauss": gauss},
        "numpy_rng": {"name": np_name, "pos": np_pos, "has_gauss": np_has_gauss, "gauss": np_gauss},
    }
    extra = {"step": state["step"], "train_config": config.to_dict()}
    with atomic_dir(folder) as tmp:
        write_model_files(tagger, tmp, metrics=metrics, extra=extra)
        if DEBUG_CHECKPOINT_DELAY in os.environ and folder.name == runs.LAST:  # test-only, see its definition
            time.sleep(float(os.environ[DEBUG_CHECKPOINT_DELAY]))
        save_file(tensors, str(tmp / runs.OPTIMIZER))
        save_file(rng, str(tmp / runs.RNG))
        write_json(tmp / runs.TRAINER_STATE, trainer_state)


def _load_weights(model: TaggingModel, folder: Path) -> None:
    path = folder / runs.MODEL_WEIGHTS
    load_trainable(model, _load_tensors(path), path=path)


def _load_tensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path))
    except Exception as error:  # safetensors raises its own error types for missing/corrupt files
        raise HLError(f"unreadable tensors: {error}", path=path, hint="the checkpoint is damaged; start a new run") from None


def _load_training_state(folder: Path, optimizer, scheduler, sampler, accelerator) -> dict[str, Any]:
    path = folder / runs.TRAINER_STATE
    try:
        return _restore_training_state(folder, optimizer, scheduler, sampler, accelerator)
    except (OSError, ValueError, KeyError, TypeError) as error:  # JSONDecodeError is a ValueError
        raise HLError(f"unreadable trainer state: {type(error).__name__}: {error}", path=path,
                      hint="the checkpoint is damaged; start a new run") from None


def _restore_training_state(folder: Path, optimizer, scheduler, sampler, accelerator) -> dict[str, Any]:
    saved = json.loads((folder / runs.TRAINER_STATE).read_text(encoding="utf-8"))
    optimizer_state: dict[int, dict[str, Any]] = {}
    for key, value in {**_load_tensors(folder / runs.OPTIMIZER), **saved["optimizer"]["scalars"]}.items():
        param_id, name = key.split(".", 1)
        optimizer_state.setdefault(int(param_id), {})[name] = value
    groups = saved["optimizer"]["param_groups"]
    for group in groups:
        if "betas" in group:
            group["betas"] = tuple(group["betas"])
    optimizer.load_state_dict({"state": optimizer_state, "param_groups": groups})
    scheduler.load_state_dict(saved["scheduler"])
    if saved.get("scaler") and accelerator.scaler is not None:
        accelerator.scaler.load_state_dict(saved["scaler"])
    sampler.load_state_dict(saved["sampler"])
    rng = _load_tensors(folder / runs.RNG)
    torch.set_rng_state(rng.get(f"torch.{accelerator.process_index}", rng["torch"]))
    if torch.cuda.is_available():
        cuda = [rng[k] for k in sorted((k for k in rng if k.startswith("cuda.")), key=lambda k: int(k[5:]))]
        if cuda:
            torch.cuda.set_rng_state_all(cuda)
    python, numpy_ = saved["python_rng"], saved["numpy_rng"]
    random.setstate((python["version"], tuple(rng["python"].tolist()), python["gauss"]))
    np.random.set_state(
        (numpy_["name"], rng["numpy"].numpy().astype(np.uint32), numpy_["pos"], numpy_["has_gauss"], numpy_["gauss"])
    )
    return {key: saved[key] for key in ("step", "best_value", "best_step", "skipped_batches")}


# -- logs -----------------------------------------------------------------------------------------
def _append_log(run_dir: Path, line: str) -> None:
    with open(run_dir / runs.TRAIN_LOG, "a", encoding="utf-8") as handle:
        handle.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {line}\n")


def _append_metrics(run_dir: Path, record: dict[str, Any]) -> None:
    with open(run_dir / runs.METRICS, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record, ensure_ascii=False) + "\n")


def _truncate_metrics(run_dir: Path, step: int) -> None:
    """Drop records written after the checkpoint we resume from: they will be produced again."""
    path = run_dir / runs.METRICS
    if not path.exists():
        return
    kept = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            if json.loads(line)["step"] <= step:
                kept.append(line)
        except (ValueError, KeyError, TypeError):  # a line cut short by a kill
            continue
    with atomic_write(path) as handle:
        handle.writelines(line + "\n" for line in kept)


# -- progress -------------------------------------------------------------------------------------
class _ProgressBar:
    """step/total, loss, steps/s and ETA on stderr (stdout stays free for results)."""

    def __init__(self, total: int, start: int) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self._progress = Progress(
            TextColumn("step"),
            MofNCompleteColumn(),
            BarColumn(),
            TextColumn("loss {task.fields[loss]}"),
            TextColumn("{task.fields[speed]} steps/s"),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=False,
        )
        self._task = self._progress.add_task("train", total=total, completed=start, loss="-", speed="-")
        self._start, self._t0 = start, time.monotonic()

    def __enter__(self) -> _ProgressBar:
        self._progress.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._progress.stop()

    def update(self, step: int, loss: float) -> None:
        elapsed = time.monotonic() - self._t0
        speed = (step - self._start) / elapsed if elapsed > 0 else math.nan
        self._progress.update(self._task, completed=step, loss=f"{loss:.4f}", speed=f"{speed:.2f}")
