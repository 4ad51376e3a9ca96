"""What a run tells its user beyond loss lines: the defaults it chose, how long it will take, and
(``--report-to tensorboard``) the same scalars as ``metrics.jsonl`` for TensorBoard.

Kept apart from the loop and its consumers, which only call in at a few places.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Iterable, Iterator

from hlcli.config import TrainConfig
from hlcli.errors import UsageError
from hlcli.io import Log

# The step-rate estimate is printed once, after this many optimizer steps of the process (the
# first step, with its one-off costs, is not counted).
ESTIMATE_AFTER = 20
TENSORBOARD_FOLDER = "tensorboard"  # RUN/tensorboard/: point `tensorboard --logdir` at it or at RUN


def backbone_family(model: Any) -> str:
    """``"t5"`` or ``"encoder"``: which :data:`hlcli.defaults.BACKBONE_DEFAULTS` a model gets.

    By the backbone's ``model_type``; a model without a known backbone is an encoder-style model
    when it has per-task heads (which is what ``head_lr`` is for).
    """
    from hlcli.backbones import ENCODER_MODEL_TYPES, T5_MODEL_TYPES

    backbone = getattr(model, "backbone", None)
    model_type = getattr(getattr(backbone, "config", None), "model_type", None)
    if model_type in T5_MODEL_TYPES:
        return "t5"
    if model_type in ENCODER_MODEL_TYPES or model.head_parameters():
        return "encoder"
    return "t5"


def format_duration(seconds: float) -> str:
    """``45 s``, ``12 min 05 s``, ``7 h 05 min``, ``2 d 03 h``."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours:02d} h"


class DurationEstimate:
    """Times the optimizer steps themselves (not validation or checkpoints) and, once
    :data:`ESTIMATE_AFTER` steps are measured, reports the time the rest of the run will take."""

    def __init__(self, *, max_steps: int, report: Log, after: int = ESTIMATE_AFTER) -> None:
        self.max_steps, self.after, self._report = max_steps, after, report
        self._busy = 0.0
        self._timed = -1  # the first step is not timed

    def timed(self, steps: Iterable[Any]) -> Iterator[Any]:
        """``steps`` (the loop's StepResults), timing each ``next``; reports once, then just passes them on."""
        iterator = iter(steps)
        try:
            while True:
                start = time.perf_counter()
                try:
                    result = next(iterator)
                except StopIteration:
                    return
                if self._timed >= 0:
                    self._busy += time.perf_counter() - start
                self._timed += 1
                if self._timed == self.after:
                    line = self.line(result.step)
                    if line:
                        self._report(line)
                yield result
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()

    def line(self, step: int) -> str | None:
        remaining = self.max_steps - step
        if remaining <= 0 or self._busy <= 0:
            return None
        rate = self._timed / self._busy
        speed = f"{rate:.1f} steps/s" if rate >= 1 else f"{1 / rate:.2f} s/step"
        return (f"estimate: ≈ {format_duration(remaining / rate)} for the remaining {remaining:,} "
                f"of {self.max_steps:,} steps at {speed} (validation and checkpoints not included)")


# -- --report-to tensorboard (accelerate's trackers) ------------------------------------------------
def log_with(config: TrainConfig) -> str | None:
    """``Accelerator(log_with=...)`` for ``config.report_to``; a missing package is a usage error
    (accelerate would drop the tracker without a word)."""
    if config.report_to is None:
        return None
    from accelerate.utils import is_tensorboard_available

    if not is_tensorboard_available():
        raise UsageError("--report-to tensorboard needs the tensorboard package",
                         hint="pip install 'hlcli[tensorboard]'")
    return config.report_to


def start_tracking(accelerator: Any, config: TrainConfig, run_dir: Path, *, step: int) -> None:
    """Open the tracker in ``run_dir`` (main process); a resumed run drops the events after ``step``,
    as ``metrics.jsonl`` does."""
    if config.report_to is None:
        return
    # The run folder is known only now (Accelerator was made with a stand-in, see prepare.make_accelerator).
    accelerator.project_configuration.project_dir = accelerator.project_configuration.logging_dir = str(run_dir)
    init = {"purge_step": step + 1} if step else {}
    # No hyper-parameters (add_hparams would add a run folder per call): config.json has them.
    accelerator.init_trackers(TENSORBOARD_FOLDER, init_kwargs={"tensorboard": init})


def stop_tracking(accelerator: Any) -> None:
    """Close the trackers (what ``Accelerator.end_training`` does, without ending the process group)."""
    for tracker in accelerator.trackers:
        tracker.finish()
    accelerator.trackers.clear()


def eval_scalars(metrics: dict[str, Any]) -> dict[str, float]:
    """An evaluation's metrics as tracker scalars: ``eval/val_loss``, ``eval/f1/atis``, ..."""
    return {f"eval/{key}": float(value) for key, value in metrics.items() if isinstance(value, (int, float))}
