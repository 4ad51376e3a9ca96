"""The HyperLoader paper's published results (Tables 3 and 4), as data for ``hl compare --paper``.

Source: :data:`CITATION`. Every figure is copied exactly as printed (micro-averaged seqeval F1 on
the full test split, 0-1 scale); ``average`` is the paper's own Average row, not recomputed. The
bracketed parameter counts are kept as printed ("229M", "1.8M"); ``single_task`` is the paper's
♣ (one model per dataset). The paper's bold marks are *not* copied: in Table 3 Movie it bolds
HyperFormer's 0.8788 although UniPELT-T5's 0.8839 is higher, so callers recompute the best.
The figures live in ``paper_results.json`` beside this module (package data, with the citation);
tests/test_paper.py checks every value against the transcription in ``../shared/paper``.
"""

from __future__ import annotations

import importlib.resources
import json
from dataclasses import dataclass, field

_DATA = json.loads((importlib.resources.files(__package__) / "paper_results.json").read_text(encoding="utf-8"))
CITATION: str = _DATA["citation"]
RELEASED_RUNS_SOURCE: str = _DATA["released_runs"]["source"]
TABLE_FOR_FRACTION: dict[float, str] = {float(f): table["table"] for f, table in _DATA["tables"].items()}
# The paper's row order (its Tables 3 and 4) and the key of its own Average row.
PAPER_TASK_ORDER = ("movietrivia", "movie", "restaurant", "atis", "snips", "mtop", "mtod")
AVERAGE_KEY = "average"
SINGLE_TASK_MARK = "♣"  # as printed in the paper
# hlcli method (and backbone family) -> the paper's column; UniPELT ran on both backbones.
PAPER_COLUMN_FOR = {
    ("hyperloader", "T5"): "hyperloader",
    ("hyperformer", "T5"): "hyperformer",
    ("hyperdecoder", "T5"): "hyperdecoder",
    ("unipelt", "T5"): "unipelt-t5",
    ("unipelt", "BERT"): "unipelt-bert",
}
# The backbones the paper ran: a comparison on these can be read cell by cell against it.
PAPER_BACKBONES = {"t5-base": "T5", "bert-base-uncased": "BERT", "bert-base-cased": "BERT"}


@dataclass(frozen=True)
class PublishedColumn:
    """One method's column of a published table."""

    method: str = field(metadata={"help": "Paper column key: an hlcli method, or unipelt-t5 / unipelt-bert."})
    label: str = field(metadata={"help": "Column name as printed in the paper."})
    backbone: str = field(metadata={"help": "T5 or BERT (the paper's backbone row)."})
    total: str = field(metadata={"help": "Total parameters as printed in the header's brackets, e.g. '229M'."})
    trainable: str = field(metadata={"help": "Trainable parameters as printed in the header's brackets, e.g. '6M'."})
    single_task: bool = field(metadata={"help": "The paper's ♣: one model per dataset."})
    f1: dict[str, float] = field(metadata={"help": "hlcli task name or 'average' -> micro-F1 (0-1) as printed."})

    @property
    def header(self) -> str:
        mark = SINGLE_TASK_MARK if self.single_task else ""
        return f"{self.label}{mark} ({self.backbone}) [{self.total}/{self.trainable}]"


# fraction -> the paper's columns at that fraction, in its column order.
TABLES: dict[float, list[PublishedColumn]] = {
    float(f): [PublishedColumn(**column) for column in table["columns"]] for f, table in _DATA["tables"].items()
}
# The authors' released HyperLoader runs (:data:`RELEASED_RUNS_SOURCE`): fraction -> task -> test
# micro-F1 at full precision. The 0.1 and 0.2 runs are Table 4's HyperLoader column, unrounded.
RELEASED_RUNS: dict[float, dict[str, float]] = {
    float(f): runs for f, runs in _DATA["released_runs"]["test_f1"].items()
}


def published(fraction: float) -> list[PublishedColumn]:
    """The paper's columns for ``fraction`` (empty for a fraction the paper did not table)."""
    return TABLES.get(fraction, [])


def paper_column(method: str, model: str | None, fraction: float) -> PublishedColumn | None:
    """The published column to read ``method`` on backbone ``model`` against, if the paper ran it."""
    family = PAPER_BACKBONES.get(model or "")
    key = PAPER_COLUMN_FOR.get((method, family)) if family else None
    return next((c for c in published(fraction) if c.method == key), None)


def unavailable_message(fractions) -> str:
    shown = ", ".join(f"{f:g}" for f in sorted(TABLES))
    asked = ", ".join(f"{f:g}" for f in fractions)
    return f"the paper tables fractions {shown} only (asked for {asked}); see {CITATION}"
