"""Benchmark: ``hl compare --jobs 2`` against one run at a time, wall time of the same comparison.

The smoke recipe's two methods (HyperLoader, HyperFormer++) x ``--seeds`` on a random T5 of the
chosen shape with the real tokenizer, ``--steps`` steps each, trained twice into fresh folders:
once one run at a time with ``--threads`` torch threads, once ``--jobs`` runs at a time (each
worker gets threads ÷ jobs). Reported: wall seconds of each and their ratio (> 1: jobs are faster),
and whether both wrote the same F1s (they should: tests/test_compare_jobs.py checks it at one thread).

Not a test; run by hand on an otherwise idle machine:

    python -m benchmarks.bench_compare_jobs --config micro --steps 60 --threads 2 --jobs 2 --json jobs.json
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch

from benchmarks import _common as common

from hlcli.compare import compare

SMOKE = common.REPO / "recipes" / "smoke.toml"


def timed_compare(work: Path, backbone: str, args, *, jobs: int) -> tuple[float, pd.DataFrame]:
    start = time.perf_counter()
    compare(
        recipe=SMOKE, model=backbone, data_dir=args.data_dir, output_dir=work, max_steps=args.steps,
        seeds=list(range(1, args.seeds + 1)), jobs=jobs,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    return seconds, pd.read_csv(work / "results.csv").sort_values(["method", "seed", "task"]).reset_index(drop=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common.add_common_arguments(parser)
    parser.add_argument("--steps", type=int, default=60, help="Training steps of every run.")
    parser.add_argument("--seeds", type=int, default=2, help="Seeds 1..N: 2 x N runs.")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    common.setup(args)
    with tempfile.TemporaryDirectory(prefix="bench-jobs-") as tmp:
        tokenizer = common.load_tokenizer(args.tokenizer)
        backbone = Path(tmp) / "backbone"
        common.t5_backbone(args.config, tokenizer, seed=args.seed).save_pretrained(backbone)
        tokenizer.save_pretrained(backbone)
        one, first = timed_compare(Path(tmp) / "one", str(backbone), args, jobs=1)
        many, second = timed_compare(Path(tmp) / "many", str(backbone), args, jobs=args.jobs)
    figures = {
        "machine": common.machine_info(args), "config": args.config, "steps": args.steps, "runs": len(first) // 2,
        "threads": torch.get_num_threads(), "jobs": args.jobs, "one_at_a_time_s": round(one, 1),
        "jobs_s": round(many, 1), "speed_up": round(one / many, 2), "same_f1": bool(first["f1"].equals(second["f1"])),
    }  # fmt: skip
    for key, value in figures.items():
        print(f"{key}: {value}")
    common.write_json(args.json, figures)


if __name__ == "__main__":
    main()
