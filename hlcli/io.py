"""Atomic file and folder writes: a failed or killed run never leaves a partial file.

An OS error while writing (disk full, permission denied, read-only file system, a folder where the
file should go) is raised as :class:`WriteError`, which names the path the caller asked for, never
the temporary file beside it. Files and folders get the permissions ``open()`` / ``mkdir()`` would
give them (the umask, or an existing file's mode), not ``tempfile``'s private 0600/0700.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import glob
import json
import os
import re
import shutil
import stat
import sys
import tempfile
from pathlib import Path
from typing import IO, Any, Callable, Iterator

from hlcli.errors import HLError

# Where a long call (train, adapt, compare) sends its progress lines: one line of text per call
# (the CLI prints each on stderr; a library caller may collect them, or pass nothing).
Log = Callable[[str], None]

WRITE_HINT = "check the path, its permissions and free space"
# How safetensors (Rust) reports an OS error: "... No space left on device (os error 28)".
_RUST_OS_ERROR = re.compile(r"\(os error (\d+)\)")


class WriteError(HLError):
    """An OS error while writing ``path``: ``<path>: <system message>; check the path, ...`` (exit 1)."""

    def __init__(self, path: str | os.PathLike, error: OSError) -> None:
        self.reason = error.strerror or str(error)
        super().__init__(self.reason, path=path, hint=WRITE_HINT)


def os_error(error: BaseException) -> OSError | None:
    """``error`` as an OSError: itself, or the OS error inside a safetensors error; None otherwise."""
    if isinstance(error, OSError):
        return error
    match = _RUST_OS_ERROR.search(str(error)) if type(error).__name__ == "SafetensorError" else None
    if match:
        code = int(match.group(1))
        return OSError(code, os.strerror(code))
    return None


def _about(error: OSError, temporary: str | os.PathLike) -> bool:
    """Whether an OS error raised while filling ``temporary`` concerns it (no file named, or one inside it)."""
    names = [os.fspath(n) for n in (error.filename, getattr(error, "filename2", None)) if n is not None]
    inside = os.fspath(temporary)
    return not names or any(n == inside or n.startswith(inside + os.sep) for n in names)


@contextlib.contextmanager
def atomic_write(
    path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8", *, parents: bool = True
) -> Iterator[IO]:
    """Write to a temporary file beside ``path`` and rename it into place on success.

    ``path == "-"`` writes to stdout instead (nothing to make atomic there). ``parents=False``: the
    folder must exist (a missing one is a :class:`WriteError`, never created), for a file that
    belongs inside a folder another process may replace (a checkpoint's model card).
    """
    if os.fspath(path) == "-":
        if "b" in mode:
            yield sys.stdout.buffer
        else:
            yield sys.stdout
        sys.stdout.flush()
        return
    target = Path(path)
    if parents:
        _make_parent(target)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as error:  # permission denied, read-only file system: name the user's path
        raise WriteError(target, error) from None
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else encoding) as handle:
            os.fchmod(handle.fileno(), _file_mode(target))  # mkstemp's 0600 → what open() would give
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException as error:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(error, OSError) and _about(error, tmp):  # disk full, a folder in the way, ...
            raise WriteError(target, error) from None
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
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp's 0700 → what mkdir() would give
    except OSError as error:
        raise WriteError(target, error) from None
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
    except BaseException as error:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(error, WriteError) and _about(OSError(0, "", error.path), tmp):  # a file inside tmp
            raise WriteError(target, OSError(0, error.reason)) from None
        found = os_error(error)
        if found is not None and (found is not error or _about(found, tmp)):
            raise WriteError(target, found) from None
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


def locked(path: str | os.PathLike):
    """An exclusive lock on ``path`` (created if missing) for a read-modify-write: ``with locked(p): ...``.

    Two ``hl evaluate`` of one run (say val and test) both merge their split into ``eval.json``;
    without the lock the later write could drop the earlier split. filelock's lock: ``flock`` on
    POSIX, ``msvcrt`` on Windows.
    """
    from filelock import FileLock

    _make_parent(Path(path))
    return FileLock(os.fspath(path), is_singleton=False, thread_local=False)


def _make_parent(target: Path) -> None:
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise HLError(
            "a file is in the way", path=target.parent, expected=f"a folder to write {target.name} into"
        ) from None
    except OSError as error:
        raise WriteError(target, error) from None


def _umask() -> int:
    """The process umask, read without changing it where Linux shows it (``os.umask`` sets it)."""
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    current = os.umask(0o022)
    os.umask(current)
    return current


def _file_mode(target: Path) -> int:
    """What ``open(target, "w")`` would leave: an existing file's mode, else 0666 less the umask."""
    try:
        return stat.S_IMODE(os.stat(target).st_mode)
    except OSError:
        return 0o666 & ~_umask()


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
