"""``hl adapt RUN --tasks restaurant``: add tasks to a trained run in a new run folder."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from hlcli.cli._common import DataDirOption, VerboseOption, console, err_console, handle_errors, parse_list, training_bar


def adapt_command(
    run: Path = typer.Argument(..., help="Trained run folder (its best checkpoint) or checkpoint folder."),
    tasks: str = typer.Option(..., "--tasks", help="Comma-separated tasks to add: corpora (restaurant) or your own data (pets=FOLDER, NAME=hf:ORG/DATASET), as hl train --tasks."),
    init: str = typer.Option("mean", "--init", help="New task embeddings start at the mean of the old ones (mean) or random (random)."),
    unfreeze: str = typer.Option("none", "--unfreeze", help="none: only the new embeddings (and heads) train, old tasks are untouched; hypernetwork: also tune the shared generator."),
    generator_lr: Optional[float] = typer.Option(None, "--generator-lr", help="Learning rate of the generator with --unfreeze hypernetwork (default: the base run's lr / 10)."),
    replay: bool = typer.Option(False, "--replay/--no-replay", help="Keep sampling the old tasks too, so a tuned generator does not forget them."),
    output_dir: Optional[Path] = typer.Option(None, "--output-dir", help="New run folder (default runs/<base run>+<tasks>)."),
    max_steps: Optional[int] = typer.Option(None, "--max-steps", help="Optimizer steps (default: the base run's)."),
    lr: Optional[float] = typer.Option(None, "--lr", help="Learning rate of the new task embeddings (default 1e-2, measured best in docs/add-task.md)."),
    head_lr: Optional[float] = typer.Option(None, "--head-lr", help="Learning rate of the new heads on encoder backbones (default: the base run's)."),
    warmup_steps: Optional[int] = typer.Option(None, "--warmup-steps", help="Warm-up steps (default: the base run's)."),
    eval_every: Optional[int] = typer.Option(None, "--eval-every", help="Validate every N steps (default: the base run's)."),
    checkpoint_every: Optional[int] = typer.Option(None, "--checkpoint-every", help="Save checkpoints/last every N steps."),
    fraction: Optional[float] = typer.Option(None, "--fraction", help="Fraction of the new tasks' training sets (default: the base run's)."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Sentences per batch (default: the base run's)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Seed (default: the base run's)."),
    data_dir: Optional[Path] = DataDirOption,
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Progress bar on stderr."),
    verbose: bool = VerboseOption,
) -> None:
    """Add tasks to a trained HyperLoader / HyperFormer++ run without retraining it.

    The new run gets fresh task embeddings (and heads on encoder backbones) for the new tasks;
    by default everything already trained is frozen, so the old tasks tag exactly as before.
    Other settings come from the base run. Resume an interrupted one with hl train --resume.

    Example:

      hl adapt runs/six-tasks --tasks restaurant --max-steps 300

      hl adapt runs/six-tasks --tasks restaurant --unfreeze hypernetwork --generator-lr 1e-5 --replay

      hl adapt runs/six-tasks --tasks pets=data/pets --max-steps 300
    """
    from hlcli.adapt import adapt

    settings = {
        "max_steps": max_steps, "lr": lr, "head_lr": head_lr, "warmup_steps": warmup_steps, "eval_every": eval_every,
        "checkpoint_every": checkpoint_every, "fraction": fraction, "batch_size": batch_size, "seed": seed,
        "data_dir": str(data_dir) if data_dir else None,
    }  # fmt: skip
    with training_bar(max_steps, enabled=progress) as on_step:
        result = adapt(
            run, tasks=parse_list(tasks), init=init, unfreeze=unfreeze, generator_lr=generator_lr, replay=replay,
            output_dir=output_dir, settings=settings, on_step=on_step,
            log=lambda line: err_console.print(line, highlight=False, markup=False, soft_wrap=True),
        )  # fmt: skip
    if not result.main_process:
        return
    from hlcli.config import read_config
    from hlcli.training import scored_checkpoint

    added = ",".join(read_config(result.run_dir / "config.json").adapt["added"])  # names, not NAME=FOLDER specs
    best = "n/a" if result.best_value is None else f"{result.best_value:.4f} at step {result.best_step}"
    console.print(f"added {added} in {result.steps} steps; best {result.best_metric} {best}; "
                  f"hl evaluate scores {scored_checkpoint(result.run_dir)}", highlight=False, soft_wrap=True)
    console.print(f"run folder: {result.run_dir}", highlight=False, soft_wrap=True)
    console.print(f"next: hl evaluate {result.run_dir}", highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("adapt")(handle_errors(adapt_command))
