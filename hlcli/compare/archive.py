"""A comparison without its tensors: ``hl compare --archive DIR``.

A comparison's run folders hold two things of very different size: the tensors (each checkpoint's
weights, optimizer and random state: megabytes to gigabytes per run) and the record of what was
run and what it scored (settings, ``eval.json``, logs, predictions: kilobytes, a few megabytes of
predictions). The record is what a report cites, a reviewer re-tables and a colleague checks; it is
also all that a later ``hl compare`` needs from a finished run. So the archive keeps, for every
finished run (scored on some split, or a grid point that diverged), everything but the tensors,
with the predictions gzip-compressed (the intervals read either form: :mod:`hlcli.compare.stats`).

``DIR`` is itself a comparison folder: ``hl compare --recipe R --output-dir DIR --collect-only``
tables it with the same scores, intervals and tuning choices, and without ``--collect-only`` it
trains only what is missing (a run scored on validation only can still be scored on test only
where its weights are: an archive is made after the runs it needs are scored). Copying
``DIR/runs/*`` into a comparison folder that lost its runs continues the comparison from there.
"""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

from hlcli import runs
from hlcli.errors import UsageError
from hlcli.io import WriteError, atomic_dir

TENSOR_SUFFIX = ".safetensors"  # model, optimizer and random state: never archived


def archive_runs(source: str | Path, destination: str | Path) -> list[Path]:
    """Copy every finished run folder under ``source`` (a comparison's ``runs/``, or any folder of
    runs) to ``destination/runs/<its path under source>``, without tensors and with gzipped
    predictions; the archived folders.

    Each folder is written whole or not at all (:func:`hlcli.io.atomic_dir`), replacing an earlier
    archive of the same run, so an archive can be refreshed as a comparison goes on."""
    source, target_root = Path(source), Path(destination) / "runs"
    inside, outside = source.resolve(), target_root.resolve()
    if inside == outside or inside in outside.parents or outside in inside.parents:
        raise UsageError(f"--archive {destination}: an archive of {source} cannot share its folder",
                         expected="a folder outside the comparison's runs, which would lose their tensors")
    archived = []
    for run_dir in sorted(p.parent for p in source.rglob(runs.CONFIG) if _finished(p.parent)):
        archived.append(target_root / run_dir.relative_to(source))
        with atomic_dir(archived[-1]) as target:
            _copy_record(run_dir, target)
    return archived


def _finished(run_dir: Path) -> bool:
    return runs.is_run_dir(run_dir) and ((run_dir / runs.EVAL).is_file() or runs.diverged(run_dir) is not None)


def _copy_record(run_dir: Path, target: Path) -> None:
    for path in sorted(run_dir.rglob("*")):
        relative = path.relative_to(run_dir)
        if not path.is_file() or path.suffix == TENSOR_SUFFIX or _transient(relative):
            continue
        out = target / relative
        out.parent.mkdir(parents=True, exist_ok=True)
        try:
            if relative.parts[0] == runs.PREDICTIONS and path.suffix == ".jsonl":
                with path.open("rb") as raw, out.with_name(out.name + ".gz").open("wb") as file:
                    # (no name, mtime 0: the same predictions give the same bytes, archived again or not)
                    with gzip.GzipFile(fileobj=file, mode="wb", filename="", mtime=0) as packed:
                        shutil.copyfileobj(raw, packed)
            else:
                shutil.copy2(path, out)
        except OSError as error:
            raise WriteError(out, error) from None


def _transient(relative: Path) -> bool:
    """The lock of a process that trains the run, and what a killed write left: not the run's record."""
    return relative.name == runs.LOCK or any(part.startswith(".") for part in relative.parts)
