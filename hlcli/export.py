"""``hl export RUN --task atis -o DIR``: one task's generated weights as a plain checkpoint.

A HyperLoader checkpoint stores the generator, not the weights it generates: serving one task
means building the hypernetwork and running it. The export runs it once for ``task`` and stores
the result as the ``static`` method's checkpoint (plain adapter, layer-norm and LoRA tensors,
one task), which ``hl tag DIR`` / ``hl evaluate`` / :func:`hlcli.checkpoint.load_model`
load like any checkpoint, without a hypernetwork:

* adapters and conditional layer norms → the static source's tensors, as generated;
* LoRA → merged into the backbone's q/v weights (``W0 + (α/r)·B A``, the very tensors the full
  model's inference cache uses), stored beside them and listed in ``config.json`` under
  ``backbone_tensors``; with ``merge_lora=False`` (or for ``lora-only``, which has no adapters
  to keep the static model meaningful without LoRA) the generated A and B factors are stored;
* the backbone's trained layer norms and the task's head (encoder backbones) are copied.

Tagging with the export gives the same tags as the full run (tests/test_export.py).

``hl export RUN --hub-dir DIR`` (:func:`export_hub`) lays a checkpoint out for the Hugging Face hub:
``model.safetensors``, ``config.json`` and a ``README.md`` model card whose YAML header and tables
carry the scores of ``hl evaluate`` — the folder ``huggingface_hub.upload_folder`` (``hf upload``)
pushes as it is. With ``--task``, the task's export (above) is laid out that way instead.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import save_file

from hlcli import runs
from hlcli.adapt import ADAPTABLE, WHY_NOT
from hlcli.card import model_card
from hlcli.checkpoint import checkpoint_config, load_model, read_checkpoint_config
from hlcli.errors import UsageError, unknown_name
from hlcli.io import atomic_dir
from hlcli.methods.base import TaggingModel, TaskSpec


@dataclass
class ExportResult:
    folder: Path
    task: str
    merged_lora: bool
    tensors: int
    bytes: int


def export_task(run: str | Path, *, task: str, output: str | Path, merge_lora: bool = True) -> ExportResult:
    """Write ``task``'s generated weights from ``run`` to ``output`` (a new or empty folder)."""
    checkpoint, _ = runs.resolve_checkpoint(run)
    output = Path(output)
    _check_empty(output, option="-o")
    full = load_model(checkpoint)
    if full.method not in ADAPTABLE:
        why = WHY_NOT.get(full.method, "")
        raise UsageError(f"nothing to export from a {full.method} model: {why}".rstrip(": "),
                         expected=f"a run of {', '.join(ADAPTABLE)}")
    if task not in full.task_index:
        raise unknown_name("task", task, list(full.task_index))
    weights, merged = _generate(full, task)
    merge = merge_lora and merged is not None and full.method_config.use_adapters
    static = _static_model(full, task, use_lora=full.method_config.use_lora and not merge)
    tensors = _fill(static, full, task, weights)
    backbone = _merged_qv(full, merged) if merge else {}
    tensors.update(backbone)
    source = read_checkpoint_config(checkpoint)
    extra = {
        "history": source.get("history", []),
        "exported": {
            "checkpoint": str(checkpoint.resolve()), "method": full.method, "task": task, "merged_lora": merge
        },
    }
    metrics = {k: v for k, v in source.get("metrics", {}).items() if k.endswith(f"/{task}")}
    config = checkpoint_config(static, metrics=metrics, extra=extra)
    config["backbone_tensors"] = sorted(backbone)
    with atomic_dir(output) as tmp:
        save_file(tensors, str(tmp / runs.MODEL_WEIGHTS), metadata={"format": "pt", "method": static.method})
        (tmp / runs.MODEL_CONFIG).write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        merged_note = " (LoRA merged into q/v)" if merge else ""
        card = model_card(config).replace(
            "\n## Tasks", f"\nExported by `hl export` from `{checkpoint}`: {full.method}'s weights for task "
            f"`{task}`, generated once and stored as plain tensors{merged_note}.\n\n## Tasks", 1)
        (tmp / runs.MODEL_CARD).write_text(card, encoding="utf-8")
    return ExportResult(output, task, merge, len(tensors), (output / runs.MODEL_WEIGHTS).stat().st_size)


