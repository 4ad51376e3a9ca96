"""Benchmark: training memory — peak RSS, and no growth over a long run.

Two parts, each in its own process (so that one's peak does not hide the other's):

* ``peak`` — HyperLoader on a T5 of ``--config`` shape (default t5-small), ``--batch-size`` real
  ATIS pairs, ``--peak-steps`` optimizer steps (forward + backward + AdamW); reports the RSS after
  building the model and the process's peak RSS (``VmHWM``).
* ``growth`` — the real training loop, ``hlcli.training.train``, on a small T5 (``--growth-config``,
  saved with the T5 tokenizer to a temporary folder) for ``--growth-steps`` steps, with RSS
  sampled every ``--every`` optimizer steps (``torch.optim.AdamW.step`` is wrapped to count them).
  The slope of RSS against steps over the second half of the run (after allocator warm-up) should be
  ~0: no per-step list kept, no graph retained.

Not a test; run by hand:

    python -m benchmarks.bench_memory --json memory.json
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from benchmarks import _common as common

from hlcli.data.tasks import label_types, load_split
from hlcli.methods.base import TaskSpec


def peak(args) -> dict:
    tokenizer = common.load_tokenizer(args.tokenizer)
    examples = load_split("atis", "train", data_dir=args.data_dir)
    model = common.hyperloader_model(
        common.t5_backbone(args.config, tokenizer, seed=args.seed), tokenizer, [TaskSpec("atis", label_types(examples))]
    ).train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-4, weight_decay=0.0)
    rng = random.Random(args.seed)
    built = common.rss_mib()
    after = []
    for _ in range(args.peak_steps):
        loss = model.loss("atis", model.collate("atis", rng.sample(examples, args.batch_size)))
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        model.invalidate_cache()
        after.append(round(common.rss_mib(), 1))
    return {
        "config": args.config,
        "batch_size": args.batch_size,
        "steps": args.peak_steps,
        "rss_after_build_mib": round(built, 1),
        "rss_after_each_step_mib": after,
        "peak_rss_mib": round(common.peak_rss_mib(), 1),
    }


def growth(args) -> dict:
    from hlcli.config import TrainConfig
    from hlcli.methods.hyperloader.model import WeightSourceT5Tagger
    from hlcli.training import train

    samples: list[tuple[int, float]] = []
    original_step = torch.optim.AdamW.step
    original_collate = WeightSourceT5Tagger.collate
    count, largest = [0], [0]

    def counting_step(self, *a, **k):
        out = original_step(self, *a, **k)
        count[0] += 1
        if count[0] % args.every == 0:
            samples.append((count[0], round(common.rss_mib(), 2), largest[0]))
        return out

    def measuring_collate(self, *a, **k):
        # RSS rises in steps when a batch larger than any before needs bigger buffers (the
        # allocator keeps them); recording the largest padded batch so far tells those from a leak.
        batch = original_collate(self, *a, **k)
        largest[0] = max(largest[0], batch["input_ids"].numel() + batch["labels"].numel())
        return batch

    torch.optim.AdamW.step = counting_step
    WeightSourceT5Tagger.collate = measuring_collate
    with tempfile.TemporaryDirectory() as tmp:
        backbone_dir = Path(tmp) / "backbone"
        tokenizer = common.load_tokenizer(args.tokenizer)
        common.t5_backbone(args.growth_config, tokenizer, seed=args.seed).save_pretrained(backbone_dir)
        tokenizer.save_pretrained(backbone_dir)
        config = TrainConfig(
            tasks=["atis"],
            method="hyperloader",
            model=str(backbone_dir),
            data_dir=args.data_dir,
            batch_size=args.growth_batch_size,
            max_steps=args.growth_steps,
            warmup_steps=10,
            eval_every=args.growth_steps,
            checkpoint_every=args.growth_steps,
            log_every=args.every,
            max_val_examples=32,
            output_dir=str(Path(tmp) / "run"),
        )
        start = common.rss_mib()
        train(config)
    half = [s for s in samples if s[0] > args.growth_steps // 2]
    slope = _slope(half) if len(half) >= 2 else None
    # Samples after the last new largest batch: there only a leak can make RSS grow.
    settled = [s for s in samples if s[2] == samples[-1][2]] if samples else []
    return {
        "config": args.growth_config,
        "batch_size": args.growth_batch_size,
        "steps": count[0],
        "rss_before_training_mib": round(start, 1),
        "samples_step_rss_mib_largest_batch_tokens": samples,
        "settled_from_step": settled[0][0] if settled else None,
        "slope_settled_kib_per_step": round(_slope(settled) * 1024, 3) if len(settled) >= 2 else None,
        "slope_second_half_kib_per_step": None if slope is None else round(slope * 1024, 3),
        "slope_all_kib_per_step": round(_slope(samples) * 1024, 3) if len(samples) >= 2 else None,
        "peak_rss_mib": round(common.peak_rss_mib(), 1),
    }


def _slope(points: list[tuple[int, float]]) -> float:
    """Least-squares slope (MiB per step)."""
    n = len(points)
    mx = sum(p[0] for p in points) / n
    my = sum(p[1] for p in points) / n
    return sum((p[0] - mx) * (p[1] - my) for p in points) / sum((p[0] - mx) ** 2 for p in points)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common.add_common_arguments(parser)
    parser.add_argument("--part", choices=["both", "peak", "growth"], default="both")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--peak-steps", type=int, default=3)
    parser.add_argument("--growth-config", choices=sorted(common.CONFIGS), default="micro")
    parser.add_argument("--growth-batch-size", type=int, default=8)
    parser.add_argument("--growth-steps", type=int, default=1000)
    parser.add_argument("--every", type=int, default=50)
    args = parser.parse_args(argv)
    if args.part == "both":
        result = {"benchmark": "memory"}
        for part in ("peak", "growth"):
            with tempfile.NamedTemporaryFile(suffix=".json") as out:
                forwarded = [a for a in (argv if argv is not None else sys.argv[1:])]
                if "--json" in forwarded:
                    i = forwarded.index("--json")
                    del forwarded[i : i + 2]
                subprocess.run([sys.executable, "-m", __spec__.name, *forwarded, "--part", part, "--json", out.name],
                               check=True, cwd=common.REPO)
                part_result = json.loads(Path(out.name).read_text())
            result.update({k: v for k, v in part_result.items() if k != part})
            result[part] = part_result[part]
        common.write_json(args.json, result)
        return result
    common.setup(args)
    figures = peak(args) if args.part == "peak" else growth(args)
    result = {"benchmark": "memory", **common.machine_info(args), args.part: figures}
    if args.part == "peak":
        print(f"peak: {args.config}, batch {args.batch_size}, {args.peak_steps} steps: RSS after build {figures['rss_after_build_mib']} MiB, "
              f"after each step {figures['rss_after_each_step_mib']}, peak {figures['peak_rss_mib']} MiB")
    else:
        print(f"growth: {args.growth_config}, batch {args.growth_batch_size}, {figures['steps']} steps (hlcli.training.train): "
              f"RSS every {args.every} steps {[s[1] for s in figures['samples_step_rss_mib_largest_batch_tokens']]} MiB")
        print(f"  largest padded batch so far (tokens) {[s[2] for s in figures['samples_step_rss_mib_largest_batch_tokens']]}")
        print(f"  slope: second half {figures['slope_second_half_kib_per_step']} KiB/step, whole run {figures['slope_all_kib_per_step']} KiB/step, "
              f"from step {figures['settled_from_step']} (no larger batch after it) {figures['slope_settled_kib_per_step']} KiB/step")
    common.write_json(args.json, result)
    return result


if __name__ == "__main__":
    main()
