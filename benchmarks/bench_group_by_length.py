"""Benchmark: what ``hl train --group-by-length`` saves (padding, then step time).

1. Padding: for each corpus, one epoch of the training sampler (``hlcli.sampler.TaskSampler``,
   batch ``--batch-size``) with random batches and with batches grouped by length; every batch is
   collated as ``hl train`` collates it (SentT' input and target, padded to the batch's longest)
   and the real and padded token counts are summed. Reported: padded ÷ real tokens (1.0 = no
   padding) for inputs and targets, both ways.
2. Step time (``--steps N``, 0 to skip): HyperLoader training steps (forward + backward + AdamW)
   of the chosen T5 shape on ATIS batches drawn by each sampler, round-robin (random, grouped,
   random, ...); reported as sentences/second and their ratio.

Not a test; run by hand:

    python -m benchmarks.bench_group_by_length --steps 20 --config t5-small --threads 1 --json gbl.json
"""

from __future__ import annotations

import argparse

import torch

from benchmarks import _common as common

from hlcli.data.corpora import CORPORA
from hlcli.data.tasks import label_types, load_split
from hlcli.methods.base import TaskSpec
from hlcli.sampler import TaskSampler


def epoch_batches(model, task: str, examples, *, batch_size: int, grouped: bool, seed: int) -> list[list[int]]:
    """One epoch of the sampler as ``hl train`` builds it (lengths from the model, as with --group-by-length)."""
    lengths = {"t": model.lengths(task, examples)} if grouped else None
    sampler = TaskSampler({"t": len(examples)}, batch_size=batch_size, seed=seed, lengths=lengths)
    return [next(sampler)[1] for _ in range(-(-len(examples) // batch_size))]


def padding(model, task: str, examples, batches: list[list[int]]) -> dict[str, float]:
    real_in = padded_in = real_out = padded_out = 0
    for indices in batches:
        batch = model.collate(task, [examples[i] for i in indices])
        real_in += int(batch["attention_mask"].sum())
        padded_in += batch["attention_mask"].numel()
        real_out += int((batch["labels"] != -100).sum())
        padded_out += batch["labels"].numel()
    return {"input": round(padded_in / real_in, 3), "target": round(padded_out / real_out, 3)}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common.add_common_arguments(parser)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=0, help="Training steps timed per sampler (0: padding only).")
    parser.add_argument("--tasks", default=",".join(CORPORA), help="Corpora for the padding table.")
    args = parser.parse_args(argv)
    common.setup(args)
    tokenizer = common.load_tokenizer(args.tokenizer)

    data = {task: load_split(task, "train", data_dir=args.data_dir) for task in args.tasks.split(",")}
    specs = [TaskSpec(task, label_types(examples)) for task, examples in data.items()]
    # Collation needs only the tokenizer and the task's labels; the smallest shape will do.
    collator = common.hyperloader_model(common.t5_backbone("micro", tokenizer), tokenizer, specs)
    table = {}
    print(f"padded ÷ real tokens over one epoch, batch {args.batch_size} (1.0 = no padding)")
    print(f"{'corpus':<12} {'input random':>13} {'input grouped':>14} {'target random':>14} {'target grouped':>15}")
    for task, examples in data.items():
        row = {
            way: padding(collator, task, examples, epoch_batches(collator, task, examples, batch_size=args.batch_size, grouped=way == "grouped", seed=args.seed))
            for way in ("random", "grouped")
        }
        table[task] = row
        print(f"{task:<12} {row['random']['input']:>13} {row['grouped']['input']:>14} {row['random']['target']:>14} {row['grouped']['target']:>15}")

    result = {"benchmark": "group_by_length", **common.machine_info(args), "batch_size": args.batch_size, "padding": table}
    if args.steps:
        task = "atis" if "atis" in data else next(iter(data))
        examples = data[task]
        model = common.hyperloader_model(common.t5_backbone(args.config, tokenizer, seed=args.seed), tokenizer,
                                         [s for s in specs if s.name == task])  # fmt: skip
        model.to(args.device).train()
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
        batches = {way: iter(epoch_batches(model, task, examples, batch_size=args.batch_size, grouped=way == "grouped", seed=args.seed))
                   for way in ("random", "grouped")}  # fmt: skip

        def step(way: str) -> None:
            batch = {k: v.to(args.device) for k, v in model.collate(task, [examples[i] for i in next(batches[way])]).items()}
            model.loss(task, batch).backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            model.invalidate_cache()

        step("random")  # warm-up (allocator)
        wall, cpu = common.interleaved({way: (lambda way=way: step(way)) for way in ("random", "grouped")}, args.steps, args.device)
        sps = {way: args.batch_size / common.median(times) for way, times in wall.items()}
        cpu_sps = {way: args.batch_size / common.median(times) for way, times in cpu.items()}
        result.update({
            "steps": args.steps, "task": task,
            "seconds_per_step_median": {way: round(common.median(t), 3) for way, t in wall.items()},
            "cpu_seconds_per_step_median": {way: round(common.median(t), 3) for way, t in cpu.items()},
            "sentences_per_s": {way: round(v, 2) for way, v in sps.items()},
            "speedup": round(sps["grouped"] / sps["random"], 3),
            "cpu_speedup": round(cpu_sps["grouped"] / cpu_sps["random"], 3),
        })  # fmt: skip
        print(f"\n{args.config} training steps on {task}, batch {args.batch_size}, {args.steps} steps each, round-robin:")
        for way in ("random", "grouped"):
            print(f"{way:<8} {result['seconds_per_step_median'][way]:>7.3f} s/step  {result['cpu_seconds_per_step_median'][way]:>7.3f} CPU s  {sps[way]:>7.1f} sentences/s")
        print(f"grouped ÷ random sentences/s: {result['speedup']} (CPU time: {result['cpu_speedup']}); load {result['loadavg_1_5_15']}")
    common.write_json(args.json, result)
    return result


if __name__ == "__main__":
    main()
