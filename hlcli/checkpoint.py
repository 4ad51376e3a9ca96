"""Model checkpoints: trainable tensors as safetensors + JSON metadata + a model card.

A checkpoint folder holds

* ``model.safetensors`` — only the tensors training changes (``trainable_state_dict``);
* ``config.json`` — method, method config, backbone (name, resolved path, architecture
  fingerprint), tasks with their label types, parameter counts, library versions;
* ``README.md`` — a model card for humans (rendered by :mod:`hlcli.card`; :func:`refresh_card`
  rewrites it with the scores ``hl evaluate`` records).

:func:`load_model` rebuilds the model with ``build_model`` from ``config.json`` (the backbone's
pretrained weights come from the backbone itself) and loads the tensors, refusing any mismatch
with an HLError that names it. Never pickle: safetensors and JSON only. The module revision a
checkpoint records is :mod:`hlcli.revisions`'s; the training state beside the model (for
``--resume``) is written and read at the end of this module.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from hlcli import runs
from hlcli._version import version
from hlcli.backbones import ALIASES, fingerprint
from hlcli.card import model_card, run_scores
from hlcli.errors import HLError
from hlcli.io import WriteError, atomic_dir, atomic_write, write_json
from hlcli.methods import build_model
from hlcli.methods.base import TaggingModel, TaskSpec
from hlcli.revisions import current_revision, recorded_revision, remember_revision, trained_revision

FORMAT_VERSION = 1


def _versions() -> dict[str, str]:
    import transformers

    return {"hlcli": version(), "torch": torch.__version__, "transformers": transformers.__version__}


def checkpoint_config(model: TaggingModel, *, metrics: dict | None = None, extra: dict | None = None) -> dict[str, Any]:
    total, trainable = model.parameter_counts()
    return {
        "format_version": FORMAT_VERSION,
        "method": model.method,
        "method_config": dataclasses.asdict(model.method_config),
        "backbone": {
            "name": model.backbone_name,
            "path": getattr(model.backbone, "name_or_path", None) or model.backbone.config.name_or_path,
            "fingerprint": fingerprint(model.backbone.config),
        },
        "tasks": [{"name": t.name, "types": list(t.types)} for t in model.tasks],
        "parameters": {"total": total, "trainable": trainable},
        "module_revision": trained_revision(model),
        "versions": _versions(),
        "metrics": metrics or {},
        "history": task_history(extra or {}),
        "extra": extra or {},
    }


def revision_note(checkpoint: str | os.PathLike) -> str | None:
    """One line for ``hl evaluate``/``hl tag`` when ``checkpoint`` was trained with earlier modules."""
    config = read_checkpoint_config(checkpoint)
    recorded, current = recorded_revision(config), current_revision(config)
    if recorded == current:
        return None
    return (f"{checkpoint} was trained with {config['method']} module revision {recorded}; this hlcli runs it with "
            f"revision {current}, so its scores differ from the run's own and from a retrain (CHANGELOG)")


def task_history(extra: dict[str, Any]) -> list[dict[str, Any]]:
    """Which tasks were trained together and which were added later (``hl adapt``), with their steps.

    A training checkpoint derives it from its ``train_config``; ``hl export`` passes it on as
    ``extra["history"]``.
    """
    if "history" in extra:
        return extra["history"]
    train_config = extra.get("train_config") or {}
    if not train_config:
        return []
    adapt = train_config.get("adapt")
    if not adapt:
        return [{"stage": "joint", "tasks": list(train_config["tasks"]), "steps": extra.get("step")}]
    stage = {"stage": "added", "tasks": list(adapt["added"]), "steps": extra.get("step"), "init": adapt["init"],
             "unfreeze": adapt["unfreeze"], "replay": adapt["replay"]}
    return [*adapt["history"], stage]


def save_model(
    model: TaggingModel, folder: str | os.PathLike, *, metrics: dict | None = None, extra: dict | None = None
) -> Path:
    """Write ``model`` to ``folder`` atomically (the old folder, if any, is replaced whole)."""
    with atomic_dir(folder) as tmp:
        write_model_files(model, tmp, metrics=metrics, extra=extra)
    return Path(folder)


def write_model_files(
    model: TaggingModel, folder: Path, *, metrics: dict | None = None, extra: dict | None = None
) -> None:
    """Weights, config and model card into ``folder``, which the caller has made atomic.

    Kept apart from :func:`save_model` so a training checkpoint adds its files to the same
    temporary folder instead of nesting a second atomic swap (whose leftovers a kill would strand).
    """
    config = checkpoint_config(model, metrics=metrics, extra=extra)
    tensors = {name: t.detach().to("cpu").contiguous() for name, t in model.trainable_state_dict().items()}
    save_file(tensors, str(folder / runs.MODEL_WEIGHTS), metadata={"format": "pt", "method": model.method})
    (folder / runs.MODEL_CONFIG).write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (folder / runs.MODEL_CARD).write_text(model_card(config), encoding="utf-8")


def read_checkpoint_config(folder: str | os.PathLike) -> dict[str, Any]:
    path = Path(folder) / runs.MODEL_CONFIG
    if not path.is_file():
        raise HLError("not a checkpoint folder", path=folder,
                      expected=f"a folder with {runs.MODEL_CONFIG} and {runs.MODEL_WEIGHTS}")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise HLError(f"unreadable checkpoint config: {error}", path=path,
                      hint="the file is damaged; copy the checkpoint folder again or retrain") from error
    for key in ("method", "method_config", "backbone", "tasks"):
        if key not in config:
            raise HLError(f"checkpoint config lacks {key!r}", path=path)
    return config


# What a run's config.json and the train_config inside each of its checkpoints must agree on (a
# resume may change max_steps and data_dir; the data pins are checked against the data itself).
RUN_KEYS = ("method", "model", "tasks", "method_overrides", "fraction", "seed")


def check_run_config(folder: str | os.PathLike, run_config: dict[str, Any]) -> None:
    """Refuse a checkpoint of a run folder whose config disagrees with the run's ``config.json``
    (an edited or copied-in file): the error names the checkpoint's ``config.json``."""
    path = Path(folder) / runs.MODEL_CONFIG
    config = read_checkpoint_config(folder)
    train_config = (config.get("extra") or {}).get("train_config") or {}
    pairs = [("method", config["method"], run_config.get("method"))]
    pairs += [(key, train_config[key], run_config[key])
              for key in RUN_KEYS if key in train_config and key in run_config]  # fmt: skip
    for key, here, there in pairs:
        if here != there:
            raise HLError(f"{key} {here!r} differs from the run's config.json ({there!r})", path=path,
                          hint="one of the two files was edited or copied in; restore it, or train a new run")


