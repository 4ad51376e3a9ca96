"""The run folder: one fixed layout written by ``hl train`` and read by ``hl evaluate`` / ``hl tag``.

::

    runs/hyperloader-atis+snips-0.1-20240701-120000/
    ├── config.json              the fully resolved TrainConfig (recipe + flags); resume reads it
    ├── train.log                plain-text lines: step, loss, lr; one summary line per evaluation
    ├── metrics.jsonl            the same as JSON records ({"step", "loss", "lr"} / {"step", "eval": {...}})
    ├── checkpoints/
    │   ├── last/                written every checkpoint_every steps, at the end, and on Ctrl-C
    │   │   ├── model.safetensors      trainable tensors only (hlcli.checkpoint.save_model)
    │   │   ├── config.json            how to rebuild the model (method, backbone, tasks, overrides)
    │   │   ├── README.md              model card
    │   │   ├── trainer_state.json     step, best metric, sampler state, Python/NumPy RNG state,
    │   │   │                          optimizer hyper-parameters, scheduler state (plain JSON)
    │   │   ├── optimizer.safetensors  AdamW moment tensors
    │   │   └── rng.safetensors        torch (and CUDA) RNG states
    │   └── best/                same files, from the evaluation with the best select_best_by metric
    ├── predictions/<split>/<task>.jsonl   written by hl evaluate: {"tokens", "gold", "pred"} per sentence
    └── eval.json                written by hl evaluate: {"<split>": {per-task and average scores}}

Every checkpoint folder is written with :func:`hlcli.io.atomic_dir` (filled beside its final
name, then swapped in atomically), so a crash, Ctrl-C or SIGKILL never leaves a half-written
checkpoint behind, and ``hl evaluate`` / ``hl tag`` can read a run that ``hl train`` is writing.
A kill may leave ``checkpoints/.last.*.tmp`` (ignored, removed on ``--resume``) or, where the
swap is not atomic, ``checkpoints/.last.old`` (the complete previous checkpoint, used if
``last/`` is missing).
Nothing in a run folder is a pickle: tensors are safetensors, everything else JSON.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Sequence

from hlcli.errors import HLError
from hlcli.io import clean_stale, complete_dir

CONFIG = "config.json"
TRAIN_LOG = "train.log"
METRICS = "metrics.jsonl"
CHECKPOINTS = "checkpoints"
LAST = "last"
BEST = "best"
PREDICTIONS = "predictions"
EVAL = "eval.json"

# Files inside a checkpoint folder beside what hlcli.checkpoint.save_model writes.
MODEL_WEIGHTS = "model.safetensors"
TRAINER_STATE = "trainer_state.json"
OPTIMIZER = "optimizer.safetensors"
RNG = "rng.safetensors"


def default_run_dir(method: str, tasks: list[str], fraction: float, *, root: str | Path = "runs", now: float | None = None) -> Path:
    """``runs/<method>-<task+task>-<fraction>-<YYYYmmdd-HHMMSS>``."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    return Path(root) / f"{method}-{'+'.join(tasks)}-{fraction:g}-{stamp}"


def checkpoint_dir(run_dir: str | Path, which: str = LAST) -> Path:
    """Where ``which`` is, or its complete old copy while a (killed) swap left it missing."""
    return complete_dir(Path(run_dir) / CHECKPOINTS / which)


def repair_checkpoints(run_dir: str | Path) -> None:
    """Undo what a killed ``hl train`` left in ``checkpoints/`` (only the run's writer may call this)."""
    for which in (LAST, BEST):
        clean_stale(Path(run_dir) / CHECKPOINTS / which)


def is_run_dir(path: str | Path) -> bool:
    return (Path(path) / CONFIG).is_file() and (Path(path) / CHECKPOINTS).is_dir()


def is_checkpoint_dir(path: str | Path) -> bool:
    return (Path(path) / MODEL_WEIGHTS).is_file()


def resolve_checkpoint(path: str | Path) -> tuple[Path, Path | None]:
    """A run folder or a checkpoint folder → ``(checkpoint folder, run folder or None)``.

    A run folder means its ``checkpoints/best`` (``last`` if no evaluation ran yet).
    """
    path = complete_dir(path)
    if not path.exists():
        raise HLError("no such run or checkpoint folder", path=path)
    if is_run_dir(path):
        for which in (BEST, LAST):
            candidate = checkpoint_dir(path, which)
            if is_checkpoint_dir(candidate):
                return candidate, path
        raise HLError("run folder has no checkpoint yet", path=path, expected=f"{CHECKPOINTS}/{BEST}/{MODEL_WEIGHTS}")
    if is_checkpoint_dir(path):
        run = path.parent.parent if path.parent.name == CHECKPOINTS and is_run_dir(path.parent.parent) else None
        return path, run
    raise HLError(
        "not a run folder or a checkpoint folder",
        path=path,
        expected=f"a folder with {CONFIG} and {CHECKPOINTS}/, or one with {MODEL_WEIGHTS}",
    )


def checkpoint_step(folder: str | Path) -> int:
    """The optimizer step a checkpoint folder was written at (its ``trainer_state.json``)."""
    import json

    from hlcli.errors import HLError

    path = Path(folder) / TRAINER_STATE
    try:
        return int(json.loads(path.read_text(encoding="utf-8"))["step"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise HLError(f"unreadable trainer state: {error}", path=path) from None


# -- the run's logs: train.log (text) and metrics.jsonl (JSON records), appended as training goes -----
def append_log(run_dir: Path, line: str) -> None:
    with open(Path(run_dir) / TRAIN_LOG, "a", encoding="utf-8") as handle:
        handle.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {line}\n")


def append_metrics(run_dir: Path, record: dict) -> None:
    import json

    with open(Path(run_dir) / METRICS, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record, ensure_ascii=False) + "\n")


def truncate_metrics(run_dir: Path, step: int) -> None:
    """Drop records written after the checkpoint a run resumes from: they will be produced again."""
    import json

    from hlcli.io import atomic_write

    path = Path(run_dir) / METRICS
    if not path.exists():
        return
    kept = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            if json.loads(line)["step"] <= step:
                kept.append(line)
        except (ValueError, KeyError, TypeError):  # a line cut short by a kill
            continue
    with atomic_write(path) as handle:
        handle.writelines(line + "\n" for line in kept)


def latest_run(tasks: Sequence[str] = (), *, root: str | Path = "runs") -> Path | None:
    """The most recently finished run folder under ``root`` trained on every one of ``tasks``, or None.

    Finished: ``checkpoints/last`` reached the run's ``max_steps`` (an interrupted run's weights
    are not what its user would expect a command to pick on its own). Recency: when that
    checkpoint was written.
    """
    found: list[tuple[float, Path]] = []
    for folder in Path(root).glob("*"):
        config = finished_config(folder)
        if config is not None and set(tasks) <= set(config["tasks"]):
            found.append(((checkpoint_dir(folder, LAST) / TRAINER_STATE).stat().st_mtime, folder))
    return max(found)[1] if found else None


def finished_config(folder: str | Path) -> dict | None:
    """The run's recorded config if ``checkpoints/last`` reached its ``max_steps``, else None
    (an interrupted run, or not a run folder of ours)."""
    try:
        config = json.loads((Path(folder) / CONFIG).read_text(encoding="utf-8"))
        return config if checkpoint_step(checkpoint_dir(folder, LAST)) >= config["max_steps"] else None
    except (OSError, ValueError, KeyError, TypeError, HLError):
        return None
