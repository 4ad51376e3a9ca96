"""Validation during training: loss per task on the validation sets (and F1 when asked)."""

from __future__ import annotations

import torch
from accelerate import Accelerator
from accelerate.utils import send_to_device

from hlcli.config import TrainConfig
from hlcli.data.example import Example
from hlcli.scoring import score
from hlcli.methods.base import TaggingModel


@torch.no_grad()
def validate(tagger: TaggingModel, val_sets: dict[str, list[Example]], config: TrainConfig,
             accelerator: Accelerator) -> dict[str, float]:
    """Validation loss per task and its mean over tasks (plus F1 when ``config.compute_f1``)."""
    metrics: dict[str, float] = {}
    losses, f1s = [], []
    with tagger.evaluating():  # back to training mode afterwards: validation runs mid-training
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
    if losses:
        metrics["val_loss"] = sum(losses) / len(losses)
    if f1s:
        metrics["avg_f1"] = sum(f1s) / len(f1s)
    return metrics


def summary(step: int, metrics: dict[str, float], improved: bool) -> str:
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
