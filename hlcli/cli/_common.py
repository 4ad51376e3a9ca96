"""Shared CLI plumbing: error rendering, exit codes, the consoles, common options."""

from __future__ import annotations

import contextlib
import enum
import os
import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from hlcli.config import TrainConfig
from hlcli.errors import EXIT_DATA, EXIT_INTERRUPTED, HLError

# Width of a console whose stream is not a terminal: wider than any table hl prints.
PIPE_WIDTH = 10_000


class OutputConsole(Console):
    """A rich console that never cuts output written to a pipe or a file.

    rich sizes a console to the terminal (or 80 columns) even when its own stream is piped, so
    ``hl compare --paper | cat`` dropped whole columns. Off a terminal this console is
    :data:`PIPE_WIDTH` wide: tables do not expand, so each is printed at its natural width, and
    text lines are not wrapped. The check is made at every print, because the stream may change
    (``CliRunner`` swaps ``sys.stdout``). An explicit ``width=`` is kept as given; an exported
    ``COLUMNS`` sizes a terminal only (rich fixes it as the width at construction, which cut
    ``COLUMNS=80 hl compare --params | cat`` to 80 columns).
    """

    def __init__(self, *args, width: int | None = None, **kwargs) -> None:
        super().__init__(*args, width=width, **kwargs)
        if width is None:
            self._width = None  # rich's size still reads COLUMNS, at every print, for a terminal

    @property
    def size(self):  # type: ignore[override]
        size = super().size
        if self._width is None and not self.is_terminal:
            return size._replace(width=PIPE_WIDTH)
        return size

    @size.setter
    def size(self, new_size) -> None:
        self._width, self._height = new_size


# Results go to stdout; progress, warnings and errors to stderr, so `hl tag > out` stays clean.
console = OutputConsole()
err_console = OutputConsole(stderr=True)


def log_line(line: str) -> None:
    """The ``log=`` of the library's long calls (train, adapt, compare): each line on stderr as written."""
    err_console.print(line, highlight=False, markup=False, soft_wrap=True)


# --format of commands that print a table (hl evaluate, hl data stats); json is each command's own.
TABLE_FORMATS = ("table", "markdown", "json")


def print_table(
    title: str, header: list[str], rows: list[list[str] | None], *, fmt: str = "table", left: int = 1
) -> None:
    """Print rows as a rich table (``fmt="table"``) or a Markdown table (``"markdown"``).

    ``rows`` are plain text (no rich markup); ``None`` draws a section line. The first ``left``
    columns are left-aligned, the others right-aligned (numbers).
    """
    if fmt == "markdown":
        line = lambda cells: "| " + " | ".join(_markdown_cell(c) for c in cells) + " |"  # noqa: E731
        align = [":---" if i < left else "---:" for i in range(len(header))]
        text = [f"**{title}**", "", line(header), "| " + " | ".join(align) + " |"]
        text += [line(r) for r in rows if r is not None]
        console.print("\n".join(text) + "\n", highlight=False, markup=False, soft_wrap=True)
        return
    from rich.table import Table

    table = Table(title=escape(title), title_justify="left")
    for index, name in enumerate(header):
        table.add_column(escape(name), justify="left" if index < left else "right")
    for row in rows:
        if row is None:
            table.add_section()
        else:
            table.add_row(*(escape(cell) for cell in row))
    console.print(table)


def _markdown_cell(text: str) -> str:
    # '|' would end a cell, '*' start emphasis (8,798* marks a held-out val split).
    return text.replace("|", "\\|").replace("*", "\\*")


VERBOSE_ENV = "HL_VERBOSE"

DataDirOption = typer.Option(
    None,
    "--data-dir",
    envvar="HL_DATA_DIR",
    help=(
        "Folder holding the corpora (atis/, snips/, mit_movie/, ...). "
        "Default: $HL_DATA_DIR, else the user cache folder."
    ),
    show_default=False,
)
# hl evaluate and hl tag predict alike, so one default: what hl train validates with.
BatchSizeOption = typer.Option(
    TrainConfig.eval_batch_size, "--batch-size", help="Sentences per prediction batch (lower it if memory runs out)."
)
VerboseOption = typer.Option(
    False, "--verbose", "-v", envvar=VERBOSE_ENV, help="Show full tracebacks on errors (or set HL_VERBOSE=1)."
)
# hl train and hl adapt draw a training bar.
ProgressOption = Annotated[bool, typer.Option("--progress/--no-progress", help="Progress bar on stderr.")]


