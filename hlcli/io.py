"""Atomic file and folder writes: a failed or killed run never leaves a partial file."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import glob
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import IO, Any, Iterator

from hlcli.errors import HLError


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """Write to a temporary file beside ``path`` and rename it into place on success.

    ``path == "-"`` writes to stdout instead (nothing to make atomic there).
    """
    if os.fspath(path) == "-":
        if "b" in mode:
            yield sys.stdout.buffer
        else:
            yield sys.stdout
        sys.stdout.flush()
        return
    target = Path(path)
    _make_parent(target)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else encoding) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_json(path: str | os.PathLike, data: Any) -> None:
    with atomic_write(path) as handle:
        json.dump(data, handle, indent=2, ensure_ascii=False)
        handle.write("\n")


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Fill a temporary folder beside ``path``; on success swap it into place.

    Readers never see a half-written folder: either the old one or the complete new one, at any
    moment, even if the writer is killed (SIGKILL) half-way. On Linux the swap is one atomic
    ``renameat2(RENAME_EXCHANGE)``, so ``path`` never disappears; elsewhere the old folder is
    first renamed to ``.<name>.old`` and :func:`complete_dir` finds it during that short window.
    A kill can leave a ``.<name>.*.tmp`` folder behind: never read, removed by :func:`clean_stale`.
    """
    target = Path(path)
    _make_parent(target)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        yield tmp
        _fsync_dir(tmp)
        if not target.exists():
            os.replace(tmp, target)
        elif _exchange(tmp, target):
            shutil.rmtree(tmp, ignore_errors=True)  # now holds the old folder
        else:
            old = _old(target)
            # ``.old`` is only ever a complete folder while ``target`` is missing, so a stale one can go.
            shutil.rmtree(old, ignore_errors=True)
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        _fsync_dir(target.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def complete_dir(path: str | os.PathLike) -> Path:
    """``path``, or the complete old folder that :func:`atomic_dir` left while swapping (killed or not)."""
    target = Path(path)
    if not target.exists() and _old(target).is_dir():
        return _old(target)
    return target


def clean_stale(path: str | os.PathLike) -> None:
    """Repair what a killed :func:`atomic_dir` left beside ``path`` (only for its one writer).

    A missing ``path`` with a ``.<name>.old`` is the old folder, renamed back; ``.<name>.*.tmp``
    folders are unfinished writes and are deleted, as is a ``.old`` beside an existing ``path``.
    """
    target = Path(path)
    old = _old(target)
    if old.is_dir():
        if target.exists():
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(old, target)
    if target.parent.is_dir():
        for leftover in target.parent.glob(f".{glob.escape(target.name)}.*.tmp"):
            if leftover.is_dir():
                shutil.rmtree(leftover, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    leftover.unlink()


@contextlib.contextmanager
def locked(path: str | os.PathLike) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``path`` (created if missing) for a read-modify-write.

    Two ``hl evaluate`` of one run (say val and test) both merge their split into ``eval.json``;
    without the lock the later write could drop the earlier split. POSIX only (``fcntl``);
    elsewhere this is a no-op and the race stays.
    """
    try:
        import fcntl
    except ImportError:  # Windows
        yield
        return
    _make_parent(Path(path))
    with open(path, "a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _make_parent(target: Path) -> None:
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise HLError("a file is in the way", path=target.parent, expected=f"a folder to write {target.name} into") from None


def _old(target: Path) -> Path:
    return target.with_name(f".{target.name}.old")


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux ``renameat2`` with ``RENAME_EXCHANGE``); False if unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):  # libc without renameat2 (glibc < 2.28, musl)
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    error = ctypes.get_errno()
    if error in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.EPERM):  # kernel/filesystem without it
        return False
    raise OSError(error, os.strerror(error), os.fspath(b))


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        for child in path.iterdir():
            if child.is_file():
                with open(child, "rb") as handle:
                    os.fsync(handle.fileno())
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
