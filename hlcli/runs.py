"""The run folder: one fixed layout written by ``hl train`` and read by ``hl evaluate`` / ``hl tag``.

::

    runs/hyperloader-atis+snips-0.1-20240701-120000/
    ├── config.json              the fully resolved TrainConfig (recipe + flags); resume reads it
    ├── train.log                plain-text lines: step, loss, lr; one summary line per evaluation
    ├── metrics.jsonl            the same as JSON records ({"step", "loss", "lr"} / {"step", "eval": {...}})
    ├── .lock                    while hl train writes the run: its lock and process id (RunLock)
    ├── checkpoints/
    │   ├── last/                written every checkpoint_every steps, at the end, and on Ctrl-C/SIGTERM/SIGHUP
    │   │   ├── model.safetensors      trainable tensors only (hlcli.checkpoint.save_model)
    │   │   ├── config.json            how to rebuild the model (method, backbone, tasks, overrides)
    │   │   ├── README.md              model card
    │   │   ├── trainer_state.json     step, best metric, sampler state, Python/NumPy RNG state,
    │   │   │                          optimizer hyper-parameters, scheduler state (plain JSON)
    │   │   ├── optimizer.safetensors  AdamW moment tensors
    │   │   └── rng.safetensors        torch (and CUDA) RNG states
    │   └── best/                same files, from the evaluation with the best select_best_by metric
    ├── predictions/<split>/<task>.jsonl   written by hl evaluate: {"tokens", "gold", "pred"} per sentence
    ├── diverged.json            hl compare, a grid point whose training diverged: {"error": "non-finite ..."}
    └── eval.json                written by hl evaluate: {"<split>": {per-task and average scores}}

Every checkpoint folder is written with :func:`hlcli.io.atomic_dir` (filled beside its final
name, then swapped in atomically), so a crash, Ctrl-C or SIGKILL never leaves a half-written
checkpoint behind, and ``hl evaluate`` / ``hl tag`` can read a run that ``hl train`` is writing.
A kill may leave ``checkpoints/.last.*.tmp`` (ignored, removed on ``--resume``) or, where the
swap is not atomic, ``checkpoints/.last.old`` (the complete previous checkpoint, used if
``last/`` is missing).
Nothing in a run folder is a pickle: tensors are safetensors, everything else JSON.

One writer per run folder: ``hl train`` holds :class:`RunLock` (an exclusive ``filelock`` on
``.lock``, which holds its process id) from before its first write until it ends, so a second
``hl train`` / ``--resume`` of the same folder fails at once; readers take no lock.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path
from typing import Sequence

from hlcli.data.corpora import task_fraction
from hlcli.errors import HLError, RunBusy
from hlcli.io import WriteError, atomic_write, clean_stale, complete_dir, write_json

CONFIG = "config.json"
TRAIN_LOG = "train.log"
METRICS = "metrics.jsonl"
CHECKPOINTS = "checkpoints"
LAST = "last"
BEST = "best"
PREDICTIONS = "predictions"
EVAL = "eval.json"
DIVERGED = "diverged.json"

# Files inside a checkpoint folder: the model, as hlcli.checkpoint.save_model writes it ...
MODEL_WEIGHTS = "model.safetensors"  # trainable tensors
MODEL_CONFIG = CONFIG  # how to rebuild the model (the same name as the run's own config.json)
MODEL_CARD = "README.md"
# ... and beside it the training state (hlcli.checkpoint.write_training_state).
TRAINER_STATE = "trainer_state.json"
OPTIMIZER = "optimizer.safetensors"
RNG = "rng.safetensors"
# What --resume needs beside the weights: a checkpoint without these can be evaluated, not continued.
TRAINING_STATE_FILES = (TRAINER_STATE, OPTIMIZER, RNG)
LOCK = ".lock"


def default_run_dir(method: str, tasks: list[str], fraction: float | dict[str, float], *, root: str | Path = "runs",
                    now: float | None = None) -> Path:
    """``runs/<method>-<task+task>-<fraction>-<YYYYmmdd-HHMMSS>`` (per-task fractions: ``0.1+1``, in task order)."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    return Path(root) / f"{method}-{'+'.join(tasks)}-{fraction_label(fraction, tasks)}-{stamp}"


def fraction_label(fraction: float | dict[str, float], tasks: list[str]) -> str:
    """``0.1``, or per task in task order ``0.1+1`` (run folder names)."""
    if not isinstance(fraction, dict):
        return f"{fraction:g}"
    return "+".join(f"{task_fraction(fraction, task):g}" for task in tasks)


def checkpoint_dir(run_dir: str | Path, which: str = LAST) -> Path:
    """Where ``which`` is, or its complete old copy while a (killed) swap left it missing."""
    return complete_dir(Path(run_dir) / CHECKPOINTS / which)


