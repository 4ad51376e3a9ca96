"""Benchmark: what the ``hl train`` loop adds around the model's own step (issue 10, target 2).

Two measurements on the same backbone shape, data, method and batch size, one after the other:

* ``loop`` — the real loop, ``hlcli.training.train``, on a random T5 of ``--config`` shape saved
  with the T5 tokenizer to a temporary folder; steady-state steps/s from the wall clock between
  the ``on_step`` callbacks of steps ``--warmup`` and ``--steps`` - 1 (validation and the
  checkpoint at the last step are left out; logging every ``--log-every`` steps is in).
* ``step`` — the model's step alone: the same model built the same way, the batches the same
  sampler draws, collated beforehand; each step is forward + backward + clip + AdamW + schedule,
  nothing else. ``collate`` (tokenising and padding one batch, which the loop does per step) is
  timed separately.

The loop's overhead is ``1 - loop/step`` steps/s. Not a test; run by hand, e.g.

    nice -n 10 python -m benchmarks.bench_loop_overhead --config tiny --threads 1 --steps 60
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from benchmarks._common import add_common_arguments, load_tokenizer, machine_info, setup, t5_backbone, write_json


def train_config(args, model_dir: str, output_dir: str):
    from hlcli.config import TrainConfig

    return TrainConfig(tasks=args.tasks.split(","), model=model_dir, data_dir=args.data_dir, fraction=args.fraction,
                       batch_size=args.batch_size, max_steps=args.steps, warmup_steps=2, log_every=args.log_every,
                       eval_every=args.steps, checkpoint_every=args.steps, max_val_examples=8, seed=args.seed,
                       output_dir=output_dir)  # fmt: skip


def loop_steps_per_second(config, args) -> float:
    from hlcli.training import train

    stamps: dict[int, float] = {}
    train(config, on_step=lambda result: stamps.__setitem__(result.step, time.perf_counter()))
    first, last = args.warmup, args.steps - 1
    return (last - first) / (stamps[last] - stamps[first])


def bare_step_figures(config, args) -> tuple[float, float]:
    """(steps/s of the model's step alone, seconds to collate one batch)."""
    from hlcli.training.prepare import build_loop, load_data
    from accelerate import Accelerator

    from hlcli.data.tasks import label_types
    from hlcli.methods import build_model
    from hlcli.methods.base import TaskSpec

    torch.manual_seed(config.seed)
    train_sets, val_sets = load_data(config)
    specs = [TaskSpec(t, label_types(train_sets[t] + val_sets[t])) for t in config.tasks]
    model = build_model(config.method, backbone=config.model, tasks=specs, overrides=dict(config.method_overrides))
    loop, sampler = build_loop(config, Accelerator(), model, train_sets)
    draws = [next(sampler) for _ in range(args.steps)]
    start = time.perf_counter()
    batches = [(task, model.collate(task, [train_sets[task][i] for i in indices])) for task, indices in draws]
    collate = (time.perf_counter() - start) / len(draws)
    model.train()
    for n, (task, batch) in enumerate(batches):
        if n == args.warmup:
            start = time.perf_counter()
        loss = model.loss(task, batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(loop.params, config.max_grad_norm)
        loop.optimizer.step()
        loop.scheduler.step()
        loop.optimizer.zero_grad(set_to_none=True)
        model.invalidate_cache()
    return (len(batches) - args.warmup) / (time.perf_counter() - start), collate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_arguments(parser)
    parser.set_defaults(config="tiny", threads=1)
    parser.add_argument("--tasks", default="atis,snips")
    parser.add_argument("--fraction", type=float, default=0.1)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=10, help="Steps left out at the start.")
    parser.add_argument("--log-every", type=int, default=20)
    args = parser.parse_args()
    setup(args)
    tokenizer = load_tokenizer(args.tokenizer)
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = str(Path(tmp) / "model")
        t5_backbone(args.config, tokenizer, seed=args.seed).save_pretrained(model_dir)
        tokenizer.save_pretrained(model_dir)
        loop = loop_steps_per_second(train_config(args, model_dir, str(Path(tmp) / "run")), args)
        step, collate = bare_step_figures(train_config(args, model_dir, str(Path(tmp) / "unused")), args)
    figures = {**machine_info(args), "batch_size": args.batch_size, "tasks": args.tasks, "steps": args.steps,
               "loop_steps_per_s": loop, "step_alone_steps_per_s": step, "loop_overhead": 1 - loop / step,
               "collate_s_per_batch": collate}  # fmt: skip
    print(f"{args.config}, batch {args.batch_size}, {args.threads} thread(s): hl train loop {loop:.2f} steps/s, "
          f"model step alone {step:.2f} steps/s, overhead {100 * (1 - loop / step):.1f} %; "
          f"collate {1000 * collate:.1f} ms/batch (inside the loop's figure)")  # fmt: skip
    write_json(args.json, figures)


if __name__ == "__main__":
    main()
