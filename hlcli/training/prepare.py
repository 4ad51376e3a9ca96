"""Setting up a run for :func:`hlcli.training.train`: the accelerator, the run folder, the data, the
model, the optimizer and the :class:`~hlcli.training.loop.Loop` that steps them.

Nothing here trains; every function is called once per run, in the order :func:`hlcli.training.train`
calls them, and a failure before :func:`open_run_dir` leaves no run folder behind.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, Callable

import torch
from accelerate import Accelerator, DataLoaderConfiguration
from accelerate.utils import DistributedDataParallelKwargs
from transformers import get_constant_schedule_with_warmup, get_linear_schedule_with_warmup

from hlcli import runs
from hlcli.checkpoint import check_run_config, load_tensors, load_trainable
from hlcli.config import TrainConfig, save_config
from hlcli.data.example import Example
from hlcli.data.tasks import label_types, load_split
from hlcli.errors import HLError, UsageError
from hlcli.io import Log
from hlcli.methods import build_model, method_config
from hlcli.methods.base import TaggingModel, TaskSpec
from hlcli.sampler import TaskSampler
from hlcli.training import report
from hlcli.training.loop import Loop, LossModule, batches

Groups = list[dict[str, Any]]  # optimizer parameter groups: [{"params": [...], "lr": x}, ...]
# Builds the model and its optimizer groups (requires_grad already set) from the specs of the tasks to
# train (labels read from the data), instead of build_model and param_groups: hl adapt's derived model.
ModelSetup = Callable[[list[TaskSpec]], tuple[TaggingModel, Groups]]


def check_method(config: TrainConfig) -> None:
    """A misspelt method or method option fails before any data is read."""
    method_config(config.method, dict(config.method_overrides))


def make_accelerator(config: TrainConfig) -> Accelerator:
    try:
        # split_batches: the scheduler steps once per optimizer step whatever the number of processes
        # (max_steps counts optimizer steps; there is no dataloader that shrinks with the world size).
        # find_unused_parameters: a step trains one task, so the other tasks' heads get no gradient.
        made = Accelerator(
            mixed_precision=config.mixed_precision,
            log_with=report.log_with(config),
            # The run folder, once known (report.start_tracking).
            project_dir=os.getcwd() if config.report_to else None,
            gradient_accumulation_steps=config.grad_accum,
            dataloader_config=DataLoaderConfiguration(split_batches=True),
            kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True, broadcast_buffers=False)],
        )
    except ValueError as error:
        raise UsageError(f"mixed_precision {config.mixed_precision!r}: {error}") from None
    launched = int(os.environ.get("WORLD_SIZE", "1"))
    if launched != made.num_processes:
        # Without a GPU accelerate sets up gloo only when asked: each process would train alone.
        raise UsageError(
            f"launched as {launched} processes but accelerate runs {made.num_processes}",
            hint="on CPU set ACCELERATE_USE_CPU=1 (or use `accelerate launch --cpu`)",
        )
    return made


def run_folder(config: TrainConfig, *, resume: bool) -> Path:
    if resume:
        if config.output_dir is None:
            raise UsageError("resume needs the run folder")
        return Path(config.output_dir)
    if config.output_dir:
        return Path(config.output_dir)
    # Checked under the run's lock (check_empty): a folder in use is "being trained".
    return runs.default_run_dir(config.method, config.tasks, config.fraction)


def check_empty(folder: Path) -> None:
    if folder.is_dir() and any(p.name != runs.LOCK for p in folder.iterdir()):
        raise UsageError(
            "run folder already exists and is not empty",
            path=folder,
            hint=f"continue it with --resume {folder} or pick another --output-dir",
        )
    if folder.exists() and not folder.is_dir():
        raise HLError("a file is in the way", path=folder, expected="a folder for the run")


def load_data(config: TrainConfig) -> tuple[dict[str, list[Example]], dict[str, list[Example]]]:
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
        val = load_split(task, "val", data_dir=config.data_dir, fraction=fraction, seed=config.seed,
                         sources=config.task_sources)  # fmt: skip
        val_sets[task] = val[: config.max_val_examples]
    return train_sets, val_sets


def make_model(config: TrainConfig, train_sets: dict[str, list[Example]], val_sets: dict[str, list[Example]], *,
               given: TaggingModel | None, setup: ModelSetup | None) -> tuple[TaggingModel, Groups | None]:
    """The model to train and its optimizer groups (None: :func:`param_groups` makes them): ``given``
    as it is, else what ``setup`` builds, else ``config.method`` built for the tasks."""
    if given is not None:
        missing = [task for task in config.tasks if task not in given.task_index]
        if missing:
            raise UsageError(f"the model does not serve task(s) {', '.join(missing)}",
                             expected=f"tasks among {', '.join(given.task_index)}")
        return given, None
    # Types seen in validation too, so that the validation loss never meets an unknown label.
    specs = [TaskSpec(task, label_types(train_sets[task] + val_sets[task])) for task in config.tasks]
    if setup is not None:
        return setup(specs)
    built = build_model(config.method, backbone=config.model, tasks=specs, overrides=dict(config.method_overrides))
    return built, None


def open_run_dir(config: TrainConfig, folder: Path, tagger: TaggingModel, accelerator: Accelerator, *,
                 resume: bool, restart: bool, has_config: bool, say: Log) -> Path | None:
    """Repair the run folder and load the checkpoint to resume from (``last``, else ``best``), or
    create the run folder; the checkpoint folder resumed from, or None (a new run or a fresh start).

    Nothing a user trained is replaced by a resume that cannot continue it: a damaged checkpoint,
    or one whose config disagrees with ``config.json``, is refused (:func:`hlcli.runs.resume_point`);
    only ``restart`` (``--restart``) removes the checkpoints, deliberately.
    """
    main = accelerator.is_main_process
    source = _resume_point(config, folder, accelerator, restart=restart) if resume else None
    if source is not None:
        if source.name != runs.LAST:
            say(f"no checkpoints/last: resuming from checkpoints/best (step {runs.checkpoint_step(source)})")
        path = source / runs.MODEL_WEIGHTS
        load_trainable(tagger, load_tensors(path), path=path)
    elif has_config:
        # --resume of a run killed before its first checkpoint, or --restart: start over in the same folder.
        why = "--restart" if restart else "no checkpoint yet"
        say(f"{folder}: {why}: started over at step 0")
        if main:
            runs.truncate_metrics(folder, 0)
            runs.append_log(folder, f"{why}: started over at step 0")
    else:
        # Only now that data and model are known to work: a failed start leaves no run folder.
        config.output_dir = str(folder)
        if main:
            folder.mkdir(parents=True, exist_ok=True)
            save_config(config, folder / runs.CONFIG)
    accelerator.wait_for_everyone()
    if main and accelerator.num_processes > 1:
        runs.append_log(folder, f"data-parallel over {accelerator.num_processes} processes: "
                                f"{accelerator.num_processes} x {config.batch_size} sentences per micro-batch")
    return source


def _resume_point(config: TrainConfig, folder: Path, accelerator: Accelerator, *, restart: bool) -> Path | None:
    """Undo what a SIGKILL left half-done, then the checkpoint to resume from (None with ``restart``)."""
    if accelerator.is_main_process:
        runs.repair_checkpoints(folder)  # a half-written checkpoint folder, or a swap half-done
        if restart:
            shutil.rmtree(folder / runs.CHECKPOINTS, ignore_errors=True)
    accelerator.wait_for_everyone()
    if restart:
        return None
    source = runs.resume_point(folder)
    recorded = json.loads(json.dumps(config.to_dict()))  # as config.json holds it
    for which in (runs.LAST, runs.BEST):  # both are kept or replaced by this run: both must be its own
        if runs.checkpoint_dir(folder, which).exists():
            check_run_config(runs.checkpoint_dir(folder, which), recorded)
    return source


def build_loop(config: TrainConfig, accelerator: Accelerator, model: TaggingModel,
               train_sets: dict[str, list[Example]], *, groups: Groups | None = None) -> tuple[Loop, TaskSampler]:
    groups = groups if groups is not None else param_groups(config, model)
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
    lengths = None
    if config.group_by_length:
        lengths = {task: tagger.lengths(task, examples) for task, examples in train_sets.items()}
    sampler = TaskSampler(
        {task: len(examples) for task, examples in train_sets.items()},
        batch_size=config.batch_size,
        temperature=config.temperature,
        seed=config.seed,
        num_shards=accelerator.num_processes,
        shard=accelerator.process_index,
        lengths=lengths,
    )
    loop = Loop(config=config, accelerator=accelerator, tagger=tagger, model=step_model, params=params,
                optimizer=optimizer, scheduler=scheduler,
                batches=batches(sampler, tagger, train_sets, accelerator.device))  # fmt: skip
    return loop, sampler


def param_groups(config: TrainConfig, model: TaggingModel) -> Groups:
    """Every trainable parameter at ``lr``; new per-task heads (encoder backbones) at their own ``head_lr``."""
    params = [p for p in model.parameters() if p.requires_grad]
    heads = {id(p) for p in model.head_parameters() if p.requires_grad}
    groups = [{"params": [p for p in params if id(p) not in heads], "lr": config.lr}]
    if heads:
        groups.append({"params": [p for p in params if id(p) in heads], "lr": config.head_lr or config.lr})
    return groups


def _optimizer(groups: Groups, *, lr: float, device: torch.device):
    """AdamW without weight decay (the papers' / transformers' old default).

    Fused AdamW (one kernel for all parameters) on CUDA only: on CPU the default keeps results
    bit-identical to earlier releases.
    """
    fused = {"fused": True} if device.type == "cuda" else {}
    return torch.optim.AdamW(groups, lr=lr, weight_decay=0.0, **fused)
