"""``FullFineTuneConfig``: the SentT' limits plus whether T5 inputs name their task."""

from __future__ import annotations

from dataclasses import dataclass

from hlcli.methods.common import check_flags, help_field
from hlcli.methods.plain.config import SentTLimits


@dataclass
class FullFineTuneConfig(SentTLimits):
    """Every backbone parameter trains (plus the per-task heads on encoders)."""

    task_prefix: bool = help_field(
        'T5: name the task in the input ("atis: <extra_id_0> ..."), as T5 multi-task training does.', default=True
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        check_flags(self, "task_prefix")
