"""Leave-one-out study of ``hl adapt`` (issue 13): add a seventh corpus to a six-corpus model.

For each held-out task H (default ATIS and Restaurant), on MiniLM at 10 % of the data, with the
settings of recipes/cpu-minilm.toml:

base  train the six other corpora jointly for ``--base-steps`` steps (default 1,000);
(a)   ``hl adapt BASE --tasks H`` with everything frozen (new task embedding + head only),
      once per ``--inits`` (mean of the old embeddings, random) and per ``--embedding-lr``
      (default 1e-2 and 1e-4, the base run's lr, which is what ``hl adapt`` uses unless told);
(b)   the same with ``--unfreeze hypernetwork`` (generator at ``--generator-lr``, no replay);
(b+r) the same with ``--replay``: all seven tasks sampled, run long enough that H gets the same
      steps as in (a)/(b);
(c)   the seven corpora trained jointly from scratch for ``base_steps × 7/6`` steps (one run,
      shared by every held-out task);
(d)   H trained alone from scratch.

"The same number of steps spent on the new task": H's steps in (c) are its expected share of the
joint run under the temperature sampler (``p_H × steps``, :func:`hlcli.sampler.task_probabilities`),
and (a), (b), (d) train H for exactly that many steps. Every run is scored on the TEST split with
``hl evaluate``; the table gives H's test F1 and the mean change in test F1 of the six old tasks
against the base model (frozen (a) is 0.0000 by construction: bitwise-identical predictions).

Every command is printed before it runs; ``--dry-run`` only prints them. A run killed midway is
resumed (``hl train --resume``) when the study is started again; finished runs and their scores are
reused. The study committed in docs/add-task.md (about 1.5 CPU-hours on the 2-core machine):

    OMP_NUM_THREADS=1 python -m experiments.leave_one_out --data-dir ../shared/data --work-dir loo --json loo.json

A small version (two old corpora, a few hundred steps) to check it end to end:

    nice -n 10 python -m experiments.leave_one_out --data-dir ../shared/data --work-dir loo-small \\
        --held-out restaurant --base-tasks atis --base-steps 40 --eval-every 20 --batch-size 8
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from benchmarks._common import write_json

REPO = Path(__file__).resolve().parents[1]
ALL = ["atis", "snips", "movie", "movietrivia", "restaurant", "mtop", "mtod"]
RECIPE = REPO / "recipes" / "cpu-minilm.toml"


def sized(args) -> list[str]:
    return ["--batch-size", str(args.batch_size)] if args.batch_size else []


def hl(args: list[str], *, dry_run: bool) -> None:
    print("$ hl " + " ".join(args), flush=True)
    if dry_run:
        return
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-m", "hlcli", *args], env=env, stdout=subprocess.PIPE, text=True)
    if result.returncode:
        raise SystemExit(f"failed (exit {result.returncode}): hl {' '.join(args)}")


def scores(run: Path, args) -> dict[str, float]:
    """Test F1 per task of ``run`` (``hl evaluate``, cached in ``<run>/test-scores.json``)."""
    out = run / "test-scores.json"
    if not out.exists():
        hl(["evaluate", str(run), "--split", "test", "--data-dir", args.data_dir, "--output", str(out)], dry_run=args.dry_run)
    if args.dry_run:
        return {}
    return {task: s["f1"] for task, s in json.loads(out.read_text())["tasks"].items()}


def resume(run: Path, args) -> bool:
    """Finish an interrupted run in place; False when there is none to finish."""
    if not run.exists():
        return False
    from hlcli.runs import finished_config

    if finished_config(run) is None:  # killed midway: resumed, not scored
        hl(["train", "--resume", str(run), "--no-progress"], dry_run=args.dry_run)
    return True


def train(run: Path, tasks: list[str], steps: int, args) -> None:
    if not resume(run, args):
        hl(["train", "--recipe", str(RECIPE), "--tasks", ",".join(tasks), "--max-steps", str(steps),
            "--fraction", str(args.fraction), "--eval-every", str(args.eval_every), "--checkpoint-every", str(steps),
            "--warmup-steps", str(min(100, steps // 10)), "--data-dir", args.data_dir, "--no-progress",
            "--output-dir", str(run), *sized(args)], dry_run=args.dry_run)


def adapt(run: Path, base: Path, task: str, steps: int, extra: list[str], args) -> None:
    if not resume(run, args):
        hl(["adapt", str(base), "--tasks", task, "--max-steps", str(steps),
            "--warmup-steps", str(min(100, steps // 10)), "--eval-every", str(min(args.eval_every, steps)),
            "--checkpoint-every", str(steps), "--data-dir", args.data_dir, "--no-progress", "--output-dir", str(run), *sized(args), *extra],
           dry_run=args.dry_run)


def new_task_steps(held_out: str, tasks: list[str], steps: int, args) -> int:
    """H's expected steps in a joint run of ``tasks`` for ``steps`` steps (temperature sampling)."""
    from hlcli.config import read_recipe
    from hlcli.data.tasks import load_split
    from hlcli.sampler import task_probabilities

    temperature = read_recipe(RECIPE).get("temperature", 10.0)
    sizes = {t: len(load_split(t, "train", data_dir=args.data_dir, fraction=args.fraction, seed=42)) for t in tasks}
    return max(1, round(task_probabilities(sizes, temperature)[held_out] * steps))


