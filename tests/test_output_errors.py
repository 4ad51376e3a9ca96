"""docs/ERRORS.md: "other file-system errors (permission denied, disk full) | 1 |
``error: <path>: <system message>; check the path, its permissions and free space``", for the
output paths a user names: ``hl convert -o``, ``hl tag -o`` and ``hl evaluate --output``.

Real errors from the kernel, not simulated ones: a folder without write permission, and a tiny
tmpfs that is full. Each must give one line naming the path the user typed (not a hidden
temporary file), exit 1, and leave nothing behind in the folder. (``hl train``'s own writes are
tested in tests/test_robustness.py.)
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import subprocess
from pathlib import Path

import pytest

from _cli import invoke
from test_data_sources import conll_folder

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: tiny models, one torch thread

HINT = "; check the path, its permissions and free space"
SENTENCE = b"John lives in Paris\n"


@pytest.fixture(scope="module")
def run(tmp_path_factory, tiny_t5) -> Path:
    """A tiny T5 trained 2 steps on an own CoNLL folder (its test split is what hl evaluate scores)."""
    root = tmp_path_factory.mktemp("output-errors")
    data = conll_folder(root / "mine", train=12, dev=3, test=3)
    result = invoke("train", "--tasks", f"mine={data}", "--model", tiny_t5, "--batch-size", 4, "--warmup-steps", 0,
                    "--max-steps", 2, "--eval-every", 2, "--max-val-examples", 2, "--no-progress",
                    "--output-dir", root / "run")  # fmt: skip
    assert result.exit_code == 0, result.output
    return root / "run"


def commands(run: Path, target: Path) -> dict[str, list[str]]:
    """Each command writing its result to ``target`` (a file inside a folder that refuses it)."""
    return {
        "convert": ["convert", str(Path(run).parent / "mine" / "test.conll"), "--to", "sentt", "-o", str(target)],
        "tag": ["tag", str(run), "--task", "mine", "-o", str(target)],
        "evaluate": ["evaluate", str(run), "--output", str(target)],
    }


def assert_one_line_naming(stderr: str, target: Path, code: int) -> None:
    lines = stderr.strip().splitlines()
    assert lines == [f"error: {target}: {os.strerror(code)}{HINT}"], stderr


# -- permission denied ----------------------------------------------------------------------------------
class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


_CAP_VERSION_3 = 0x20080522  # linux/capability.h: two _CapData, capability bits 0-63
_CAP_DAC = (1 << 1) | (1 << 2)  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH


@contextlib.contextmanager
def permission_bits_apply():
    """Make the kernel check permission bits for this thread, as it does for a normal user.

    root ignores them (CAP_DAC_OVERRIDE), and the tests often run as root (CI containers). As
    root, the two DAC capabilities are dropped from this thread's *effective* set only (capset(2)
    is per thread; they stay permitted) and restored afterwards. ``hl`` runs in this thread
    (CliRunner), so its writes meet a real EACCES. Skipped where capset is not allowed.
    """
    if os.geteuid() != 0:
        yield
        return
    libc = ctypes.CDLL(None, use_errno=True)
    header, data = _CapHeader(_CAP_VERSION_3, 0), (_CapData * 2)()
    if libc.capget(ctypes.byref(header), data) != 0:
        pytest.skip(f"running as root (permission bits ignored) and capget failed: {os.strerror(ctypes.get_errno())}")
    saved = data[0].effective
    data[0].effective = saved & ~_CAP_DAC
    if libc.capset(ctypes.byref(header), data) != 0:
        pytest.skip(f"running as root (permission bits ignored) and cannot drop CAP_DAC_OVERRIDE: {os.strerror(ctypes.get_errno())}")
    try:
        yield
    finally:
        data[0].effective = saved
        assert libc.capset(ctypes.byref(header), data) == 0, "could not restore this thread's capabilities"


@pytest.mark.parametrize("command", ["convert", "tag", "evaluate"])
def test_a_folder_without_write_permission_is_one_line_naming_the_output(run, tmp_path, command):
    folder = tmp_path / "read-only"
    folder.mkdir()
    target = folder / "out.txt"
    folder.chmod(0o555)
    try:
        with permission_bits_apply():
            result = invoke(*commands(run, target)[command], input=SENTENCE)
    finally:
        folder.chmod(0o755)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert_one_line_naming(result.stderr, target, errno.EACCES)
    assert list(folder.iterdir()) == []  # no output, no temporary file left


# -- disk full ----------------------------------------------------------------------------------------------
@pytest.fixture
def full_folder(tmp_path):
    """A 64 KiB tmpfs, filled up: every further write gets ENOSPC from the kernel."""
    if os.geteuid() != 0:
        pytest.skip("a full file system is made by mounting a small tmpfs, which needs root")
    folder = tmp_path / "full"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(folder)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs to fill up here: {mounted.stderr.strip()}")
    try:
        fd = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT)
        try:
            while True:
                os.write(fd, b"\0" * 4096)  # unbuffered: nothing is left to flush once it fails
        except OSError as error:
            assert error.errno == errno.ENOSPC
        finally:
            os.close(fd)
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=True)


@pytest.mark.parametrize("command", ["convert", "tag", "evaluate"])
def test_a_full_disk_is_one_line_naming_the_output(run, full_folder, command):
    target = full_folder / "out.txt"
    result = invoke(*commands(run, target)[command], input=SENTENCE)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert_one_line_naming(result.stderr, target, errno.ENOSPC)
    assert sorted(p.name for p in full_folder.iterdir()) == ["filler"]  # nothing half-written