def _run_config(folder: Path) -> dict[str, Any] | None:
    """The ``config.json`` of the run folder ``folder`` is a checkpoint of (``RUN/checkpoints/X``), else None."""
    run = folder.parent.parent
    if folder.parent.name != runs.CHECKPOINTS or not (run / runs.CONFIG).is_file():
        return None
    try:
        config = json.loads((run / runs.CONFIG).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise HLError(f"unreadable run config: {error}", path=run / runs.CONFIG) from None
    return config if isinstance(config, dict) else None


def load_model(
    folder: str | os.PathLike, *, device: str | torch.device | None = None, backbone: str | None = None
) -> TaggingModel:
    """Rebuild the model saved in ``folder``; ``backbone`` overrides the recorded backbone location."""
    folder = Path(folder)
    config = read_checkpoint_config(folder)
    run_config = _run_config(folder)
    if run_config is not None:
        check_run_config(folder, run_config)
    weights_path = folder / runs.MODEL_WEIGHTS
    if not weights_path.is_file():
        raise HLError(f"checkpoint has no {runs.MODEL_WEIGHTS}", path=folder)
    tasks = [TaskSpec(t["name"], list(t["types"])) for t in config["tasks"]]
    try:
        model = build_model(
            config["method"],
            backbone=backbone or _backbone_location(config["backbone"]),
            tasks=tasks,
            overrides=config["method_config"],
        )
    except HLError as error:  # an unknown method or option: say which file names it
        error.path = error.path or str(folder / runs.MODEL_CONFIG)
        raise
    recorded = config["backbone"].get("fingerprint", {})
    actual = fingerprint(model.backbone.config)
    different = sorted(k for k in set(recorded) | set(actual) if recorded.get(k) != actual.get(k))
    if different:
        detail = ", ".join(f"{k}: {recorded.get(k)!r} != {actual.get(k)!r}" for k in different)
        raise HLError(f"backbone does not match the checkpoint ({detail})", path=folder / runs.MODEL_CONFIG)
    try:
        tensors = load_file(str(weights_path))
    except Exception as error:  # safetensors raises its own error types for corrupt files
        hint = "the file is damaged or not safetensors; copy the checkpoint folder again or retrain"
        raise HLError(f"unreadable weights: {error}", path=weights_path, hint=hint) from error
    # hl export stores backbone weights with LoRA merged in (q/v) beside the trainable tensors.
    load_trainable(model, tensors, path=weights_path, backbone_tensors=config.get("backbone_tensors", ()))
    if device is not None:
        model.to(device)
    model.eval()
    return model


def _backbone_location(recorded: dict[str, Any]) -> str:
    """The recorded name, unless it is a relative folder that moved and the resolved path still exists."""
    name, path = recorded["name"], recorded.get("path")
    if name in ALIASES or Path(name).expanduser().exists() or not path or not Path(path).is_dir():
        return name
    return path


def load_trainable(
    model: TaggingModel, tensors: dict[str, torch.Tensor], *, path: str | os.PathLike, backbone_tensors=()
) -> None:
    """Copy ``tensors`` into ``model``'s trainable parameters (plus the named frozen ``backbone_tensors``),
    exactly the same set and shapes."""
    expected = model.trainable_state_dict()
    parameters = dict(model.named_parameters())
    expected.update({name: parameters[name] for name in backbone_tensors if name in parameters})
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    for kind, names in (("missing", missing), ("unexpected", unexpected)):
        if names:
            raise HLError(f"{kind} tensor(s) {', '.join(names[:5])}{' ...' if len(names) > 5 else ''}", path=path,
                          expected="the tensors of the method/backbone/tasks in config.json")
    for name, tensor in tensors.items():
        if tuple(tensor.shape) != tuple(expected[name].shape):
            raise HLError(f"tensor {name} has shape {tuple(tensor.shape)}", path=path,
                          expected=f"shape {tuple(expected[name].shape)}")
    with torch.no_grad():
        for name, tensor in tensors.items():
            parameters[name].copy_(tensor.to(parameters[name].dtype))
    model.invalidate_cache()
    remember_revision(model, Path(path).parent / runs.MODEL_CONFIG)


def refresh_card(checkpoint: Path, run_dir: Path | None, *, step: int | None = None) -> None:
    """Rewrite ``checkpoint``'s README.md with the scores ``hl evaluate`` recorded for it.

    ``step``: the step of the model that was scored. A run evaluated while it trains may have had
    this checkpoint replaced meanwhile (the trainer swaps ``best``/``last`` whole): the folder then
    holds another model, whose card is left as the trainer wrote it, and a folder that is gone is
    never created again for the card alone."""
    try:
        config = read_checkpoint_config(checkpoint)
    except HLError:  # a checkpoint not written by hlcli.checkpoint (a plugin's, a test's): its card is its own
        return
    if step is not None and runs.step_of_checkpoint(checkpoint) != step:
        return
    name = Path(run_dir).name if run_dir is not None else None
    card = model_card(config, scores=run_scores(run_dir, checkpoint), name=name)
    try:
        with atomic_write(Path(checkpoint) / runs.MODEL_CARD, parents=False) as handle:
            handle.write(card)
    except WriteError:
        if step is None or runs.step_of_checkpoint(checkpoint) == step:
            raise
        # replaced while the card was written: the new checkpoint keeps its own card


# -- training state: optimizer, scheduler, sampler, grad scaler, RNGs (for ``hl train --resume``) ----
# accelerate's ``save_state`` writes these with ``torch.save`` (pickle), so they are written here:
# tensors → safetensors, everything else → JSON. File names are in :mod:`hlcli.runs`.
def write_training_state(
    folder: Path, *, optimizer, scheduler, sampler, scaler, state: dict[str, Any], torch_rng: list[torch.Tensor]
) -> None:
    """``optimizer.safetensors``, ``rng.safetensors`` and ``trainer_state.json`` into ``folder``.

    ``torch_rng`` holds each process's torch RNG state (dropout differs per process): rank 0's is
    ``torch``, rank r's ``torch.<r>``. ``state`` is the loop's own state (step, best metric, ...).
    """
    import random

    import numpy as np

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
        "sampler": sampler.state_dict(),
        "optimizer": {"param_groups": optimizer_state["param_groups"], "scalars": scalars},
        "scheduler": scheduler.state_dict(),
        "scaler": scaler.state_dict() if scaler is not None else None,
        # The big state vectors are in rng.safetensors; these are the scalars beside them.
        "python_rng": {"version": version, "gauss": gauss},
        "numpy_rng": {"name": np_name, "pos": np_pos, "has_gauss": np_has_gauss, "gauss": np_gauss},
    }
    save_file(tensors, str(folder / runs.OPTIMIZER))
    save_file(rng, str(folder / runs.RNG))
    write_json(folder / runs.TRAINER_STATE, trainer_state)