def handle_errors(func):
    """Decorate a command: HLError → one red line on stderr + its exit code; Ctrl-C → 130;
    a closed stdout pipe (``| head``) → exit 1 without a message.

    Applied to every command function (not around the app) so that ``CliRunner`` in the tests
    sees exactly what a user sees.
    """
    import functools

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        verbose = bool(kwargs.get("verbose"))
        try:
            return func(*args, **kwargs)
        except HLError as error:
            if verbose:
                err_console.print_exception()
            err_console.print(f"[bold red]error:[/] {escape(str(error))}", highlight=False, soft_wrap=True)
            raise typer.Exit(error.exit_code) from None
        except KeyboardInterrupt as error:
            err_console.print("interrupted", style="yellow")
            # hl train stopped by SIGTERM/SIGHUP exits 128 + the signal, as the shell reports it (143, 129).
            raise typer.Exit(getattr(error, "exit_code", EXIT_INTERRUPTED)) from None
        except BrokenPipeError:
            # `hl tag ... | head`: the reader left; stop quietly, as Unix tools do.
            _silence_stdout()
            raise typer.Exit(EXIT_DATA) from None
        except (typer.Exit, typer.Abort):
            raise
        except OSError as error:
            # Disk full, permission denied, a folder where a file should be: the user's to fix, not a bug.
            if verbose:
                err_console.print_exception()
            where = f"{error.filename}: " if error.filename else ""
            what = escape(error.strerror or str(error))
            err_console.print(
                f"[bold red]error:[/] {escape(where)}{what}; check the path, its permissions and free space",
                highlight=False,
                soft_wrap=True,
            )
            raise typer.Exit(EXIT_DATA) from None
        except Exception as error:
            if verbose:
                raise
            from hlcli.io import WRITE_HINT, os_error

            found = os_error(error)  # safetensors' own error type around an OS error (disk full)
            if found is not None:
                what = escape(found.strerror or str(found))
                err_console.print(f"[bold red]error:[/] {what}; {WRITE_HINT}", highlight=False, soft_wrap=True)
                raise typer.Exit(EXIT_DATA) from None
            err_console.print(
                f"[bold red]internal error:[/] {escape(type(error).__name__)}: {escape(str(error))} "
                "(a bug in hlcli; run again with --verbose for the traceback)",
                highlight=False,
                soft_wrap=True,
            )
            raise typer.Exit(EXIT_DATA) from None

    return wrapper


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that Python's own flush at exit does not fail on the closed pipe."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # not a real file (CliRunner)
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


RUN_ENV = "HL_RUN"


def which_run(run: Path | None, *, tasks: list[str], usage: str) -> Path:
    """RUN, else ``$HL_RUN``, else the newest finished run under ./runs with ``tasks`` (named on stderr)."""
    from hlcli.errors import UsageError
    from hlcli.runs import latest_run

    if run is not None:
        return run
    if os.environ.get(RUN_ENV):
        return Path(os.environ[RUN_ENV])
    found = latest_run(tasks)
    with_tasks = f" with task {tasks[0]!r}" if len(tasks) == 1 else f" with tasks {','.join(tasks)}" if tasks else ""
    if found is None:
        train_tasks = ",".join(tasks) or "atis,restaurant"
        raise UsageError(
            f"no run given, {RUN_ENV} unset and no finished run{with_tasks} under ./runs",
            hint=f"name one (hl {usage}) or train one "
            f"(hl train --recipe recipes/quickstart.toml --tasks {train_tasks})",
        )
    err_console.print(
        f"using {found} (the newest finished run{with_tasks} under ./runs)", highlight=False, soft_wrap=True
    )
    return found


def command_line(ctx: typer.Context) -> str:
    """The running ``hl`` command, quoted for a shell: the options given on the command line (not
    the defaults), in the order the command declares them. An output file says it was made with
    this, so a table in a paper's appendix can be made again."""
    words = ["hl", ctx.info_name or ""]
    for param in ctx.command.params:
        source = ctx.get_parameter_source(param.name) if param.name else None
        if source is None or source.name != "COMMANDLINE":
            continue
        value = ctx.params[param.name]
        values = list(value) if isinstance(value, (list, tuple)) else [value]
        texts = [str(v.value if isinstance(v, enum.Enum) else v) for v in values]
        if param.param_type_name != "option":
            words += texts
        elif getattr(param, "is_flag", False):
            words.append(param.opts[0] if value else (param.secondary_opts or param.opts)[0])
        else:
            words += [word for text in texts for word in (param.opts[0], text)]
    return shlex.join(words)


def parse_list(value: str | None) -> list[str]:
    """``"atis, snips"`` → ``["atis", "snips"]``."""
    if not value:
        return []
    return [part.strip() for part in value.split(",") if part.strip()]


@contextlib.contextmanager
def progress_bar(description: str, total: int | None, *, min_total: int = 0, enabled: bool = True):
    """A rich progress bar on stderr; yields ``advance(n=1)``.

    Off (a no-op) when stderr is not a terminal, so logs and pipes stay clean, and for inputs
    smaller than ``min_total`` where a bar would only flicker.
    """
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    enabled = enabled and err_console.is_terminal and (total is None or total >= min_total)
    if not enabled:
        yield lambda n=1: None
        return
    columns = [
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn()
    ]
    with Progress(*columns, console=err_console, transient=True) as progress:
        task = progress.add_task(description, total=total)
        yield lambda n=1: progress.advance(task, n)


@contextlib.contextmanager
def training_bar(total: int | None, *, enabled: bool = True):
    """The ``hl train`` / ``hl adapt`` bar: yields an ``on_step`` callback for :func:`hlcli.training.train`.

    Drawn by the main process only (torchrun sets RANK); a resumed run's first step jumps the bar
    to where the run is.
    """
    with progress_bar("training", total, enabled=enabled and os.environ.get("RANK", "0") == "0") as advance:
        shown = [0]

        def on_step(step) -> None:
            advance(step.step - shown[0])
            shown[0] = step.step

        yield on_step
