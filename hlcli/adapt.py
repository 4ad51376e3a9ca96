"""``hl adapt``: add tasks to a trained multi-task model without retraining it.

The HyperLoader paper's stated limitation (§7) is that a new task means retraining on every
dataset. With a hypernetwork it need not: the shared generator already turns a task embedding
into every layer's adapters and LoRA, so a new task needs a new embedding row (and, on encoder
backbones, a new head). :func:`adapt` writes a NEW run folder derived from a trained one:

* the model is built for ``old tasks + new tasks`` (old ones first, in their order, so their ids
  and embedding rows do not move) and every tensor of the old checkpoint is copied in;
* the new embedding rows start at the mean of the old rows (``init="mean"``) or at the method's
  own random initialisation (``init="random"``);
* by default everything already trained stays frozen: only the new rows (an old row's gradient is
  zeroed, so AdamW never moves it) and the new heads train. Old tasks' predictions are then
  bitwise identical before and after (tests/test_adapt.py);
* ``unfreeze="hypernetwork"`` also tunes the generator (:class:`HyperNetwork` modules) at
  ``generator_lr``, and ``replay`` keeps sampling the old tasks so they are not forgotten.

The training itself is :func:`hlcli.training.train` with its ``setup`` hook (:func:`model_setup`):
same sampler, checkpoints, validation, Ctrl-C and ``hl train --resume``. Checkpoints store the
method's full tensor set (``TaggingModel.checkpoint_names``), so an adapted run loads, evaluates
and tags like any run of its method. See docs/add-task.md.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from safetensors import safe_open
from safetensors.torch import load_file
from torch import nn

from hlcli import runs
from hlcli.checkpoint import read_checkpoint_config, revision_note, task_history
from hlcli.config import TrainConfig
from hlcli.data.sources import resolve_tasks
from hlcli.errors import HLError, UsageError
from hlcli.io import Log
from hlcli.methods.base import TaggingModel, TaskSpec
from hlcli.revisions import remember_revision

# Methods whose tasks are rows of a task-embedding table fed to a shared generator.
ADAPTABLE = ("hyperloader", "hyperformer", "lora-only")
WHY_NOT = {
    "unipelt": ("UniPELT trains one model per task (no task conditioning to extend): "
                "train a UniPELT run on the new task"),
    "static": "static shares one set of adapters by all tasks (no task conditioning to extend)",
    "full-finetune": "full-finetune trains every weight for all tasks together (no task conditioning to extend)",
    "hyperdecoder": ("hyperdecoder has no task embeddings (its adapters come from the encoder output; "
                     "tasks are named in the input)"),
}
INITS = ("mean", "random")
UNFREEZE = ("none", "hypernetwork")
# Parameter names of the task-embedding table (T5 path, encoder path).
TASK_TABLES = ("source.task_embeddings.weight", "task_embeddings")


@dataclass
class AdaptPlan:
    """What ``config.adapt`` records: the base run and how tasks are added to it."""

    base: str  # the base checkpoint folder (absolute)
    base_tasks: list[dict[str, Any]]  # [{"name", "types"}] in model order
    history: list[dict[str, Any]]  # the base checkpoint's training history
    added: list[str]
    init: str = "mean"
    unfreeze: str = "none"
    generator_lr: float | None = None
    replay: bool = False
    # Where the base model's own-data tasks live (as the base run pinned them): hl evaluate scores
    # them from here when they are not among this run's tasks (no --replay).
    base_sources: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)


# The new task embeddings' learning rate unless --lr is given. Measured (docs/add-task.md,
# leave-one-out on MiniLM): 1e-2 beat the base run's 1e-4 in all four comparisons, by 0.9 to 2.9
# points of the new task's test F1. A lone row of a table learns slowly at the rate that suited
# the whole generator.
EMBEDDING_LR = 1e-2


def check_method(method: str) -> None:
    """Refuse, in one line, a method that has no task embeddings to extend."""
    if method not in ADAPTABLE:
        why = WHY_NOT.get(method, f"{method} has no task embeddings")
        raise UsageError(f"cannot add a task to a {method} model: {why}", expected=f"a run of {', '.join(ADAPTABLE)}")


def adapt_config(
    run: str | Path,
    *,
    tasks: list[str],
    init: str = "mean",
    unfreeze: str = "none",
    generator_lr: float | None = None,
    replay: bool = False,
    output_dir: str | Path | None = None,
    settings: dict[str, Any] | None = None,
) -> TrainConfig:
    """The TrainConfig of a run adding ``tasks`` to ``run``: the base run's settings, then ``settings``."""
    checkpoint, run_dir = runs.resolve_checkpoint(run)
    recorded = read_checkpoint_config(checkpoint)
    check_method(recorded["method"])
    train_config = recorded.get("extra", {}).get("train_config")
    if not train_config:
        raise HLError("checkpoint does not record its training settings", path=checkpoint,
                      expected="a checkpoint written by hl train or hl adapt")
    base_names = [t["name"] for t in recorded["tasks"]]
    if not tasks:
        raise UsageError("no task to add", expected="--tasks restaurant[,...]")
    # Own data (NAME=FOLDER, hf:ORG/DATASET) as hl train reads it: the names, and where their data lives.
    tasks, sources = resolve_tasks(list(tasks), None)
    clash = [t for t in tasks if t in base_names]
    if clash or len(set(tasks)) != len(tasks):
        raise UsageError(f"task {(clash or tasks)[0]!r} is already in the model or given twice",
                         expected=f"tasks other than {', '.join(base_names)}")
    _check_options(init=init, unfreeze=unfreeze, generator_lr=generator_lr, replay=replay)
    data = {k: v for k, v in train_config.items() if k not in ("output_dir", "adapt")}
    base_lr = data.get("lr", TrainConfig.lr)
    data["lr"] = EMBEDDING_LR
    data.update({k: v for k, v in (settings or {}).items() if v is not None})
    base_dir = run_dir or checkpoint
    data["tasks"] = [*base_names, *tasks] if replay else list(tasks)
    # The base run's own sources (as pinned when it read them) stay for --replay; TrainConfig keeps the listed tasks'.
    data["task_sources"] = {**(data.get("task_sources") or {}), **sources}
    data["output_dir"] = str(output_dir or Path("runs") / f"{base_dir.name}+{'+'.join(tasks)}")
    plan = AdaptPlan(
        base=str(checkpoint.resolve()),
        base_tasks=recorded["tasks"],
        history=recorded.get("history") or task_history(recorded.get("extra", {})),
        added=list(tasks),
        init=init,
        unfreeze=unfreeze,
        # A trained generator feeds every weight of every task: by default it moves 10x slower than
        # it was trained (1e-5 after MiniLM's 1e-4, the rate measured in docs/add-task.md).
        generator_lr=(generator_lr or base_lr / 10) if unfreeze == "hypernetwork" else None,
        replay=replay,
        base_sources={name: entry for name, entry in _base_sources(train_config).items() if name in base_names},
    )
    data["adapt"] = dataclasses.asdict(plan)
    return TrainConfig.from_dict(data)


