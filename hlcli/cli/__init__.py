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
    add_completion=True,  # hl --install-completion / --show-completion (bash, zsh, fish, PowerShell)
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


def _print_version(value: bool) -> None:
    if value:
        import hlcli

        typer.echo(f"hl {hlcli.__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print hl's version and exit."
    ),
) -> None:
    """The options before any command (the app's help text is ``help=`` above)."""


# The commands, in the order ``hl --help`` lists them. A new command is one module with a
# ``register(app)`` function, added here.
from hlcli.cli import adapt, compare, convert, data, evaluate, export, tag, train  # noqa: E402

for _module in (data, convert, train, evaluate, tag, compare, adapt, export):
    _module.register(app)


def main() -> None:
    app()


__all__ = ["app", "main"]