def read_training_state(folder: Path, *, optimizer, scheduler, sampler, scaler, rank: int = 0) -> dict[str, Any]:
    """Restore what :func:`write_training_state` wrote; return the loop's own ``state``."""
    path = folder / runs.TRAINER_STATE
    try:
        return _restore_training_state(folder, optimizer, scheduler, sampler, scaler, rank)
    except (OSError, ValueError, KeyError, TypeError) as error:  # JSONDecodeError is a ValueError
        run = folder.parent.parent
        raise HLError(f"unreadable trainer state: {type(error).__name__}: {error}", path=path,
                      hint=f"the checkpoint is damaged and was left as it is; restore it, or start over deliberately: "
                           f"hl train --resume {run} --restart") from None  # fmt: skip


def load_tensors(path: Path) -> dict[str, torch.Tensor]:
    """A safetensors file, or an HLError saying the checkpoint is damaged."""
    try:
        return load_file(str(path))
    except Exception as error:  # safetensors raises its own error types for missing/corrupt files
        raise HLError(f"unreadable tensors: {error}", path=path,
                      hint="the checkpoint is damaged; start a new run") from None


# Implementation choices of this process's optimizer, not state: a run resumed on another device
# keeps the current ones (fused AdamW exists on CUDA only).
_OPTIMIZER_IMPLEMENTATION = ("fused", "foreach", "capturable")


