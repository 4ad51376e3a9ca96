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


# The commands, in the order ``hl --help`` lists them. A new command is one module with a
# ``register(app)`` function, added here.
from hlcli.cli import adapt, compare, convert, data, evaluate, export, tag, train  # noqa: E402

for _module in (data, convert, train, evaluate, tag, compare, adapt, export):
    _module.register(app)


def main() -> None:
    app()


__all__ = ["app", "main"]
