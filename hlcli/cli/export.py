"""``hl export RUN --task atis -o DIR``: one task's generated weights as a plain checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from hlcli.cli._common import VerboseOption, console, handle_errors


RunArgument = Annotated[Path, typer.Argument(help="Trained run folder (its best checkpoint) or checkpoint folder.")]
TaskOption = Annotated[Optional[str], typer.Option(
    "--task", help="The task whose weights are exported, e.g. atis (needed with -o)."
)]  # fmt: skip
OutputOption = Annotated[
    Optional[Path], typer.Option("--output", "-o", help="New (or empty) folder for the exported checkpoint.")
]
HubDirOption = Annotated[Optional[Path], typer.Option("--hub-dir", help=(
    "New (or empty) folder laid out for the Hugging Face hub: weights, config.json, model card with scores "
    "(with --task: that task's export)."
))]  # fmt: skip
MergeLoraOption = Annotated[bool, typer.Option("--merge-lora/--no-merge-lora", help=(
    "Merge the generated LoRA into q/v (stores full q/v matrices) or keep the small A/B factors."
))]  # fmt: skip


def export_command(
    run: RunArgument,
    task: TaskOption = None,
    output: OutputOption = None,
    hub_dir: HubDirOption = None,
    merge_lora: MergeLoraOption = True,
    verbose: bool = VerboseOption,
) -> None:
    """Materialise one task's generated adapters, layer norms and LoRA as plain tensors, or lay a
    run out for the Hugging Face hub.

    The -o folder loads without the hypernetwork and tags like the full run. The --hub-dir folder
    is what `hf upload ORG/NAME DIR` pushes; nothing is uploaded here.

    Example:

      hl export runs/six-tasks --task atis -o exported/atis

      hl tag exported/atis --task atis < questions.txt

      hl export runs/six-tasks --hub-dir hub/six-tasks
    """
    from hlcli.errors import UsageError

    if (output is None) == (hub_dir is None):
        raise UsageError("give one of -o DIR (with --task) and --hub-dir DIR")
    if hub_dir is not None:
        from hlcli.export import export_hub

        hub = export_hub(run, output=hub_dir, task=task, merge_lora=merge_lora)
        scored = "no scores yet (run hl evaluate first)"
        if hub.scored_splits:
            scored = f"scores of {', '.join(hub.scored_splits)}"
        console.print(f"hub folder {hub.folder}: {', '.join(hub.files)}; {scored}", highlight=False, soft_wrap=True)
        console.print(f"next: hf upload ORG/NAME {hub.folder}", highlight=False, soft_wrap=True)
        return
    if task is None:
        raise UsageError("-o exports one task's weights", expected="--task TASK")
    from hlcli.export import export_task

    result = export_task(run, task=task, output=output, merge_lora=merge_lora)
    how = "LoRA merged into q/v" if result.merged_lora else "LoRA kept as A/B factors"
    size = f"{result.bytes / 2**20:.2f} MiB"
    console.print(f"exported {result.task}: {result.tensors} tensors, {size} ({how})", highlight=False)
    console.print(f"next: hl tag {result.folder} --task {result.task}", highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("export")(handle_errors(export_command))
