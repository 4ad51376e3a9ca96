"""``hl export RUN --task atis -o DIR``: one task's generated weights as a plain checkpoint."""

from __future__ import annotations

from pathlib import Path

import typer

from hlcli.cli._common import VerboseOption, console, handle_errors


def export_command(
    run: Path = typer.Argument(..., help="Trained run folder (its best checkpoint) or checkpoint folder."),
    task: str = typer.Option(..., "--task", help="The task whose weights are exported, e.g. atis."),
    output: Path = typer.Option(..., "--output", "-o", help="New (or empty) folder for the exported checkpoint."),
    merge_lora: bool = typer.Option(True, "--merge-lora/--no-merge-lora", help="Merge the generated LoRA into q/v (stores full q/v matrices) or keep the small A/B factors."),
    verbose: bool = VerboseOption,
) -> None:
    """Materialise one task's generated adapters, layer norms and LoRA as plain tensors.

    The folder loads without the hypernetwork and tags like the full run.

    Example:

      hl export runs/six-tasks --task atis -o exported/atis

      hl tag exported/atis --task atis < questions.txt
    """
    from hlcli.export import export_task

    result = export_task(run, task=task, output=output, merge_lora=merge_lora)
    how = "LoRA merged into q/v" if result.merged_lora else "LoRA kept as A/B factors"
    console.print(f"exported {result.task}: {result.tensors} tensors, {result.bytes / 2**20:.2f} MiB ({how})", highlight=False)
    console.print(f"next: hl tag {result.folder} --task {result.task}", highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("export")(handle_errors(export_command))
