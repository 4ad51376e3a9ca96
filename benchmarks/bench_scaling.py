"""Benchmark: does tagging scale linearly with the number of lines?

``hlcli.tagging.tag_lines`` (what ``hl tag`` runs) on N and 10·N lines (ATIS test sentences,
cycled), round-robin, medians over ``--repeats``:

* ``model`` — a HyperLoader model of the chosen shape (random weights; constrained decoding
  writes one label per word whatever the weights, so the work per sentence is realistic);
* ``pipeline`` — the same on ``--pipeline-lines`` / 10x lines with a stub model whose
  ``predict`` answers ``O`` at once: only reading, chunking, sorting, rendering and output, where a
  quadratic step would show first; measured again after ``gc.freeze()`` (``pipeline+freeze``),
  which shows how much of it is the garbage collector walking the interpreter's objects.

Target: time(10·N) / time(N) <= 10.5 for both. Not a test; run by hand:

    python -m benchmarks.bench_scaling --config tiny --lines 100 --json scaling.json
"""

from __future__ import annotations

import argparse
import gc
import io

import torch

from benchmarks import _common as common

from hlcli.data.tasks import label_types, load_split
from hlcli.methods.base import TaggingModel, TaskSpec
from hlcli.tagging import tag_lines

TASK = "atis"


class StubTagger(TaggingModel):
    """Answers ``O`` for every word: isolates the cost of the tagging pipeline around the model."""

    method = "stub"

    def collate(self, task, examples):
        raise NotImplementedError

    def loss(self, task, batch, label_smoothing=0.0):
        raise NotImplementedError

    def predict(self, task, sentences, *, batch_size=32):
        return [["O"] * len(words) for words in sentences]


def run(model, lines: list[str], batch_size: int, fmt: str) -> int:
    """Tag ``lines`` into an in-memory sink as ``hl tag`` writes its output; returns bytes written."""
    sink = io.StringIO()
    for result in tag_lines(model, TASK, lines, format=fmt, batch_size=batch_size):
        sink.write(result + "\n")
    return sink.tell()


def measure(name: str, model, base_lines: list[str], n: int, *, repeats: int, batch_size: int, fmt: str) -> dict:
    small = [base_lines[i % len(base_lines)] for i in range(n)]
    large = [base_lines[i % len(base_lines)] for i in range(10 * n)]
    run(model, small, batch_size, fmt)  # warm-up
    wall, cpu = common.interleaved(
        {"N": lambda: run(model, small, batch_size, fmt), "10N": lambda: run(model, large, batch_size, fmt)}, repeats
    )
    out = {
        "lines_N": n,
        "seconds_median": {k: round(common.median(v), 3) for k, v in wall.items()},
        "cpu_seconds_median": {k: round(common.median(v), 3) for k, v in cpu.items()},
        "ratio_10N_over_N": round(common.median(wall["10N"]) / common.median(wall["N"]), 3),
        "cpu_ratio_10N_over_N": round(common.median(cpu["10N"]) / common.median(cpu["N"]), 3),
    }
    print(
        f"{name:<9} N={n:>7,}: {out['seconds_median']['N']:>8.2f} s   10N={10 * n:>8,}: {out['seconds_median']['10N']:>8.2f} s   "
        f"ratio {out['ratio_10N_over_N']:.2f} (CPU time {out['cpu_ratio_10N_over_N']:.2f})"
    )
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common.add_common_arguments(parser)
    parser.set_defaults(config="tiny")
    parser.add_argument("--lines", type=int, default=100, help="N for the model measurement.")
    parser.add_argument("--pipeline-lines", type=int, default=10_000, help="N for the stub-model measurement.")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--format", default="jsonl", choices=["sbio", "conll", "jsonl"])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    common.setup(args)

    test = load_split(TASK, "test", data_dir=args.data_dir)
    base_lines = [" ".join(example.tokens) for example in test]
    tasks = [TaskSpec(TASK, label_types(load_split(TASK, "train", data_dir=args.data_dir)))]
    tokenizer = common.load_tokenizer(args.tokenizer)
    model = common.hyperloader_model(common.t5_backbone(args.config, tokenizer, seed=args.seed), tokenizer, tasks)
    model.to(device=args.device, dtype=common.torch_dtype(args.dtype)).eval().requires_grad_(False)

    result = {"benchmark": "scaling", **common.machine_info(args), "format": args.format, "batch_size": args.batch_size}
    result["pipeline"] = measure("pipeline", StubTagger(tasks), base_lines, args.pipeline_lines, repeats=args.repeats, batch_size=args.batch_size, fmt=args.format)
    # Full garbage collections walk every object of the process (torch and transformers hold
    # hundreds of thousands); gc.freeze() moves the start-up objects out of their reach.
    gc.freeze()
    result["pipeline_gc_frozen"] = measure("pipeline+freeze", StubTagger(tasks), base_lines, args.pipeline_lines, repeats=args.repeats, batch_size=args.batch_size, fmt=args.format)
    result["model"] = measure("model", model, base_lines, args.lines, repeats=args.repeats, batch_size=args.batch_size, fmt=args.format)
    print(f"load average: {result['loadavg_1_5_15']}")
    common.write_json(args.json, result)
    return result


if __name__ == "__main__":
    with torch.no_grad():
        main()
