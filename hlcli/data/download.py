"""``hl data download``: the paper's corpora from their original public release locations.

Each corpus is fetched file by file (:data:`SOURCES`), unpacked into the folder layout the
registry reads (:data:`hlcli.data.corpora.CORPORA`), and verified by parsing every split and
comparing the sentence counts with the paper's Table 2 (:data:`TABLE2`). The files are not
byte-identical to every copy in circulation (MIT Movie and mTOP circulate in derived forms), so
the count check is the integrity check; a SHA-256 manifest of what was fetched and written is kept
in the data folder (:data:`MANIFEST`).

Atomic and resumable: downloads go to ``$HL_CACHE_DIR/downloads`` (``.part`` files resumed with an
HTTP Range request, complete files reused), a corpus is unpacked into a temporary folder beside its
final place and swapped in only once verified, so the data folder never holds half a corpus.
The URLs could not be tried from the machine this was written on (no internet): they follow the
provenance table of the corpora, and the Table 2 check catches any upstream change.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import shutil
import urllib.error
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, ContextManager, Iterator

from hlcli.data.cache import sha256_file
from hlcli.data.corpora import CACHE_DIR_ENV, CORPORA, DATA_DIR_ENV, default_data_dir, read_corpus_folder
from hlcli.errors import HLError, UsageError
from hlcli.io import atomic_dir, write_json

BASE_URL_ENV = "HL_DOWNLOAD_BASE_URL"
MANIFEST = "hl-download-manifest.json"
CHUNK = 1 << 16
TIMEOUT_S = 60


@dataclass(frozen=True)
class Fetch:
    """One upstream file: its URL and what goes where (registry path → archive member suffix;
    ``None`` for a plain file, which is itself the content)."""

    url: str
    files: dict[str, str | None]


_MIUULAB = "https://github.com/MiuLab/SlotGated-SLU/raw/61f0307c/data"
_MIT = "https://groups.csail.mit.edu/sls/downloads"


def _goo(corpus: str) -> list[Fetch]:
    # ATIS and SNIPS in the Goo et al. 2018 split: the authors' repository (MiuLab/SlotGated-SLU,
    # pinned to the commit the paper's copies match), three line-aligned files per split.
    return [
        Fetch(f"{_MIUULAB}/{corpus}/{split}/{name}", {f"{split}/{name}": None})
        for split in ("train", "valid", "test")
        for name in ("seq.in", "seq.out", "label")
    ]


SOURCES: dict[str, list[Fetch]] = {
    "atis": _goo("atis"),
    "snips": _goo("snips"),
    # MIT SLS release pages (groups.csail.mit.edu/sls/downloads/): the original `tag<TAB>token`
    # files; the reader detects the column order, so they are stored under the registry's names.
    "movie": [
        Fetch(f"{_MIT}/movie/engtrain.bio", {"engtrain.bio.txt": None}),
        Fetch(f"{_MIT}/movie/engtest.bio", {"engtest.bio.txt": None}),
    ],
    "movietrivia": [
        Fetch(f"{_MIT}/movie/trivia10k13train.bio", {"trivia10k13train.bio": None}),
        Fetch(f"{_MIT}/movie/trivia10k13test.bio", {"trivia10k13test.bio": None}),
    ],
    "restaurant": [
        Fetch(f"{_MIT}/restaurant/restauranttrain.bio", {"restauranttrain.bio": None}),
        Fetch(f"{_MIT}/restaurant/restauranttest.bio", {"restauranttest.bio": None}),
    ],
    # mTOP (Li et al. 2021), Facebook's release archive (dl.fbaipublicfiles.com/mtop/): the
    # original 8-column files, which the mtop reader accepts as well as the derived 5-column form.
    "mtop": [
        Fetch(
            "https://dl.fbaipublicfiles.com/mtop/mtop.zip",
            {"en/train.txt": "en/train.txt", "en/eval.txt": "en/eval.txt", "en/test.txt": "en/test.txt"},
        )
    ],
    # Multilingual task-oriented dialog (Schuster et al. 2019): the release link of the paper
    # (fb.me/multilingual_task_oriented_data, a redirect to the archive on Facebook's file server).
    "mtod": [
        Fetch(
            "https://fb.me/multilingual_task_oriented_data",
            {name: name for name in ("en/train-en.tsv", "en/eval-en.tsv", "en/test-en.tsv")},
        )
    ],
}

# Sentences per split in the paper's Table 2. The MIT corpora release train and test only: their
# "train" is train + the 10 % held out as val.
TABLE2: dict[str, dict[str, int]] = {
    "atis": {"train": 4478, "val": 500, "test": 893},
    "snips": {"train": 13084, "val": 700, "test": 700},
    "movie": {"train+val": 9775, "test": 2443},
    "movietrivia": {"train+val": 7816, "test": 1953},
    "restaurant": {"train+val": 7660, "test": 1521},
    "mtop": {"train": 15667, "val": 2235, "test": 4386},
    "mtod": {"train": 30521, "val": 4181, "test": 8621},
}

# progress(label, total bytes or None) → a context whose value is advance(bytes).
Progress = Callable[[str, "int | None"], ContextManager[Callable[[int], None]]]


@dataclass
class DownloadResult:
    data_dir: Path
    fetched: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # already present and valid
    manifest: Path | None = None


@contextlib.contextmanager
def _no_progress(label: str, total: int | None) -> Iterator[Callable[[int], None]]:
    yield lambda n: None


def download(
    corpora: list[str] | None = None,
    *,
    data_dir: Path | str | None = None,
    force: bool = False,
    base_url: str | None = None,
    progress: Progress | None = None,
) -> DownloadResult:
    """Fetch, unpack and verify ``corpora`` (default: all seven) into ``data_dir``.

    ``base_url`` (or ``$HL_DOWNLOAD_BASE_URL``) replaces ``https://`` of every URL with
    ``BASE/`` — a mirror laid out as ``BASE/<host>/<path>`` (the tests' loopback server).
    """
    names = list(corpora or CORPORA)
    for name in names:
        if name not in SOURCES:
            raise UsageError(f"unknown corpus {name!r}; known corpora: {', '.join(SOURCES)}")
    root = Path(data_dir or os.environ.get(DATA_DIR_ENV) or default_data_dir()).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    root = root.resolve()
    base_url = base_url or os.environ.get(BASE_URL_ENV)
    result = DownloadResult(data_dir=root, manifest=root / MANIFEST)
    for name in names:
        if not force and _is_valid(root / CORPORA[name].folder, name):
            result.skipped.append(name)
            continue
        record = _fetch_corpus(name, root, force=force, base_url=base_url, progress=progress or _no_progress)
        _update_manifest(root / MANIFEST, name, record)
        result.fetched.append(name)
    # A corpus read earlier in this process and replaced here is read again: hlcli.data.cache keys on the files.
    return result


def _is_valid(folder: Path, name: str) -> bool:
    if not folder.is_dir():
        return False
    try:
        verify(folder, name)
    except HLError:
        return False
    return True


def verify(folder: Path, name: str) -> dict[str, int]:
    """Parse every split of corpus ``name`` in ``folder`` and check Table 2's sentence counts."""
    splits = read_corpus_folder(folder, name)
    counts = {split: len(examples) for split, examples in splits.items()}
    if "train+val" in TABLE2[name]:
        counts = {"train+val": counts["train"] + counts["val"], "test": counts["test"]}
    corpus = CORPORA[name]
    for split, expected in TABLE2[name].items():
        if counts[split] != expected:
            file = corpus.files["train" if split == "train+val" else split]
            raise HLError(
                f"{corpus.title} {split}: {counts[split]:,} sentences",
                path=folder / file,
                expected=f"{expected:,}, the paper's Table 2",
            )
    return counts


def _fetch_corpus(name: str, root: Path, *, force: bool, base_url: str | None, progress: Progress) -> dict:
    """Download, unpack into a temporary folder, verify, swap in; the manifest record."""
    cache = Path(os.environ.get(CACHE_DIR_ENV) or default_data_dir().parent) / "downloads"
    sources: dict[str, str] = {}
    with atomic_dir(root / CORPORA[name].folder) as staging:
        for fetch in SOURCES[name]:
            url = _mirror(fetch.url, base_url)
            blob = _fetch(url, cache, force=force, progress=progress)
            sources[url] = sha256_file(blob)
            _unpack(blob, fetch, staging, url=url)
        try:
            verify(staging, name)
        except HLError as error:  # a reader's error names the temporary folder: name the final place
            error.path = error.path and error.path.replace(str(staging), str(root / CORPORA[name].folder))
            raise
        files = {str(p.relative_to(staging)): sha256_file(p) for p in sorted(staging.rglob("*")) if p.is_file()}
    return {"sources": sources, "files": {f"{CORPORA[name].folder}/{k}": v for k, v in files.items()}}


def _mirror(url: str, base_url: str | None) -> str:
    return f"{base_url.rstrip('/')}/{url.removeprefix('https://')}" if base_url else url


def _cache_name(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()[:16] + "-" + (url.rstrip("/").rsplit("/", 1)[-1] or "file")


def _fetch(url: str, cache: Path, *, force: bool, progress: Progress) -> Path:
    """The complete file at ``url`` in ``cache``; a ``.part`` left by an interrupted run is resumed."""
    cache.mkdir(parents=True, exist_ok=True)
    final = cache / _cache_name(url)
    part = final.with_name(final.name + ".part")
    if force:
        final.unlink(missing_ok=True)
        part.unlink(missing_ok=True)
    if final.is_file():
        return final
    offset = part.stat().st_size if part.is_file() else 0
    headers = {"User-Agent": "hlcli", **({"Range": f"bytes={offset}-"} if offset else {})}
    request = urllib.request.Request(url, headers=headers)
    try:
        # https URLs from SOURCES or the user's mirror
        response = urllib.request.urlopen(request, timeout=TIMEOUT_S)  # noqa: S310
    except urllib.error.HTTPError as error:
        if error.code == 416 and offset:  # the .part is already whole (or stale): start over
            part.unlink()
            return _fetch(url, cache, force=force, progress=progress)
        raise HLError(
            f"HTTP error {error.code} {error.reason}", path=url, expected="the file at its public release location"
        ) from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise HLError(
            f"cannot download: {reason}",
            path=url,
            expected="network access; on an offline machine pass --data-dir to a folder that holds the corpora",
        ) from None
    with response:
        if offset and response.status != 206:  # the server ignored the Range header: whole file again
            offset = 0
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length is not None else None
        received = _receive(response, part, offset=offset, total=total, url=url, progress=progress)
    if total is not None and received != total:
        raise HLError(
            f"download cut short: {received:,} of {total:,} bytes",
            path=url,
            expected="the whole file; run the command again to resume",
        )
    part.replace(final)
    return final


def _receive(response, part: Path, *, offset: int, total: int | None, url: str, progress: Progress) -> int:
    received = offset
    with open(part, "ab" if offset else "wb") as handle, progress(url.rsplit("/", 1)[-1], total) as advance:
        advance(offset)
        while True:
            try:
                block = response.read(CHUNK)
            except (http.client.IncompleteRead, OSError) as error:
                raise HLError(
                    f"download cut short after {received:,} bytes ({type(error).__name__})",
                    path=url,
                    expected=f"{total:,} bytes; run the command again to resume" if total else "the whole file",
                ) from None
            if not block:
                return received
            handle.write(block)
            received += len(block)
            advance(len(block))


def _unpack(blob: Path, fetch: Fetch, staging: Path, *, url: str) -> None:
    """Copy a plain file, or extract the archive members ``fetch.files`` names, into ``staging``."""
    if all(member is None for member in fetch.files.values()):
        for target in fetch.files:
            (staging / target).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(blob, staging / target)
        return
    try:
        with zipfile.ZipFile(blob) as archive:
            members = [m for m in archive.namelist() if not m.endswith("/")]
            for target, suffix in fetch.files.items():
                matches = [m for m in members if m == suffix or m.endswith("/" + suffix)]
                if len(matches) != 1:
                    raise HLError(
                        f"archive holds {len(matches)} files named {suffix}",
                        path=url,
                        expected=f"exactly one */{suffix} in the release archive",
                    )
                (staging / target).parent.mkdir(parents=True, exist_ok=True)
                with archive.open(matches[0]) as source, open(staging / target, "wb") as out:
                    shutil.copyfileobj(source, out)
    except (zipfile.BadZipFile, EOFError, zlib.error) as error:
        blob.unlink(missing_ok=True)  # a damaged download must not be reused by the next run
        raise HLError(f"truncated or damaged archive ({error})", path=url, expected="a complete zip archive") from None


def _update_manifest(path: Path, name: str, record: dict) -> None:
    """Add ``name``'s record to the manifest, keeping the other corpora's."""
    import json

    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        manifest = {}
    manifest = manifest if isinstance(manifest, dict) else {}
    manifest[name] = record
    write_json(path, manifest)
