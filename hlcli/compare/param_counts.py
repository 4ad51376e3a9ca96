"""Parameter-count table of every method (``hl compare --params``), beside the papers' numbers.

Counts come from the real model classes built on the meta device (shapes only, no weights, no
files): T5-base (``T5Config(d_model=768, d_ff=3072, num_layers=12, num_heads=12, d_kv=64,
vocab_size=32128)``) and BERT-base (``BertConfig()``), serving the paper's seven tasks with their
real slot-type counts (they size the per-task heads of the encoder path). A single-task method
(``unipelt``; its registry entry says so) counts one model, for ATIS (the largest head).
Encoder taggers drop BERT's pooler, which token classification never reads.

The paper columns hold the numbers as the papers print them (exact where they are exact,
rounded like ``"239M"`` where they are not; ``None`` where no paper reports one); they come
from each method's registry entry (``MethodEntry.paper``).
"""

from __future__ import annotations

import json
import math
import numbers
from dataclasses import dataclass
from typing import Sequence

import torch

from hlcli.errors import UsageError

# The seven corpora of the HyperLoader paper (Table 2) and their slot-type counts.
TASK_TYPES: dict[str, int] = {
    "atis": 83,
    "snips": 39,
    "mit_movie": 12,
    "mit_movie_trivia": 12,
    "mit_restaurant": 8,
    "mtop": 75,
    "mtod": 16,
}
BACKBONES = ("t5-base", "bert-base")
COLUMNS = ["method", "backbone", "total", "trainable", "% trainable", "paper total", "paper trainable"]

@dataclass
class _ShapeOnlyTokenizer:
    """Stands in for a tokenizer: building a model reads these attributes, counting never tokenizes."""

    is_fast: bool = True
    model_max_length: int = 512


def _backbone(name: str):
    from transformers import BertConfig, BertModel, T5Config, T5ForConditionalGeneration

    from hlcli.backbones import Backbone

    if name == "t5-base":
        config = T5Config(d_model=768, d_ff=3072, num_layers=12, num_heads=12, d_kv=64, vocab_size=32128)
        model = T5ForConditionalGeneration(config)
    elif name == "bert-base":
        config = BertConfig()
        model = BertModel(config)
    else:
        raise UsageError(f"no parameter-count backbone {name!r}", expected=f"one of {', '.join(BACKBONES)}")
    return Backbone(name=name, path=name, config=config, model=model, tokenizer=_ShapeOnlyTokenizer())


def parameter_counts(method: str, backbone: str) -> tuple[int, int] | None:
    """(total, trainable) of ``method`` on ``backbone`` for the seven tasks; None where it does not apply."""
    from hlcli.methods import method_config, method_entry
    from hlcli.methods.base import TaskSpec

    entry = method_entry(method)
    tasks = [TaskSpec(name, [f"type{i}" for i in range(n)]) for name, n in TASK_TYPES.items()]
    if entry.single_task:
        tasks = tasks[:1]
    with torch.device("meta"):
        loaded = _backbone(backbone)
        try:
            model = entry.build(method_config(method), loaded, tasks)
        except UsageError:
            return None  # e.g. hyperdecoder on an encoder-only backbone
    return model.parameter_counts()


def parameter_table(*, methods: Sequence[str] | None = None, backbones: Sequence[str] = BACKBONES):
    """One row per applicable (method, backbone): our counts beside the papers' (pandas DataFrame)."""
    import pandas as pd

    from hlcli.methods import known_methods, method_entry

    methods = list(methods) if methods is not None else known_methods()
    for backbone in backbones:
        if backbone not in BACKBONES:
            raise UsageError(f"no parameter-count backbone {backbone!r}", expected=f"one of {', '.join(BACKBONES)}")
    rows = []
    for method in methods:
        for backbone in backbones:
            counts = parameter_counts(method, backbone)
            if counts is None:
                continue
            total, trainable = counts
            paper_total, paper_trainable = method_entry(method).paper.get(backbone, (None, None))
            share = round(100 * trainable / total, 2)
            rows.append([method, backbone, total, trainable, share, paper_total, paper_trainable])
    return pd.DataFrame(rows, columns=COLUMNS)


def format_count_cell(value: object) -> str:
    """A cell of :func:`parameter_table` as printed: counts with thousands separators, percentages
    with two decimals, a missing paper figure empty."""
    if isinstance(value, numbers.Integral):
        return f"{int(value):,}"
    if isinstance(value, numbers.Real):
        return "" if math.isnan(value) else f"{float(value):.2f}"
    return "" if value is None else str(value)


def parameter_text(frame, fmt: str) -> str:
    """:func:`parameter_table` as csv, json (records; a missing figure is null) or markdown text."""
    if fmt == "csv":
        return frame.to_csv(index=False)
    records = [{k: (None if format_count_cell(v) == "" else v) for k, v in row.items()}
               for row in frame.to_dict(orient="records")]  # fmt: skip
    if fmt == "json":
        return json.dumps(records, indent=2, ensure_ascii=False) + "\n"
    if fmt == "markdown":
        lines = ["| " + " | ".join(frame.columns) + " |", "|" + " --- |" * len(frame.columns)]
        lines += ["| " + " | ".join(format_count_cell(v) for v in row.values()) + " |" for row in records]
        return "\n".join(lines) + "\n"
    raise UsageError(f"--params prints csv, json or markdown, not {fmt}", expected="--format csv|json|markdown")
