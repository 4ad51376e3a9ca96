"""TrainConfig's fields as command-line flags, for every command that takes training settings.

Each field ``x_y`` is a flag ``--x-y`` (booleans ``--x-y/--no-x-y``) whose help is the field's
``help`` metadata, so a new config field is on the command line, and in ``hl train --help``,
without editing a command module. ``hl train`` takes every field; ``hl adapt`` and ``hl compare``
take a few, with help of their own (what happens when the flag is not given differs there).
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import inspect
import json
import types
import typing
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

import typer
from rich.markup import escape

from hlcli.cli._common import DataDirOption, parse_list
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


def settings_option(
    name: str, *, help: str | None = None, annotation: Any = None, panel: str | None = SETTINGS_PANEL
) -> inspect.Parameter:
    """The Typer option of TrainConfig field ``name`` (default None: "not given, keep the recipe's").

    ``help`` replaces the field's own help (with its default), ``annotation`` the type read from
    the field; ``panel`` is the ``--help`` panel the option is listed in (None: the Options panel).
    """
    field = {f.name: f for f in dataclasses.fields(TrainConfig)}[name]
    base = _without_none(_hints()[name])
    if name == "data_dir":
        option, hint = copy.copy(DataDirOption), Optional[Path]  # shared with other commands, and its $HL_DATA_DIR
    elif name == "method_overrides":
        option, hint = typer.Option([], FLAG_NAMES[name], metavar="KEY=VALUE"), list[str]
    else:
        flag = "--" + name.replace("_", "-")
        if base is bool:
            flag = FLAG_NAMES.get(name, f"{flag}/--no-{flag[2:]}")
        # Anything but a scalar (tasks, a future list field) is typed as text: comma list or JSON.
        option = typer.Option(None, flag, show_default=False)
        hint = Optional[base if base in (bool, int, float, str) else str]
        option.help = escape(_help_text(field))
    option.rich_help_panel = panel
    if help is not None or name in CLI_HELP:
        option.help = escape(help if help is not None else CLI_HELP[name])
    return inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=hint if annotation is None else annotation
    )


def with_settings(
    command: Callable, options: list[inspect.Parameter], *, before: str | None = None
) -> Callable:
    """Give ``command`` (which takes them as ``**settings``) the generated ``options``, listed in
    ``--help`` before its parameter ``before`` (default: after all of them)."""
    # eval_str: Typer reads the Annotated options of a __signature__ as they stand (no string annotations).
    parameters = inspect.signature(command, eval_str=True).parameters.values()
    own = [p for p in parameters if p.kind is not inspect.Parameter.VAR_KEYWORD]
    at = len(own) if before is None else [p.name for p in own].index(before)
    command.__signature__ = inspect.Signature(own[:at] + options + own[at:])  # type: ignore[attr-defined]
    return command


def command_settings(
    helps: Mapping[str, str | None], *, types: Mapping[str, Any] | None = None
) -> list[inspect.Parameter]:
    """Options for the TrainConfig fields named in ``helps``, with that help (None: the field's
    own), in the Options panel (``types``: where a command reads a field as another type than
    ``hl train``)."""
    types = types or {}
    return [settings_option(name, help=text, annotation=types.get(name), panel=None) for name, text in helps.items()]


@functools.cache
def _hints() -> dict[str, Any]:
    """TrainConfig's field types (its annotations are strings: evaluated once)."""
    return typing.get_type_hints(TrainConfig)


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


def config_flags(values: dict[str, Any]) -> dict[str, Any]:
    """The generated options' values as ``load_config`` overrides (None = not given)."""
    flags: dict[str, Any] = {}
    hints = _hints()
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
