"""How long the bootstrap of one table cell takes: count-based resampling vs. seqeval per resample.

    python -m benchmarks.bench_bootstrap [--task mtod] [--data-dir ../shared/data] [--seqeval-resamples 20]

Predictions are the gold tags with 10 % of the tags replaced at random (the timing depends on the
number of sentences and chunks, not on the model). The seqeval baseline re-scores a few
resamples only and is extrapolated to 1,000.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from seqeval.metrics import f1_score

from hlcli.compare import bootstrap
from hlcli.data.tasks import load_split

from benchmarks._common import DEFAULT_DATA_DIR


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="mtod")
    parser.add_argument("--data-dir", default=str(DEFAULT_DATA_DIR))
    parser.add_argument("--seqeval-resamples", type=int, default=20)
    args = parser.parse_args()

    examples = load_split(args.task, "test", data_dir=args.data_dir)
    gold = [list(e.tags) for e in examples]
    tags = sorted({t for s in gold for t in s})
    rng = np.random.default_rng(0)
    pred = [[tags[rng.integers(len(tags))] if rng.random() < 0.1 else t for t in s] for s in gold]

    start = time.perf_counter()
    counts = bootstrap.entity_counts(gold, pred)
    counted = time.perf_counter()
    weights = bootstrap.resample_weights(len(gold), bootstrap.fingerprint([e.tokens for e in examples], gold))
    drawn = time.perf_counter()
    samples = bootstrap.resampled_f1(counts, weights)
    low, high = bootstrap.interval(samples)
    done = time.perf_counter()

    baseline = time.perf_counter()
    for row in weights[: args.seqeval_resamples]:
        idx = np.repeat(np.arange(len(gold)), row.astype(int))
        f1_score([gold[i] for i in idx], [pred[i] for i in idx])
    per_resample = (time.perf_counter() - baseline) / args.seqeval_resamples

    print(f"{args.task} test: {len(gold)} sentences, F1 {f1_score(gold, pred):.4f}, 95% CI {low:.4f}-{high:.4f}")
    print(f"counts once (get_entities)      {counted - start:8.3f} s")
    print(f"draw {bootstrap.RESAMPLES} resamples (seeded)    {drawn - counted:8.3f} s  (shared by every method of the row)")
    print(f"F1 of {bootstrap.RESAMPLES} resamples (one matmul)  {done - drawn:8.3f} s")
    print(f"seqeval per resample            {per_resample:8.3f} s  -> x{bootstrap.RESAMPLES} = {per_resample * bootstrap.RESAMPLES:.0f} s")


if __name__ == "__main__":
    main()
