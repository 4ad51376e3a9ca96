"""``hl train``: multi-task training from a recipe and/or flags; ``--resume`` continues a run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer

from hlcli.cli._common import DataDirOption, VerboseOption, console, err_console, handle_errors, parse_list, training_bar
from hlcli.errors import UsageError


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``["reduction_factor=4", "lora_rank=8", "name=x"]`` → ``{"reduction_factor": 4, ...}``.

    Values are read as JSON when they parse (numbers, true/false, lists), else kept as strings.
    """
    overrides: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--set {item!r}", expected="key=value, e.g. --set reduction_factor=4")
        try:
            overrides[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key.strip()] = value
    return overrides


def train_command(
    tasks: Optional[str] = typer.Option(None, "--tasks", help="Comma-separated tasks, e.g. atis,snips,mtop."),
    recipe: Optional[Path] = typer.Option(None, "--recipe", help="TOML recipe (recipes/*.toml); flags override it."),
    method: Optional[str] = typer.Option(None, "--method", help="Method (default hyperloader)."),
    model: Optional[str] = typer.Option(None, "--model", help="Backbone name (t5-base, minilm) or local folder."),
    fraction: Optional[float] = typer.Option(None, "--fraction", help="Fraction of each training set (default 1.0)."),
    max_steps: Optional[int] = typer.Option(None, "--max-steps", help="Optimizer steps (with --resume: the new total)."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Sentences per single-task batch (default 32)."),
    lr: Optional[float] = typer.Option(None, "--lr", help="Peak learning rate (default 3e-4)."),
    head_lr: Optional[float] = typer.Option(None, "--head-lr", help="Learning rate of per-task heads on encoder backbones (default: --lr)."),
    schedule: Optional[str] = typer.Option(None, "--schedule", help="constant | linear (default linear)."),
    warmup_steps: Optional[int] = typer.Option(None, "--warmup-steps", help="Warm-up steps (default 500)."),
    eval_every: Optional[int] = typer.Option(None, "--eval-every", help="Validate every N steps (default 1000)."),
    checkpoint_every: Optional[int] = typer.Option(None, "--checkpoint-every", help="Save checkpoints/last every N steps (default 1000)."),
    select_best_by: Optional[str] = typer.Option(None, "--select-best-by", help="val_loss (default) | avg_f1."),
    eval_f1: Optional[bool] = typer.Option(None, "--eval-f1/--no-eval-f1", help="Also decode and score val F1 at each evaluation (slow)."),
    max_val_examples: Optional[int] = typer.Option(None, "--max-val-examples", help="Validate on at most N sentences per task."),
    group_by_length: Optional[bool] = typer.Option(None, "--group-by-length/--no-group-by-length", help="Batch sentences of similar length: less padding, faster steps (default off)."),
    grad_accum: Optional[int] = typer.Option(None, "--grad-accum", help="Micro-batches per optimizer step (default 1)."),
    label_smoothing: Optional[float] = typer.Option(None, "--label-smoothing", help="Label smoothing (default 0)."),
    skip_nonfinite: Optional[bool] = typer.Option(None, "--skip-nonfinite/--stop-on-nonfinite", help="Skip NaN/inf-loss batches instead of stopping."),
    output_dir: Optional[Path] = typer.Option(None, "--output-dir", help="Run folder (default runs/<method>-<tasks>-<fraction>-<time>)."),
    resume: Optional[Path] = typer.Option(None, "--resume", help="Continue this run folder from checkpoints/last."),
    data_dir: Optional[Path] = DataDirOption,
    seed: Optional[int] = typer.Option(None, "--seed", help="Seed (default 42)."),
    mixed_precision: Optional[str] = typer.Option(None, "--mixed-precision", help="no | bf16 | fp16 (fp16 overflows in T5)."),
    set_: list[str] = typer.Option([], "--set", help="Method hyper-parameter key=value (repeatable), e.g. --set reduction_factor=4."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Progress bar on stderr."),
    verbose: bool = VerboseOption,
) -> None:
    """Train one model on several tasks at once.

    Ctrl-C stops after the current step and saves a resumable checkpoint (exit code 130).

    Example:

      hl train --tasks atis,snips,mtop --fraction 0.1 --model minilm --max-steps 2000

      hl train --recipe recipes/paper-table3.toml --output-dir runs/table3

      hl train --resume runs/table3
    """
    import warnings

    from hlcli.config import load_config
    from hlcli.training import resume_config, train

    flags = {
        "tasks": parse_list(tasks) or None,
        "method": method,
        "model": model,
        "fraction": fraction,
        "max_steps": max_steps,
        "batch_size": batch_size,
        "lr": lr,
        "head_lr": head_lr,
        "schedule": schedule,
        "warmup_steps": warmup_steps,
        "eval_every": eval_every,
        "checkpoint_every": checkpoint_every,
        "select_best_by": select_best_by,
        "eval_f1": eval_f1,
        "max_val_examples": max_val_examples,
        "grad_accum": grad_accum,
        "group_by_length": group_by_length,
        "label_smoothing": label_smoothing,
        "skip_nonfinite": skip_nonfinite,
        "output_dir": str(output_dir) if output_dir else None,
        "data_dir": str(data_dir) if data_dir else None,
        "seed": seed,
        "mixed_precision": mixed_precision,
        "method_overrides": parse_overrides(set_) or None,
    }
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if resume is not None:
            # A resumed run keeps its recorded config; only the step budget may grow.
            extra = sorted(k for k, v in flags.items() if v is not None and k not in ("max_steps", "data_dir"))
            if recipe is not None or extra:
                raise UsageError(f"--resume takes its settings from the run folder; drop {', '.join(extra) or '--recipe'}")
            config = resume_config(resume, max_steps=max_steps)
            if data_dir is not None:
                config.data_dir = str(data_dir)
        else:
            config = load_config(recipe, flags)
    for warning in caught:
        err_console.print(f"[yellow]warning:[/] {warning.message}", highlight=False, soft_wrap=True)

    with training_bar(config.max_steps, enabled=progress) as on_step:
        result = train(
            config,
            resume=resume is not None,
            log=lambda line: err_console.print(line, highlight=False, markup=False, soft_wrap=True),
            on_step=on_step,
        )
    if not result.main_process:
        return  # one summary per run, from rank 0
    best = "n/a" if result.best_value is None else f"{result.best_value:.4f} at step {result.best_step}"
    console.print(f"trained {result.steps} steps; best {result.best_metric} {best}", highlight=False)
    if result.skipped_batches:
        console.print(f"skipped {result.skipped_batches} batches with a non-finite loss", highlight=False)
    console.print(f"run folder: {result.run_dir}", highlight=False, soft_wrap=True)
    console.print(f"next: hl evaluate {result.run_dir}", highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("train")(handle_errors(train_command))
