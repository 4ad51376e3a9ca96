"""``hl data download`` against a loopback HTTP server (127.0.0.1, in this process).

The server serves files the tests build from ``../shared/data`` in the upstream layouts
(MIT files as ``tag<TAB>token``, mTOP and mTOD as zip archives), mirrored as
``BASE/<host>/<path>`` of the real URLs. Scenarios live in sibling folders under one root:
``good/`` (everything), ``missing/`` (a 404), ``truncated/`` (half a zip), ``short/`` (ATIS with
a sentence missing). Nothing contacts any other address.
"""

from __future__ import annotations

import functools
import json
import shutil
import threading
import zipfile
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from _cli import invoke
from hlcli.data.download import MANIFEST, SOURCES, TABLE2
from hlcli.data.cache import sha256_file
from hlcli.errors import HLError

MIT = {
    "movie/engtrain.bio": "mit_movie/engtrain.bio.txt",
    "movie/engtest.bio": "mit_movie/engtest.bio.txt",
    "movie/trivia10k13train.bio": "mit_movie_trivia/trivia10k13train.bio",
    "movie/trivia10k13test.bio": "mit_movie_trivia/trivia10k13test.bio",
    "restaurant/restauranttrain.bio": "mit_restaurant/restauranttrain.bio",
    "restaurant/restauranttest.bio": "mit_restaurant/restauranttest.bio",
}


def _tag_first(text: str) -> str:
    """The shared Movie copy is ``token<TAB>tag``; the MIT release is ``tag<TAB>token``."""
    return "\n".join("\t".join(reversed(line.split("\t"))) if line else line for line in text.split("\n"))


def build_mirror(root: Path, data: Path) -> Path:
    """Upstream layouts of all seven corpora under ``root`` (host/path of each URL)."""
    for corpus in ("atis", "snips"):
        for split in ("train", "valid", "test"):
            target = root / "github.com/MiuLab/SlotGated-SLU/raw/61f0307c/data" / corpus / split
            shutil.copytree(data / corpus / split, target)
    mit = root / "groups.csail.mit.edu/sls/downloads"
    for upstream, shared in MIT.items():
        (mit / upstream).parent.mkdir(parents=True, exist_ok=True)
        text = (data / shared).read_bytes()
        if shared.startswith("mit_movie/"):
            text = _tag_first(text.decode("utf-8")).encode("utf-8")
        (mit / upstream).write_bytes(text)
    for url, folder, prefix in (
        ("dl.fbaipublicfiles.com/mtop/mtop.zip", data / "mtop", "mtop/"),
        ("fb.me/multilingual_task_oriented_data", data / "mtod", ""),
    ):
        (root / url).parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(root / url, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in sorted((folder / "en").iterdir()):
                archive.write(path, f"{prefix}en/{path.name}")
    return root


@pytest.fixture(scope="module")
def server(tmp_path_factory, data_dir):
    """``(base URL of the served root, root folder)``; scenarios are subfolders of the root."""
    root = tmp_path_factory.mktemp("mirror")
    build_mirror(root / "good", data_dir)
    handler = functools.partial(_QuietHandler, directory=str(root))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", root
    httpd.shutdown()
    httpd.server_close()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # keep pytest's output clean
        pass


def scenario(root: Path, name: str, corpus_paths: list[str]) -> Path:
    """A copy of some of ``good/`` (paths relative to it) as scenario ``name``."""
    for path in corpus_paths:
        source, target = root / "good" / path, root / name / path
        target.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if source.is_dir() else shutil.copyfile)(source, target)
    return root / name


def test_download_recreates_table2_then_skips(server, tmp_path, data_dir):
    base, _ = server
    target = tmp_path / "corpora"
    result = invoke("data", "download", "--data-dir", target, "--base-url", f"{base}/good")
    assert result.exit_code == 0, result.output
    assert result.stdout.count("downloaded and verified") == 7
    stats = invoke("data", "stats", "--data-dir", target, "--format", "json")
    assert stats.exit_code == 0, stats.output
    rows = {row["task"]: row for row in json.loads(stats.stdout)}
    for task, counts in TABLE2.items():
        if "train+val" in counts:
            assert (rows[task]["train"] + rows[task]["val"], rows[task]["test"]) == (counts["train+val"], counts["test"])
        else:
            assert (rows[task]["train"], rows[task]["val"], rows[task]["test"]) == (counts["train"], counts["val"], counts["test"])
    # ... the same table as from the shared copy (label counts included).
    shared = invoke("data", "stats", "--data-dir", data_dir, "--format", "json")
    assert json.loads(shared.stdout) == list(rows.values())
    table = invoke("data", "stats", "--data-dir", target)
    assert "│ ATIS        │  4,478 │   500 │   893 │     83 │" in table.stdout

    manifest = json.loads((target / MANIFEST).read_text())
    assert set(manifest) == set(SOURCES)
    for relative, digest in manifest["atis"]["files"].items():
        assert sha256_file(target / relative) == digest
    assert sorted(p.name for p in target.iterdir()) == sorted(
        ["atis", "snips", "mit_movie", "mit_movie_trivia", "mit_restaurant", "mtop", "mtod", MANIFEST]
    )

    again = invoke("data", "download", "atis", "movie", "--data-dir", target, "--base-url", f"{base}/good")
    assert again.exit_code == 0 and again.stdout.count("present and valid, skipped") == 2
    forced = invoke("data", "download", "atis", "--force", "--data-dir", target, "--base-url", f"{base}/good")
    assert forced.exit_code == 0 and "atis: downloaded and verified" in forced.stdout