def _check_options(*, init: str, unfreeze: str, generator_lr: float | None, replay: bool) -> None:
    if init not in INITS:
        raise UsageError(f"--init {init!r}", expected=" | ".join(INITS))
    if unfreeze not in UNFREEZE:
        raise UsageError(f"--unfreeze {unfreeze!r}", expected=" | ".join(UNFREEZE))
    if replay and unfreeze == "none":
        raise UsageError("--replay trains nothing with the generator frozen (old tasks' weights are all frozen)",
                         hint="add --unfreeze hypernetwork")
    if generator_lr is not None and unfreeze == "none":
        raise UsageError("--generator-lr needs --unfreeze hypernetwork")


def _base_sources(train_config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The base run's own tasks' sources: its task_sources, and its own base's if it was adapted too."""
    adapt = train_config.get("adapt") or {}
    return {**(adapt.get("base_sources") or {}), **(train_config.get("task_sources") or {})}


def setup_for(config: TrainConfig) -> Callable[[list[TaskSpec]], tuple[TaggingModel, list[dict[str, Any]]]] | None:
    """The ``setup`` to give :func:`hlcli.training.train` for ``config``: :func:`model_setup` for a run
    made by :func:`adapt_config` (``config.adapt`` set: resuming it rebuilds the derived model), None
    for any other run. ``hl train`` and :func:`hlcli.train` choose it, so the loop never imports this module."""
    return model_setup(config) if config.adapt is not None else None


def model_setup(config: TrainConfig) -> Callable[[list[TaskSpec]], tuple[TaggingModel, list[dict[str, Any]]]]:
    """The ``setup`` hook of :func:`hlcli.training.train` for a run made by :func:`adapt_config`."""
    plan = AdaptPlan(**config.adapt)

    def setup(specs: list[TaskSpec]) -> tuple[TaggingModel, list[dict[str, Any]]]:
        model = derive_model(config, plan, [s for s in specs if s.name in plan.added])
        return model, freeze(model, config, plan)

    return setup


def derive_model(config: TrainConfig, plan: AdaptPlan, new_specs: list[TaskSpec]) -> TaggingModel:
    """The base model with ``new_specs`` appended: every base tensor copied, new rows initialised by ``plan.init``."""
    from hlcli.methods import build_model

    old_specs = [TaskSpec(t["name"], list(t["types"])) for t in plan.base_tasks]
    model = build_model(config.method, backbone=config.model, tasks=old_specs + new_specs,
                        overrides=dict(config.method_overrides))
    path = Path(plan.base) / runs.MODEL_WEIGHTS
    try:
        base = load_file(str(path))
    except Exception as error:  # safetensors raises its own error types
        raise HLError(f"unreadable base weights: {error}", path=path,
                      hint="the base run must stay where it was") from None
    parameters = dict(model.named_parameters())
    table = _task_table(model)
    n_old = len(old_specs)
    with torch.no_grad():
        for name, tensor in base.items():
            target = parameters.get(name)
            if name == table and target is not None:
                expected = (n_old, *target.shape[1:])
            else:
                expected = getattr(target, "shape", None)
            if target is None or tuple(tensor.shape) != tuple(expected):
                raise HLError(f"base tensor {name} does not fit the derived model", path=path,
                              expected="a checkpoint of the same method, backbone and method settings")
            if name == table:
                target[:n_old].copy_(tensor)
                if plan.init == "mean":
                    target[n_old:].copy_(tensor.mean(0).expand(target.shape[0] - n_old, -1))
            else:
                target.copy_(tensor)
    model.invalidate_cache()
    remember_revision(model, Path(plan.base) / runs.MODEL_CONFIG)  # a base trained with earlier modules stays marked so
    return model


def freeze(model: TaggingModel, config: TrainConfig, plan: AdaptPlan) -> list[dict[str, Any]]:
    """Freeze what the base run trained; return the optimizer groups of what still trains."""
    from hlcli.methods.hyperloader.hypernetwork import HyperNetwork

    # Checkpoints keep the method's full set, so that an adapted run loads like any other.
    model.checkpoint_names = frozenset(model.trainable_state_dict())
    with safe_open(str(Path(plan.base) / runs.MODEL_WEIGHTS), framework="pt") as handle:
        base = set(handle.keys())
    parameters = dict(model.named_parameters())
    for p in model.parameters():
        p.requires_grad_(False)
    table = parameters[_task_table(model)]
    table.requires_grad_(True)
    n_old = len(plan.base_tasks)
    mask = torch.ones(table.shape[0], 1)
    mask[:n_old] = 0
    # Old rows get no gradient, so AdamW (no weight decay) leaves them exactly as they were.
    table.register_hook(lambda grad: grad * mask.to(grad.device, grad.dtype))
    names = {id(p): name for name, p in parameters.items()}
    heads = [p for p in model.head_parameters() if names[id(p)] not in base]  # the new tasks' heads
    groups = [{"params": [table], "lr": config.lr}]
    if heads:
        groups.append({"params": heads, "lr": config.head_lr or config.lr})
    if plan.unfreeze == "hypernetwork":
        generator = [p for m in model.modules() if isinstance(m, HyperNetwork) for p in m.parameters()]
        groups.append({"params": generator, "lr": plan.generator_lr})
    for group in groups:
        for p in group["params"]:
            p.requires_grad_(True)
    return groups


def _task_table(model: nn.Module) -> str:
    names = dict(model.named_parameters())
    for name in TASK_TABLES:
        if name in names:
            return name
    raise HLError(f"{type(model).__name__} has no task-embedding table",
                  expected=f"one of {', '.join(TASK_TABLES)}")


def adapt(run: str | Path, *, log: Log | None = None, on_step: Callable[[Any], None] | None = None,
          **options: Any):
    """Add tasks to the trained ``run`` in a new run folder; ``options`` are :func:`adapt_config`'s
    (``tasks``, ``init``, ``unfreeze``, ``generator_lr``, ``replay``, ``output_dir``, ``settings``).
    Returns the :class:`hlcli.training.TrainResult`."""
    from hlcli.training import train

    config = adapt_config(run, **options)
    note = revision_note(Path(config.adapt["base"]))
    if note is not None and log is not None:
        log(f"note: {note}; the new run records the earlier revision")
    return train(config, setup=model_setup(config), log=log, on_step=on_step)
