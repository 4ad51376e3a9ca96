"""The ``hl`` command-line app: one module per command, each a thin Typer wrapper."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="hl",
    help=(
        "Multi-task, parameter-efficient sequence labelling with hypernetworks.\n\n"
        "Example:\n\n"
        "  hl train --tasks atis,snips --model minilm --fraction 0.1"
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


def _register() -> None:
    # Each command module registers itself on ``app``; a missing module (work in progress)
    # must not break the others.
    import importlib

    for name in ("data", "convert", "train", "evaluate", "tag", "compare", "adapt", "export"):
        try:
            module = importlib.import_module(f"hlcli.cli.{name}")
        except ModuleNotFoundError as error:
            if error.name != f"hlcli.cli.{name}":
                raise
            continue
        module.register(app)


_register()


def main() -> None:
    app()


__all__ = ["app", "main"]
