"""``hl train``: multi-task training from a recipe and/or flags; ``--resume`` continues a run.

The training flags are generated from :class:`hlcli.config.TrainConfig` (:mod:`hlcli.cli._settings`):
each field ``x_y`` is a flag ``--x-y`` whose help is the field's ``help`` metadata, so a new config
field is on the command line, and in ``hl train --help``, without editing this module.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from hlcli.cli._common import (
    ProgressOption,
    VerboseOption,
    console,
    err_console,
    handle_errors,
    log_line,
    training_bar,
)
from hlcli.cli._settings import config_flags, settings_option, with_settings
from hlcli.config import TrainConfig
from hlcli.errors import UsageError

RecipeOption = Annotated[
    Optional[Path], typer.Option("--recipe", help="TOML recipe (recipes/*.toml); flags override it.")
]
ResumeOption = Annotated[Optional[Path], typer.Option(
    "--resume", help="Continue this run folder from checkpoints/last (else checkpoints/best)."
)]  # fmt: skip
RESTART_HELP = (
    "With --resume: start the run over at step 0 in its folder, deleting its checkpoints "
    "(deliberately; --resume alone never replaces one)."
)
RestartOption = Annotated[bool, typer.Option("--restart", help=RESTART_HELP)]
TRAIN_HELP = """Train one model on several tasks at once.

Ctrl-C stops after the current step and saves a resumable checkpoint (exit code 130); so do SIGTERM \
(a scheduler, `timeout`: exit 143) and SIGHUP (exit 129).

One hl train at a time per run folder: a second one is refused while the first runs.

Example:

  hl train --tasks atis,snips,mtop --fraction 0.1 --model minilm --max-steps 2000

  hl train --recipe recipes/paper-table3.toml --output-dir runs/table3

  hl train --resume runs/table3
"""


def train_command(
    *,
    recipe: RecipeOption = None,
    resume: ResumeOption = None,
    restart: RestartOption = False,
    progress: ProgressOption = True,
    verbose: bool = VerboseOption,
    **settings: Any,
) -> None:
    """``hl train`` (its help: :data:`TRAIN_HELP`); ``settings``: one option per TrainConfig field."""
    import warnings

    from hlcli.adapt import setup_for
    from hlcli.config import load_config
    from hlcli.training import resume_config, train

    if restart and resume is None:
        raise UsageError(
            "--restart needs --resume RUN", expected="hl train --resume RUN --restart (start RUN over at step 0)"
        )
    flags = config_flags(settings)
    data_dir = flags["data_dir"]
    max_steps = flags["max_steps"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if resume is not None:
            # A resumed run keeps its recorded config; only the step budget may grow.
            extra = sorted(k for k, v in flags.items() if v is not None and k not in ("max_steps", "data_dir"))
            if recipe is not None or extra:
                drop = ", ".join(extra) or "--recipe"
                raise UsageError(f"--resume takes its settings from the run folder; drop {drop}")
            config = resume_config(resume, max_steps=max_steps)
            if data_dir is not None:
                config.data_dir = data_dir
        else:
            config = load_config(recipe, flags)
    for warning in caught:
        err_console.print(f"[yellow]warning:[/] {warning.message}", highlight=False, soft_wrap=True)

    with training_bar(config.max_steps, enabled=progress) as on_step:
        result = train(
            config,
            resume=resume is not None,
            restart=restart,
            log=log_line,
            on_step=on_step, setup=setup_for(config),  # a run made by hl adapt resumes its derived model
        )
    if not result.main_process:
        return  # one summary per run, from rank 0
    console.print(result.summary(), highlight=False, soft_wrap=True)
    if result.skipped_batches:
        console.print(f"skipped {result.skipped_batches} batches with a non-finite loss", highlight=False)
    console.print(f"run folder: {result.run_dir}", highlight=False, soft_wrap=True)
    console.print(f"next: hl evaluate {result.run_dir}", highlight=False, soft_wrap=True)


# The run options above, then one option per TrainConfig field, in the "Training settings" panel.
with_settings(train_command, [settings_option(field.name) for field in dataclasses.fields(TrainConfig)])


def register(app: typer.Typer) -> None:
    app.command("train", help=TRAIN_HELP)(handle_errors(train_command))
