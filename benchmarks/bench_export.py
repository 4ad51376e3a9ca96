"""Benchmark: size on disk and start-up time of a full run against ``hl export`` of one task.

1. Unless ``--run`` is given, train a run briefly (``hl train``, ``--steps`` steps: size and
   start-up depend on the shapes, not on how well the model is trained) into ``--work-dir``.
2. Export ``--task`` twice: LoRA merged into q/v (the default) and ``--no-merge-lora``.
3. Report, for the full run and both exports: bytes of ``model.safetensors`` (what the folder
   adds to the backbone, which none of them stores), and the time to the first tagged line —
   a fresh ``python -m hlcli tag`` process fed one sentence, from process start to its first
   output line (median of ``--repeats``, the three processes interleaved so that load on the
   machine hits them alike). Start-up includes importing torch/transformers and loading the
   backbone, which all three pay; so the script also times, in this process (imports done),
   ``load_model`` + tagging the sentence (``load+tag in process``).

Not a test; run by hand, e.g.:

    nice -n 10 python -m benchmarks.bench_export --model minilm --data-dir ../shared/data
    nice -n 10 python -m benchmarks.bench_export --model <tiny T5 folder> --data-dir ../shared/data
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks._common import write_json

REPO = Path(__file__).resolve().parents[1]
SENTENCE = "show me flights from boston to denver on monday morning\n"


def hl(*args: str, env: dict) -> None:
    result = subprocess.run([sys.executable, "-m", "hlcli", *args], env=env, capture_output=True, text=True)
    if result.returncode:
        raise SystemExit(f"hl {' '.join(args)} failed:\n{result.stderr}")


def first_line_seconds(folder: Path, task: str, env: dict) -> float:
    """Wall time from starting ``hl tag`` to reading its first output line."""
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "hlcli", "tag", str(folder), "--task", task],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True)
    process.stdin.write(SENTENCE)
    process.stdin.close()
    line = process.stdout.readline()
    elapsed = time.perf_counter() - start
    process.wait()
    if process.returncode or not line.strip():
        raise SystemExit(f"hl tag {folder} gave no output (exit {process.returncode})")
    return elapsed


def in_process_seconds(folder: Path, task: str) -> float:
    """``load_model`` + tagging one sentence in this process, imports already paid."""
    from hlcli.tagging import load_tagger, tag_lines

    start = time.perf_counter()
    model = load_tagger(folder)
    next(tag_lines(model, task, [SENTENCE]))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", help="An existing run or checkpoint folder (default: train one).")
    parser.add_argument("--model", default="minilm", help="Backbone for the run trained here.")
    parser.add_argument("--tasks", default="atis,snips,movie,movietrivia,restaurant,mtop,mtod")
    parser.add_argument("--task", default="atis", help="The task exported and tagged.")
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--work-dir", default=None, help="Where the run and exports go (default: a temporary folder).")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="OMP/torch threads of the hl processes.")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": str(args.threads), "HF_HUB_OFFLINE": "1"}
    work = Path(args.work_dir or tempfile.mkdtemp(prefix="bench-export-"))
    run = Path(args.run) if args.run else work / "run"
    if not args.run and not run.exists():
        hl("train", "--tasks", args.tasks, "--model", args.model, "--data-dir", args.data_dir, "--fraction", "0.01",
           "--max-steps", str(args.steps), "--eval-every", str(args.steps), "--warmup-steps", "0",
           "--max-val-examples", "2", "--no-progress", "--output-dir", str(run), env=env)
    folders = {"full run": run}
    for name, flag in (("export, LoRA merged", "--merge-lora"), ("export, LoRA factors", "--no-merge-lora")):
        out = work / f"export{flag.replace('--', '-')}"
        if not out.exists():
            hl("export", str(run), "--task", args.task, "-o", str(out), flag, env=env)
        folders[name] = out

    from hlcli import runs

    weights = {name: runs.resolve_checkpoint(folder)[0] / runs.MODEL_WEIGHTS for name, folder in folders.items()}
    import torch

    torch.set_num_threads(args.threads)
    in_process_seconds(run, args.task)  # pay the imports once, outside the in-process figures
    times: dict[str, list[float]] = {name: [] for name in folders}
    loads: dict[str, list[float]] = {name: [] for name in folders}
    for _ in range(args.repeats):
        for name, folder in folders.items():
            times[name].append(first_line_seconds(folder, args.task, env))
            loads[name].append(in_process_seconds(folder, args.task))
    rows = {
        name: {"bytes": weights[name].stat().st_size, "first_line_s": statistics.median(times[name]),
               "load_tag_s": statistics.median(loads[name]), "first_line_all_s": times[name], "load_tag_all_s": loads[name]}
        for name in folders
    }
    print(f"backbone {args.model}, run {run}, task {args.task}, {args.repeats} repeats, {args.threads} thread(s)")
    print(f"{'':22} {'model.safetensors':>18} {'hl tag: 1st line':>17} {'load+tag in process':>20}")
    for name, row in rows.items():
        print(f"{name:22} {row['bytes'] / 2**20:>14.2f} MiB {row['first_line_s']:>15.2f} s {row['load_tag_s']:>18.3f} s")
    write_json(args.json, {"model": args.model, "task": args.task, "rows": rows})


if __name__ == "__main__":
    main()