def repair_checkpoints(run_dir: str | Path) -> None:
    """Undo what a killed ``hl train`` left in ``checkpoints/`` (only the run's writer may call this)."""
    for which in (LAST, BEST):
        clean_stale(Path(run_dir) / CHECKPOINTS / which)


def resume_point(run_dir: str | Path) -> Path | None:
    """The checkpoint ``hl train --resume`` continues from: ``last``, else ``best`` (both hold the full
    training state); None when the run has no checkpoint at all (killed before its first one).

    Nothing is ever replaced by a resume that cannot continue: a checkpoint folder without readable
    weights, or a ``best`` without its training state when there is no ``last``, is refused with an
    HLError saying what is there and how to start over deliberately (``--restart``).
    """
    run_dir = Path(run_dir)
    restart = f"restore it, or start over deliberately: hl train --resume {run_dir} --restart"
    found: dict[str, Path] = {}
    for which in (LAST, BEST):
        folder = checkpoint_dir(run_dir, which)
        if not folder.exists():
            continue
        weights = folder / MODEL_WEIGHTS
        if not weights.is_file():
            said = _said_step(folder)
            says = f" (its {TRAINER_STATE} says step {said})" if said is not None else ""
            raise HLError(f"damaged checkpoint: no {MODEL_WEIGHTS}{says}", path=folder,
                          hint=f"nothing was changed; {restart}")
        problem = _unreadable_tensors(weights)
        if problem:
            raise HLError(f"damaged checkpoint: unreadable tensors: {problem}", path=weights,
                          hint=f"nothing was changed; {restart}")
        found[which] = folder
    if LAST in found or BEST not in found:
        return found.get(LAST)
    best = found[BEST]
    missing = [name for name in TRAINING_STATE_FILES if not (best / name).is_file()]
    if missing:
        said = _said_step(best)
        step = f" (step {said})" if said is not None else ""
        raise HLError(f"no {CHECKPOINTS}/{LAST}, and {CHECKPOINTS}/{BEST}{step} cannot be resumed from: "
                      f"no {', '.join(missing)}", path=run_dir, hint=f"nothing was changed; {restart}")
    return best


def _said_step(folder: Path) -> int | None:
    try:
        return checkpoint_step(folder)
    except HLError:
        return None


def _unreadable_tensors(path: Path) -> str | None:
    """Why a safetensors file cannot be read (its header and sizes), or None; the tensors are not loaded."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            handle.keys()
    except Exception as error:  # safetensors raises its own error types for corrupt files
        return str(error) or type(error).__name__
    return None


class RunLock:
    """One writer per run folder: an exclusive lock on ``RUN/.lock`` (filelock: flock on POSIX), held
    from before ``hl train`` writes anything until it ends; the file holds the writer's process id.

    A second writer fails at once with ``RUN is being trained by process N``. The lock dies with its
    process (SIGKILL included), so a stale ``.lock`` never blocks a resume. Folders created to hold
    the lock are removed again by :meth:`release` if the run wrote nothing into them.
    """

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK
        self._lock = None
        self._created: list[Path] = []

    def acquire(self) -> RunLock:
        from filelock import FileLock, Timeout

        self._created = [p for p in (self.run_dir, *self.run_dir.parents) if not p.exists()]
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise HLError("a file is in the way", path=self.run_dir, expected="a folder for the run") from None
        except OSError as error:
            raise WriteError(self.run_dir, error) from None
        lock = FileLock(str(self.path), is_singleton=False, thread_local=False)
        try:
            lock.acquire(blocking=False)
            _write_pid(self.path)
        except Timeout:
            self._remove_created()
            hint = "wait for it to end or stop it; readers (hl evaluate, hl tag) may use the run meanwhile"
            raise RunBusy(self.run_dir, self._holder(), hint=hint) from None
        except OSError as error:
            if lock.is_locked:
                lock.release()
            self._remove_created()
            raise WriteError(self.run_dir, error) from None
        self._lock = lock
        return self

    def release(self) -> None:
        if self._lock is not None:
            with contextlib.suppress(OSError):
                self.path.unlink()  # while still held: a process that opened this file finds it unlinked and retries
            self._lock.release()
            self._lock = None
        self._remove_created()

    def _remove_created(self) -> None:
        """rmdir the folders acquire() created, innermost first, where they are still empty."""
        for folder in self._created:
            try:
                folder.rmdir()
            except OSError:
                break
        self._created = []

    def _holder(self) -> str:
        """The holder's process id from the lock file (it writes it right after taking the lock)."""
        deadline = time.monotonic() + 2.0
        while True:
            try:
                text = self.path.read_text(encoding="ascii").strip()
            except (OSError, UnicodeDecodeError):
                text = ""
            if text.isdigit() or time.monotonic() > deadline:
                return text if text.isdigit() else "another process"
            time.sleep(0.01)


