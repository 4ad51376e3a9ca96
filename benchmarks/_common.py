"""Shared pieces of the benchmark scripts (not part of the hlcli package).

Backbones are *shaped like* T5 checkpoints but randomly initialised (no hub, no download): the
speed of a forward/backward depends on the shapes, not on the values. The tokenizer is the real
T5 one (``--tokenizer``, default ``../shared/tokenizers/t5`` next to the repository).

torch is imported inside the functions that need it, so that the scripts timing start-up or pure
Python work (``bench_convert``, ``bench_export``, ``bench_bootstrap``) and ``experiments/`` can use
the JSON output without paying for it.
"""

from __future__ import annotations

import datetime
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any, Callable, Sequence

REPO = Path(__file__).resolve().parents[1]
DEFAULT_TOKENIZER = REPO.parent / "shared" / "tokenizers" / "t5"
DEFAULT_DATA_DIR = REPO.parent / "shared" / "data"

# T5 shapes (vocabulary of the real tokenizer: 32,128 rows).
CONFIGS: dict[str, dict[str, int]] = {
    "micro": dict(d_model=64, d_ff=256, num_layers=1, num_decoder_layers=1, num_heads=2, d_kv=32),
    "tiny": dict(d_model=128, d_ff=512, num_layers=2, num_decoder_layers=2, num_heads=4, d_kv=32),
    "mini": dict(d_model=256, d_ff=1024, num_layers=4, num_decoder_layers=4, num_heads=4, d_kv=64),
    "t5-small": dict(d_model=512, d_ff=2048, num_layers=6, num_decoder_layers=6, num_heads=8, d_kv=64),
    "t5-base": dict(d_model=768, d_ff=3072, num_layers=12, num_decoder_layers=12, num_heads=12, d_kv=64),
}
DTYPES = ("bf16", "fp32")  # --dtype names; torch_dtype() maps them


def add_common_arguments(parser) -> None:
    parser.add_argument("--config", choices=sorted(CONFIGS), default="t5-small", help="T5 shape (random weights).")
    parser.add_argument("--device", default="cpu", help="cpu | cuda")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="fp32", help="Parameter dtype (bf16 for GPUs).")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (CPU).")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tokenizer", default=str(DEFAULT_TOKENIZER))
    parser.add_argument("--data-dir", default=str(DEFAULT_DATA_DIR))
    parser.add_argument("--json", default=None, help="Also write the figures as JSON to this path.")


def torch_dtype(name: str):
    import torch

    return {"fp32": torch.float32, "bf16": torch.bfloat16}[name]


def setup(args) -> None:
    import torch

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)


def load_tokenizer(path: str):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path)


def t5_backbone(config_name: str, tokenizer, *, seed: int = 0):
    """A randomly initialised ``T5ForConditionalGeneration`` of the named shape."""
    import torch
    from transformers import T5Config, T5ForConditionalGeneration

    config = T5Config(
        vocab_size=32128,
        **CONFIGS[config_name],
        decoder_start_token_id=tokenizer.pad_token_id,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        dropout_rate=0.1,
    )
    torch.manual_seed(seed)
    return T5ForConditionalGeneration(config)


def hyperloader_model(backbone, tokenizer, tasks, *, static: bool = False, **overrides):
    """HyperLoader on ``backbone``; ``static=True``: same modules, plain tensors (no hypernetwork)."""
    from hlcli.methods.hyperloader.config import HyperLoaderConfig
    from hlcli.methods.hyperloader.model import WeightSourceT5Tagger
    from hlcli.methods.hyperloader.t5 import t5_stack_specs
    from hlcli.methods.hyperloader.weight_source import StaticWeightSource

    config = HyperLoaderConfig(**overrides)
    source = None
    if static:
        source = StaticWeightSource(config, n_tasks=len(tasks), stacks=t5_stack_specs(backbone.config, config))
    return WeightSourceT5Tagger(config, backbone, tokenizer, tasks, method="static" if static else "hyperloader", source=source)


def machine_info(args) -> dict:
    import torch

    load1, load5, load15 = os.getloadavg()
    info = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "loadavg_1_5_15": [round(load1, 2), round(load5, 2), round(load15, 2)],
        "device": args.device,
        "dtype": args.dtype,
        "config": args.config,
    }
    if args.device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
    return info


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def interleaved(fns: dict[str, Callable[[], object]], repeats: int, device: str = "cpu") -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Time each function ``repeats`` times, round-robin (A, B, C, A, B, C, ...), so that all
    sides see the same machine load. Returns seconds per call for each name: wall clock, and
    this process's CPU time (all threads; much less sensitive to other jobs on a shared machine)."""
    wall: dict[str, list[float]] = {name: [] for name in fns}
    cpu: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            synchronize(device)
            start, start_cpu = time.perf_counter(), time.process_time()
            fn()
            synchronize(device)
            wall[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - start_cpu)
    return wall, cpu


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def _status_mib(field: str) -> float:
    """A ``kB`` field of this process's ``/proc/self/status`` (Linux), in MiB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def rss_mib() -> float:
    """Current resident set size of this process."""
    return _status_mib("VmRSS")


def peak_rss_mib() -> float:
    """Peak resident set size of this process (high-water mark)."""
    return _status_mib("VmHWM")


def write_json(path: str | os.PathLike | None, data: Any) -> None:
    """The figures as indented JSON, when ``--json PATH`` was given (every script's one output format)."""
    if path:
        import json

        Path(path).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {path}")