def study(held_out: str, args) -> list[dict]:
    work = Path(args.work_dir) / held_out
    old = [t for t in (args.base_tasks.split(",") if args.base_tasks else ALL) if t != held_out]
    joint_steps = round(args.base_steps * (len(old) + 1) / len(old))
    steps = new_task_steps(held_out, [*old, held_out], joint_steps, args)
    print(f"# {held_out}: base {old} x {args.base_steps} steps; joint x {joint_steps} steps gives {held_out} "
          f"~{steps} steps; (a), (b), (d) train it {steps} steps", flush=True)
    train(work / "base", old, args.base_steps, args)
    base = scores(work / "base", args)
    lrs = args.embedding_lr.split(",")
    variants = {}
    for lr in lrs:
        for init in args.inits.split(","):
            named = f", embedding lr {lr}" if len(lrs) > 1 else ""
            folder = f"a-{init}" + (f"-lr{lr}" if lr != lrs[0] else "")
            variants[f"(a) add, frozen, init {init}{named}"] = (work / folder, ["--init", init, "--lr", lr], steps)
    tuned = ["--lr", lrs[0], "--unfreeze", "hypernetwork", "--generator-lr", str(args.generator_lr)]
    variants["(b) add, generator tuned"] = (work / "b", tuned, steps)
    if args.replay:
        variants["(b+r) add, generator tuned, replay"] = (work / "b-replay", [*tuned, "--replay"], joint_steps)
    rows = []
    for name, (run, extra, n) in variants.items():
        adapt(run, work / "base", held_out, n, extra, args)
        rows.append(row(name, held_out, old, scores(run, args), base, n))
    # The seven-task model is the same for every held-out task: trained once, shared.
    seven = [t for t in ALL if t in {*old, held_out}] + [t for t in old if t not in ALL]
    joint = Path(args.work_dir) / ("joint-" + "-".join(sorted(seven)))
    train(joint, seven, joint_steps, args)
    rows.append(row("(c) seven tasks jointly", held_out, old, scores(joint, args), base, joint_steps))
    train(work / "alone", [held_out], steps, args)
    rows.append(row("(d) new task alone", held_out, [], scores(work / "alone", args), base, steps))
    return rows


def row(name: str, held_out: str, old: list[str], got: dict[str, float], base: dict[str, float], steps: int) -> dict:
    change = [got[t] - base[t] for t in old if t in got and t in base]
    return {"held_out": held_out, "variant": name, "steps": steps, "new_f1": got.get(held_out),
            "old_f1_change": sum(change) / len(change) if change else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--held-out", default="atis,restaurant")
    parser.add_argument("--base-tasks", default=None, help="Old corpora (default: the six others).")
    parser.add_argument("--base-steps", type=int, default=1000)
    parser.add_argument("--fraction", type=float, default=0.1)
    parser.add_argument("--eval-every", type=int, default=100)
    parser.add_argument("--inits", default="mean,random")
    parser.add_argument("--embedding-lr", default="1e-2,1e-4",
                        help="lr of the new task embedding in hl adapt; a comma list runs (a) once per lr (the first is used by (b)).")
    parser.add_argument("--replay", action=argparse.BooleanOptionalAction, default=True, help="Also run (b+r).")
    parser.add_argument("--generator-lr", type=float, default=1e-5)
    parser.add_argument("--batch-size", type=int, default=None, help="Default: the recipe's (32).")
    parser.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--work-dir", default="leave-one-out")
    parser.add_argument("--json", default=None)
    parser.add_argument("--dry-run", action="store_true")
    args = parser.parse_args()

    rows = [r for held_out in args.held_out.split(",") for r in study(held_out, args)]
    if args.dry_run:
        return
    print("\n| held out | variant | steps | new-task test F1 | mean Δ test F1, old tasks |")
    print("|---|---|---:|---:|---:|")
    for r in rows:
        change = "n/a" if r["old_f1_change"] is None else f"{r['old_f1_change']:+.4f}"
        print(f"| {r['held_out']} | {r['variant']} | {r['steps']} | {r['new_f1']:.4f} | {change} |")
    write_json(args.json, rows)


if __name__ == "__main__":
    main()
