"""The paper's published results (Tables 3 and 4), as data for ``hl compare --paper``.

Source: :data:`CITATION`. Only figures copied exactly from the paper belong in :data:`TABLES`;
nothing here may be estimated, rounded differently or filled in. The paper's text could not be
retrieved when this module was written (only its abstract was reachable), so no table is bundled
yet: :func:`published` returns nothing and ``hl compare --paper`` says so instead of printing
numbers. To add them, fill :data:`TABLES` from Table 3 (fraction 1.0) and Table 4 (0.1, 0.2).
"""

from __future__ import annotations

from dataclasses import dataclass, field

CITATION = (
    "Jesus-German Ortiz-Barajas, Helena Gómez-Adorno, Thamar Solorio. 2024. HyperLoader: Integrating "
    "Hypernetwork-Based LoRA and Adapter Layers into Multi-Task Transformers for Sequence Labelling. "
    "arXiv:2407.01411 (Table 3: full training data; Table 4: 10 % and 20 % of the training data)."
)
TABLE_FOR_FRACTION = {1.0: "Table 3", 0.1: "Table 4", 0.2: "Table 4"}


@dataclass(frozen=True)
class PublishedColumn:
    """One method's column of a published table."""

    method: str = field(metadata={"help": "hlcli method name (registry), e.g. 'hyperloader'."})
    label: str = field(metadata={"help": "Column name as printed in the paper."})
    total: int | None = field(metadata={"help": "Total parameters as printed in the header's brackets."})
    trainable: int | None = field(metadata={"help": "Trainable parameters as printed in the header's brackets."})
    f1: dict[str, float] = field(
        metadata={"help": "Task name (hlcli corpus name, plus 'Average' when printed) -> micro-F1 on the 0-1 scale."}
    )


# fraction -> the paper's columns at that fraction. Empty: the published figures are not bundled.
TABLES: dict[float, list[PublishedColumn]] = {}


def published(fraction: float) -> list[PublishedColumn]:
    """The paper's columns for ``fraction`` (empty when not bundled)."""
    return TABLES.get(fraction, [])


def unavailable_message() -> str:
    return (
        "the paper's published figures are not bundled with hlcli (hlcli/paper.py has no table: the paper's "
        f"text could not be retrieved to copy them exactly); see {CITATION}"
    )