def _restore_training_state(folder: Path, optimizer, scheduler, sampler, scaler, rank: int) -> dict[str, Any]:
    import random

    import numpy as np

    saved = json.loads((folder / runs.TRAINER_STATE).read_text(encoding="utf-8"))
    optimizer_state: dict[int, dict[str, Any]] = {}
    for key, value in {**load_tensors(folder / runs.OPTIMIZER), **saved["optimizer"]["scalars"]}.items():
        param_id, name = key.split(".", 1)
        optimizer_state.setdefault(int(param_id), {})[name] = value
    groups = saved["optimizer"]["param_groups"]
    for group, current in zip(groups, optimizer.param_groups):
        if "betas" in group:
            group["betas"] = tuple(group["betas"])
        group.update({key: current[key] for key in _OPTIMIZER_IMPLEMENTATION if key in current})
    optimizer.load_state_dict({"state": optimizer_state, "param_groups": groups})
    scheduler.load_state_dict(saved["scheduler"])
    if saved.get("scaler") and scaler is not None:
        scaler.load_state_dict(saved["scaler"])
    sampler.load_state_dict(saved["sampler"])
    rng = load_tensors(folder / runs.RNG)
    torch.set_rng_state(rng.get(f"torch.{rank}", rng["torch"]))
    if torch.cuda.is_available():
        cuda = [rng[k] for k in sorted((k for k in rng if k.startswith("cuda.")), key=lambda k: int(k[5:]))]
        if cuda:
            torch.cuda.set_rng_state_all(cuda)
    python, numpy_ = saved["python_rng"], saved["numpy_rng"]
    random.setstate((python["version"], tuple(rng["python"].tolist()), python["gauss"]))
    np.random.set_state(
        (numpy_["name"], rng["numpy"].numpy().astype(np.uint32), numpy_["pos"], numpy_["has_gauss"], numpy_["gauss"])
    )
    return saved