def assert_failed_cleanly(result, target: Path, message: str) -> None:
    assert result.exit_code == 1, result.output
    assert result.stderr.strip().count("\n") == 0, result.stderr  # one line
    assert message in " ".join(result.stderr.split()), result.stderr
    assert not target.exists() or list(target.iterdir()) == []  # nothing half-written


def test_http_404(server, tmp_path):
    base, root = server
    scenario(root, "missing", ["groups.csail.mit.edu/sls/downloads/restaurant/restauranttrain.bio"])
    target = tmp_path / "corpora"
    result = invoke("data", "download", "restaurant", "--data-dir", target, "--base-url", f"{base}/missing")
    url = f"{base}/missing/groups.csail.mit.edu/sls/downloads/restaurant/restauranttest.bio"
    assert_failed_cleanly(result, target, f"error: {url}: HTTP error 404 File not found (expected the file at its public release location)")


def test_truncated_archive(server, tmp_path):
    base, root = server
    folder = scenario(root, "truncated", [])
    archive = (root / "good/dl.fbaipublicfiles.com/mtop/mtop.zip").read_bytes()
    (folder / "dl.fbaipublicfiles.com/mtop").mkdir(parents=True)
    (folder / "dl.fbaipublicfiles.com/mtop/mtop.zip").write_bytes(archive[: len(archive) // 2])
    target = tmp_path / "corpora"
    result = invoke("data", "download", "mtop", "--data-dir", target, "--base-url", f"{base}/truncated")
    url = f"{base}/truncated/dl.fbaipublicfiles.com/mtop/mtop.zip"
    assert_failed_cleanly(result, target, f"error: {url}: truncated or damaged archive")
    assert "(expected a complete zip archive)" in result.stderr


def test_missing_sentence_fails_the_table2_check(server, tmp_path):
    base, root = server
    goo = "github.com/MiuLab/SlotGated-SLU/raw/61f0307c/data/atis"
    folder = scenario(root, "short", [goo])
    for name in ("seq.in", "seq.out", "label"):
        path = folder / goo / "train" / name
        path.write_text("".join(path.read_text().splitlines(keepends=True)[:-1]))
    target = tmp_path / "corpora"
    result = invoke("data", "download", "atis", "--data-dir", target, "--base-url", f"{base}/short")
    shown = target.resolve() / "atis" / "train"
    assert_failed_cleanly(result, target, f"error: {shown}: ATIS train: 4,477 sentences (expected 4,478, the paper's Table 2)")


def test_no_network(tmp_path):
    import socket

    with socket.socket() as sock:  # a loopback port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    target = tmp_path / "corpora"
    result = invoke("data", "download", "movie", "--data-dir", target, "--base-url", f"http://127.0.0.1:{port}")
    assert_failed_cleanly(result, target, f"error: http://127.0.0.1:{port}/groups.csail.mit.edu/sls/downloads/movie/engtrain.bio: cannot download:")
    assert "(expected network access; on an offline machine pass --data-dir" in " ".join(result.stderr.split())


def test_unknown_corpus(tmp_path):
    result = invoke("data", "download", "wnut", "--data-dir", tmp_path)
    assert result.exit_code == 2
    assert "unknown corpus 'wnut'; known corpora: atis, snips, movie, movietrivia, restaurant, mtop, mtod" in result.stderr


class _RangeHandler(SimpleHTTPRequestHandler):
    """Serves ``Range: bytes=N-`` with 206 (SimpleHTTPRequestHandler ignores Range), counting requests."""

    ranges: list[str] = []

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        if self.path.endswith("/dropped"):  # the connection drops half-way through the body
            self.send_response(200)
            self.send_header("Content-Length", "2000")
            self.end_headers()
            self.wfile.write(b"x" * 1000)
            return
        wanted = self.headers.get("Range")
        if not wanted:
            return super().do_GET()
        type(self).ranges.append(wanted)
        body = Path(self.translate_path(self.path)).read_bytes()[int(wanted.removeprefix("bytes=").rstrip("-")) :]
        self.send_response(206)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_interrupted_download_resumes_with_a_range_request(server, tmp_path, monkeypatch):
    from hlcli.data.download import _cache_name, _fetch, _no_progress

    _, root = server
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_RangeHandler, directory=str(root / "good")))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/groups.csail.mit.edu/sls/downloads/restaurant/restauranttest.bio"
        whole = (root / "good/groups.csail.mit.edu/sls/downloads/restaurant/restauranttest.bio").read_bytes()
        cache = tmp_path / "downloads"
        cache.mkdir()
        (cache / (_cache_name(url) + ".part")).write_bytes(whole[:1000])  # what a killed run left
        path = _fetch(url, cache, force=False, progress=_no_progress)
        assert path.read_bytes() == whole and _RangeHandler.ranges == ["bytes=1000-"]
        assert not (cache / (_cache_name(url) + ".part")).exists()

        dropped = f"http://127.0.0.1:{httpd.server_address[1]}/dropped"
        with pytest.raises(HLError) as error:
            _fetch(dropped, cache, force=False, progress=_no_progress)
        assert str(error.value) == f"{dropped}: download cut short: 1,000 of 2,000 bytes (expected the whole file; run the command again to resume)"
        assert (cache / (_cache_name(dropped) + ".part")).stat().st_size == 1000  # kept for the next run
    finally:
        httpd.shutdown()
        httpd.server_close()
