"""``hl train``: multi-task training from a recipe and/or flags; ``--resume`` continues a run.

The training flags are generated from :class:`hlcli.config.TrainConfig`: each field ``x_y`` is a
flag ``--x-y`` (booleans ``--x-y/--no-x-y``) whose help is the field's ``help`` metadata, so a new
config field is on the command line, and in ``hl train --help``, without editing this module.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import json
import types
import typing
from pathlib import Path
from typing import Any, Optional

import typer
from rich.markup import escape

from hlcli.cli._common import DataDirOption, VerboseOption, console, err_console, handle_errors, parse_list, training_bar
from hlcli.config import TrainConfig, parse_fraction
from hlcli.errors import UsageError

SETTINGS_PANEL = "Training settings (each is also a recipe key)"
# Where a field's flag is not simply --field-name, or the command line needs another shape.
FLAG_NAMES = {"skip_nonfinite": "--skip-nonfinite/--stop-on-nonfinite", "method_overrides": "--set"}
CLI_HELP = {
    "tasks": "Comma-separated tasks, e.g. atis,snips,mtop.",
    "method_overrides": "Method hyper-parameter key=value (repeatable), e.g. --set reduction_factor=4.",
}
CLI_NOTES = {"max_steps": "With --resume: the new total."}


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


def _settings_option(field: dataclasses.Field, hint: Any) -> inspect.Parameter:
    """The Typer option of one TrainConfig field (default None: "not given, keep the recipe's")."""
    base = _without_none(hint)
    if field.name == "data_dir":
        option, annotation = copy.copy(DataDirOption), Optional[Path]  # shared with other commands, and its $HL_DATA_DIR
    elif field.name == "method_overrides":
        option, annotation = typer.Option([], FLAG_NAMES[field.name], metavar="KEY=VALUE"), list[str]
    else:
        flag = "--" + field.name.replace("_", "-")
        if base is bool:
            flag = FLAG_NAMES.get(field.name, f"{flag}/--no-{flag[2:]}")
        # Anything but a scalar (tasks, a future list field) is typed as text: comma list or JSON.
        option = typer.Option(None, flag, show_default=False)
        annotation = Optional[base if base in (bool, int, float, str) else str]
        option.help = escape(_help_text(field))
    option.rich_help_panel = SETTINGS_PANEL
    if field.name in CLI_HELP:
        option.help = escape(CLI_HELP[field.name])
    return inspect.Parameter(field.name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=annotation)


def _help_text(field: dataclasses.Field) -> str:
    text = " ".join(part for part in (field.metadata.get("help", ""), CLI_NOTES.get(field.name, "")) if part)
    default = field.default
    if isinstance(default, bool):
        text += f" (default {'on' if default else 'off'})"
    elif default not in (dataclasses.MISSING, None):
        text += f" (default {default})"
    return text


def _without_none(hint: Any) -> Any:
    """``int | None`` → ``int``; anything else unchanged."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return args[0] if len(args) == 1 else hint
    return hint


def _config_flags(values: dict[str, Any]) -> dict[str, Any]:
    """The generated options' values as ``load_config`` overrides (None = not given)."""
    flags: dict[str, Any] = {}
    hints = typing.get_type_hints(TrainConfig)
    for field in dataclasses.fields(TrainConfig):
        value = values[field.name]
        if field.name == "tasks":
            value = parse_list(value) or None
        elif field.name == "method_overrides":
            value = parse_overrides(value) or None
        elif field.name == "fraction" and value is not None:
            value = parse_fraction(value)  # 0.1, or per task: 0.1,mine=1.0
        elif isinstance(value, Path):
            value = str(value)
        elif isinstance(value, str) and _without_none(hints[field.name]) is not str:
            value = _json_value(f"--{field.name.replace('_', '-')}", value)
        flags[field.name] = value
    return flags


def _json_value(flag: str, text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise UsageError(f"{flag} {text!r}", expected="a JSON value, e.g. [1, 2]") from None


def train_command(
    *,
    recipe: Optional[Path],
    resume: Optional[Path],
    restart: bool,
    progress: bool,
    verbose: bool,
    **settings: Any,
) -> None:
    """Train one model on several tasks at once.

    Ctrl-C stops after the current step and saves a resumable checkpoint (exit code 130); so do SIGTERM (a scheduler, `timeout`: exit 143) and SIGHUP (exit 129).

    One hl train at a time per run folder: a second one is refused while the first runs.

    Example:

      hl train --tasks atis,snips,mtop --fraction 0.1 --model minilm --max-steps 2000

      hl train --recipe recipes/paper-table3.toml --output-dir runs/table3

      hl train --resume runs/table3
    """
    import warnings

    from hlcli.config import load_config
    from hlcli.training import resume_config, train

    if restart and resume is None:
        raise UsageError("--restart needs --resume RUN", expected="hl train --resume RUN --restart (start RUN over at step 0)")
    flags = _config_flags(settings)
    data_dir = flags["data_dir"]
    max_steps = flags["max_steps"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if resume is not None:
            # A resumed run keeps its recorded config; only the step budget may grow.
            extra = sorted(k for k, v in flags.items() if v is not None and k not in ("max_steps", "data_dir"))
            if recipe is not None or extra:
                raise UsageError(f"--resume takes its settings from the run folder; drop {', '.join(extra) or '--recipe'}")
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
            log=lambda line: err_console.print(line, highlight=False, markup=False, soft_wrap=True),
            on_step=on_step,
        )
    if not result.main_process:
        return  # one summary per run, from rank 0
    console.print(result.summary(), highlight=False, soft_wrap=True)
    if result.skipped_batches:
        console.print(f"skipped {result.skipped_batches} batches with a non-finite loss", highlight=False)
    console.print(f"run folder: {result.run_dir}", highlight=False, soft_wrap=True)
    console.print(f"next: hl evaluate {result.run_dir}", highlight=False, soft_wrap=True)


def _signature() -> inspect.Signature:
    """train_command's signature as Typer reads it: the run options, then one per TrainConfig field."""
    hints = typing.get_type_hints(TrainConfig)
    run_options = {
        "recipe": (Optional[Path], typer.Option(None, "--recipe", help="TOML recipe (recipes/*.toml); flags override it.")),
        "resume": (Optional[Path], typer.Option(None, "--resume", help="Continue this run folder from checkpoints/last (else checkpoints/best).")),
        "restart": (bool, typer.Option(False, "--restart", help="With --resume: start the run over at step 0 in its folder, deleting its checkpoints (deliberately; --resume alone never replaces one).")),
        "progress": (bool, typer.Option(True, "--progress/--no-progress", help="Progress bar on stderr.")),
        "verbose": (bool, VerboseOption),
    }
    parameters = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=annotation)
        for name, (annotation, option) in run_options.items()
    ]
    parameters += [_settings_option(field, hints[field.name]) for field in dataclasses.fields(TrainConfig)]
    return inspect.Signature(parameters)


train_command.__signature__ = _signature()  # type: ignore[attr-defined]


def register(app: typer.Typer) -> None:
    app.command("train")(handle_errors(train_command))
