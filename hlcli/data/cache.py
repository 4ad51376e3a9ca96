"""Parsed data kept while its files are unchanged on disk: the one data cache of a process.

Reading a corpus takes seconds (mTOD: 43,000 sentences) and one command reads the same splits
several times (training: train and val of every task; ``hl convert``: every split). A result is
kept under its key *and* the identity of the files it was read from (path, size, modification
time in ns, inode), so a file changed, replaced or added on disk is read again, and an own task's
recorded SHA-256 (:func:`hlcli.data.sources.load_source`) is then that of the new content.
A change that keeps a file's size and modification time (a clock set back by hand) goes unseen.
:func:`sha256_file` is the content identity that own tasks record (and ``hl data download``'s manifest).
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from pathlib import Path
from typing import Any

MAX_ENTRIES = 32  # results kept (the seven corpora and a few own tasks, under two or three data folders)


def file_identity(paths: Iterable[Path | str]) -> tuple:
    """(path, size, mtime_ns, inode) of every file at or below ``paths``; a missing path is (path, None)."""
    identity: list[tuple] = []
    for path in map(Path, paths):
        try:
            files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
            for file in files:
                stat = file.stat()
                identity.append((str(file), stat.st_size, stat.st_mtime_ns, stat.st_ino))
        except OSError:  # not there (yet): reading it raises the reader's own error, and nothing is kept
            identity.append((str(path), None))
    return tuple(identity)


def sha256_file(path: Path) -> str:
    """SHA-256 of a file; of a folder (goo split), of its files' digests in name order."""
    if path.is_dir():
        digests = "".join(sha256_file(f) for f in sorted(path.iterdir()) if f.is_file())
        return hashlib.sha256(digests.encode()).hexdigest()
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class ReadCache:
    """``get(key, paths, read)``: ``read()``'s result, read again when a file below ``paths`` changed."""

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[Hashable, tuple[tuple, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, paths: Iterable[Path | str], read: Callable[[], Any]) -> Any:
        identity = file_identity(paths)  # before reading: a change made meanwhile is seen next time
        with self._lock:
            kept = self._entries.get(key)
            if kept is not None and kept[0] == identity:
                self._entries.move_to_end(key)
                return kept[1]
        value = read()
        with self._lock:
            self._entries[key] = (identity, value)  # replaces the result of the files as they were
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return value

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


READS = ReadCache()


def clear() -> None:
    """Forget every kept result (a benchmark timing a cold read; files changed behind an unchanged mtime)."""
    READS.clear()