@dataclass
class HubExport:
    folder: Path
    files: list[str]
    scored_splits: list[str]


def export_hub(run: str | Path, *, output: str | Path, task: str | None = None, merge_lora: bool = True) -> HubExport:
    """Lay ``run``'s best checkpoint (``task``: that task's export) out in ``output`` for the hub.

    The card gets the scores ``hl evaluate`` wrote to the run's ``eval.json`` for that checkpoint
    (for ``task``, that task's rows). Nothing is uploaded: push the folder with ``hf upload``.
    """
    from hlcli.card import run_scores

    checkpoint, run_dir = runs.resolve_checkpoint(run)
    output = Path(output)
    _check_empty(output, option="--hub-dir")
    scores = run_scores(run_dir, checkpoint)
    name = (run_dir or checkpoint).name
    if task is not None:
        export_task(run, task=task, output=output, merge_lora=merge_lora)
        scores = {split: {**record, "tasks": {t: v for t, v in record.get("tasks", {}).items() if t == task}}
                  for split, record in scores.items()}  # fmt: skip
        config = read_checkpoint_config(output)
        card = model_card(config, scores=scores, name=f"{name}-{task}")
        (output / runs.MODEL_CARD).write_text(card, encoding="utf-8")
    else:
        config = read_checkpoint_config(checkpoint)
        with atomic_dir(output) as tmp:
            for file in (runs.MODEL_WEIGHTS, runs.MODEL_CONFIG):
                shutil.copyfile(checkpoint / file, tmp / file)
            (tmp / runs.MODEL_CARD).write_text(model_card(config, scores=scores, name=name), encoding="utf-8")
    return HubExport(output, sorted(p.name for p in output.iterdir()), sorted(scores))


def _check_empty(output: Path, *, option: str) -> None:
    """An export goes into a new or empty folder (``option``: the flag that named it)."""
    if output.exists() and (not output.is_dir() or any(output.iterdir())):
        raise UsageError("output folder already exists and is not empty", path=output, hint=f"pick another {option}")


@torch.no_grad()
def _generate(model: TaggingModel, task: str):
    """``(weights per stack, merged q/v per stack or None)``: what the model's inference cache holds."""
    model.eval()
    return model.generated_weights(task, use_cache=True)  # T5 and encoder models alike


def _static_model(full: TaggingModel, task: str, *, use_lora: bool) -> TaggingModel:
    from hlcli.methods import build_model

    overrides = {**dataclasses.asdict(full.method_config), "use_lora": use_lora}
    spec = full.tasks[full.task_index[task]]
    tasks = [TaskSpec(spec.name, list(spec.types))]
    return build_model("static", backbone=full.backbone_name, tasks=tasks, overrides=overrides)


def _fill(static: TaggingModel, full: TaggingModel, task: str, weights) -> dict[str, torch.Tensor]:
    """The static model's checkpoint tensors: generated weights, the full model's layer norms and head."""
    index = full.task_index[task]
    own = dict(full.named_parameters())
    tensors = {}
    for name in static.trainable_state_dict():
        if ".stacks." in name:  # source.stacks.<stack>.<field>: [1, ...] = one shared set
            stack, field = name.split(".stacks.", 1)[1].split(".")
            value = getattr(weights[stack], field)[None]
        elif name.startswith("heads.0."):
            value = own[f"heads.{index}." + name[len("heads.0."):]]
        else:
            value = own[name]
        tensors[name] = value.detach().to("cpu").contiguous()
    return tensors


def _merged_qv(full: TaggingModel, merged: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Backbone q/v weight name → ``W0 + (α/r)·B A`` for every LoRA linear of the full model."""
    names = {id(module): name for name, module in full.named_modules()}
    out = {}
    for stack, layers in full.lora_modules.items():
        for layer, linears in enumerate(layers):
            for slot, linear in enumerate(linears):
                out[f"{names[id(linear)]}.weight"] = merged[stack][layer, slot].detach().to("cpu").contiguous()
    return out
