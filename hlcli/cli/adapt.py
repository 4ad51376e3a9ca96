"""``hl adapt RUN --tasks restaurant``: add tasks to a trained run in a new run folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from hlcli.cli._common import (
    ProgressOption,
    VerboseOption,
    console,
    handle_errors,
    log_line,
    parse_list,
    training_bar,
)
from hlcli.cli._settings import command_settings, with_settings

RunArgument = Annotated[Path, typer.Argument(help="Trained run folder (its best checkpoint) or checkpoint folder.")]
TasksOption = Annotated[str, typer.Option("--tasks", help=(
    "Comma-separated tasks to add: corpora (restaurant) or your own data (pets=FOLDER, NAME=hf:ORG/DATASET), "
    "as hl train --tasks."
))]  # fmt: skip
InitOption = Annotated[str, typer.Option(
    "--init", help="New task embeddings start at the mean of the old ones (mean) or random (random)."
)]  # fmt: skip
UnfreezeOption = Annotated[str, typer.Option("--unfreeze", help=(
    "none: only the new embeddings (and heads) train, old tasks are untouched; "
    "hypernetwork: also tune the shared generator."
))]  # fmt: skip
GeneratorLrOption = Annotated[Optional[float], typer.Option("--generator-lr", help=(
    "Learning rate of the generator with --unfreeze hypernetwork (default: the base run's lr / 10)."
))]  # fmt: skip
ReplayOption = Annotated[bool, typer.Option(
    "--replay/--no-replay", help="Keep sampling the old tasks too, so a tuned generator does not forget them."
)]  # fmt: skip
OutputDirOption = Annotated[
    Optional[Path], typer.Option("--output-dir", help="New run folder (default runs/<base run>+<tasks>).")
]
# The training settings hl adapt takes: TrainConfig's flags (:mod:`hlcli.cli._settings`), whose
# default here is the base run's; None: the field's option as hl train has it (--data-dir).
SETTINGS_HELP: dict[str, str | None] = {
    "max_steps": "Optimizer steps (default: the base run's).",
    "lr": "Learning rate of the new task embeddings (default 1e-2, measured best in docs/add-task.md).",
    "head_lr": "Learning rate of the new heads on encoder backbones (default: the base run's).",
    "warmup_steps": "Warm-up steps (default: the base run's).",
    "eval_every": "Validate every N steps (default: the base run's).",
    "checkpoint_every": "Save checkpoints/last every N steps.",
    "fraction": "Fraction of the new tasks' training sets (default: the base run's).",
    "batch_size": "Sentences per batch (default: the base run's).",
    "seed": "Seed (default: the base run's).",
    "data_dir": None,
}
def adapt_command(
    run: RunArgument,
    tasks: TasksOption,
    init: InitOption = "mean",
    unfreeze: UnfreezeOption = "none",
    generator_lr: GeneratorLrOption = None,
    replay: ReplayOption = False,
    output_dir: OutputDirOption = None,
    *,
    progress: ProgressOption = True,
    verbose: bool = VerboseOption,
    **settings: Any,
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

    # settings: the options of SETTINGS_HELP, generated from TrainConfig (before --progress).
    settings["data_dir"] = str(settings["data_dir"]) if settings["data_dir"] else None
    with training_bar(settings["max_steps"], enabled=progress) as on_step:
        result = adapt(
            run, tasks=parse_list(tasks), init=init, unfreeze=unfreeze, generator_lr=generator_lr, replay=replay,
            output_dir=output_dir, settings=settings, on_step=on_step,
            log=log_line,
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


# hl adapt reads --fraction as one number (hl train also takes per-task tables).
with_settings(adapt_command, command_settings(SETTINGS_HELP, types={"fraction": Optional[float]}), before="progress")


def register(app: typer.Typer) -> None:
    app.command("adapt")(handle_errors(adapt_command))