def trainer_of(run_dir: str | Path) -> str | None:
    """Who trains ``run_dir`` now ("process N", N as its lock file says); None when nobody does.
    Looks only where a lock file exists, so a folder without one is never written to."""
    lock = RunLock(run_dir)
    if not lock.path.is_file():
        return None
    try:
        lock.acquire().release()  # (a lock file left by a killed process is removed on the way)
    except RunBusy as busy:
        return busy.who
    except HLError:  # a folder this user cannot write: nobody's lock can be tested, say nothing
        return None
    return None


def _write_pid(path: Path) -> None:
    """The holder's process id into its lock file (filelock 4 never truncates an existing lock file;
    under filelock 3 a refused writer may empty it, and the error then says "another process")."""
    fd = os.open(path, os.O_WRONLY)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode("ascii"))
    finally:
        os.close(fd)


def is_run_dir(path: str | Path) -> bool:
    return (Path(path) / CONFIG).is_file() and (Path(path) / CHECKPOINTS).is_dir()


def is_checkpoint_dir(path: str | Path) -> bool:
    return (Path(path) / MODEL_WEIGHTS).is_file()


def selected_checkpoint(run_dir: str | Path) -> str:
    """The run's ``select_checkpoint`` (``best`` or ``last``) from its ``config.json``; ``best`` for a
    run recorded before the setting existed (or an unreadable config, which its reader reports)."""
    try:
        chosen = json.loads((Path(run_dir) / CONFIG).read_text(encoding="utf-8")).get("select_checkpoint", BEST)
    except (OSError, ValueError, AttributeError):
        return BEST
    return LAST if chosen == LAST else BEST


def scoring_order(run_dir: str | Path) -> tuple[str, ...]:
    """The checkpoints a run is scored with, first found first: ``last`` alone, or ``best`` then ``last``."""
    return (LAST,) if selected_checkpoint(run_dir) == LAST else (BEST, LAST)


def resolve_checkpoint(path: str | Path) -> tuple[Path, Path | None]:
    """A run folder or a checkpoint folder → ``(checkpoint folder, run folder or None)``.

    A run folder means the checkpoint its ``select_checkpoint`` names: ``best`` (the default:
    ``checkpoints/best``, or ``last`` if no evaluation ran yet) or ``last`` (``checkpoints/last``
    only, the final model, as the authors' runs were scored).
    """
    path = complete_dir(path)
    if not path.exists():
        raise HLError("no such run or checkpoint folder", path=path)
    if is_run_dir(path):
        order = scoring_order(path)
        for which in order:
            candidate = checkpoint_dir(path, which)
            if is_checkpoint_dir(candidate):
                return candidate, path
        raise HLError("run folder has no checkpoint yet", path=path,
                      expected=f"{CHECKPOINTS}/{order[0]}/{MODEL_WEIGHTS}")
    if is_checkpoint_dir(path):
        run = path.parent.parent if path.parent.name == CHECKPOINTS and is_run_dir(path.parent.parent) else None
        return path, run
    raise HLError(
        "not a run folder or a checkpoint folder",
        path=path,
        expected=f"a folder with {CONFIG} and {CHECKPOINTS}/, or one with {MODEL_WEIGHTS}",
    )


def describe_checkpoint(checkpoint: str | Path) -> str:
    """What hl evaluate says it scored: ``last, step 65536 (select_checkpoint = "last")`` for a run's
    own checkpoint; the step alone for a checkpoint folder outside a run."""
    checkpoint = Path(checkpoint)
    try:
        step = f"step {checkpoint_step(checkpoint)}"
    except HLError:
        step = "step unknown"
    run = checkpoint.parent.parent
    if checkpoint.parent.name == CHECKPOINTS and is_run_dir(run):
        return f'{checkpoint.name}, {step} (select_checkpoint = "{selected_checkpoint(run)}")'
    return step


def step_of_checkpoint(folder: str | Path) -> int | None:
    """:func:`checkpoint_step`, or None for a folder without a readable trainer state (gone, or not
    written by ``hl train``)."""
    try:
        return checkpoint_step(folder)
    except HLError:
        return None


def checkpoint_step(folder: str | Path) -> int:
    """The optimizer step a checkpoint folder was written at (its ``trainer_state.json``)."""
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
    with open(Path(run_dir) / METRICS, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record, ensure_ascii=False) + "\n")


def truncate_metrics(run_dir: Path, step: int) -> None:
    """Drop records written after the checkpoint a run resumes from: they will be produced again."""
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


# -- a grid point that diverged (hl compare): recorded, so the comparison goes on without it ----------
def mark_diverged(run_dir: Path, error: str) -> None:
    write_json(Path(run_dir) / DIVERGED, {"error": error})


def diverged(run_dir: Path) -> str | None:
    """The error a diverged grid point stopped with (its ``diverged.json``); None for any other run."""
    try:
        return str(json.loads((Path(run_dir) / DIVERGED).read_text(encoding="utf-8"))["error"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
