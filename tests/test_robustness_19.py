"""Issue 19: no run is lost or mixed. SIGTERM/SIGHUP save like Ctrl-C; ``--resume`` never destroys a
checkpoint (no ``last`` → resume from ``best``; a damaged one is refused, untouched); one writer per run
folder (a lock); every OS error while writing names the path the user gave; recipe values are
type-checked; a tampered checkpoint config is refused by name.

Real models throughout: HyperLoader on a tiny random T5 (tests/conftest.py), real corpora, a few steps.
The signal and two-writer tests run ``python -m hlcli`` in real processes.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from _cli import invoke
from _processes import hl_process, wait_until
from hlcli import runs
from hlcli.config import TrainConfig, load_config
from hlcli.errors import HLError
from hlcli.io import WriteError, atomic_dir, atomic_write
from hlcli.training import train

pytestmark = pytest.mark.usefixtures("one_thread")

SMALL = dict(tasks=["atis"], fraction=0.003, batch_size=4, warmup_steps=0, log_every=1,
             method_overrides={"reduction_factor": 4})  # fmt: skip
POSIX = pytest.mark.skipif(os.name != "posix", reason="POSIX signals and processes")


def _config(tiny_t5: str, data_dir: Path, out: Path, **changes) -> TrainConfig:
    settings = {**SMALL, "model": tiny_t5, "data_dir": str(data_dir), "output_dir": str(out), "max_steps": 2,
                "eval_every": 2, "checkpoint_every": 2, **changes}  # fmt: skip
    return TrainConfig(**settings)


@pytest.fixture(scope="module")
def run(tmp_path_factory, tiny_t5, data_dir) -> Path:
    """A finished 2-step run: checkpoints/best and checkpoints/last both at step 2."""
    folder = tmp_path_factory.mktemp("issue19") / "run"
    train(_config(tiny_t5, data_dir, folder))
    return folder


def _copy(run: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    config = json.loads((copy / "config.json").read_text())
    config["output_dir"] = str(copy)
    (copy / "config.json").write_text(json.dumps(config))
    return copy


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _step(checkpoint: Path) -> int:
    return json.loads((checkpoint / runs.TRAINER_STATE).read_text())["step"]


def _one_line_error(result, code: int, *parts: str) -> str:
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output and "internal error" not in result.output, result.output
    lines = result.stderr.splitlines()  # progress and warnings may come before; the error is one last line
    error = lines[-1] if lines else ""
    assert error.startswith("error: ") and sum(line.startswith("error") for line in lines) == 1, result.stderr
    for part in parts:
        assert part in error, (part, error)
    return error


# -- SIGTERM / SIGHUP: finish the step, save checkpoints/last, exit 128 + signal ----------------------------
@POSIX
def test_sighup_saves_last_and_exits_129_with_the_resume_hint(tmp_path, tiny_t5, data_dir, monkeypatch):
    import hlcli.cli.train

    @contextlib.contextmanager
    def hangup_at_step_2(total, enabled=True):
        yield lambda result: os.kill(os.getpid(), signal.SIGHUP) if result.step == 2 else None

    monkeypatch.setattr(hlcli.cli.train, "training_bar", hangup_at_step_2)
    out = tmp_path / "run"
    result = invoke("train", "--tasks", "atis", "--model", tiny_t5, "--data-dir", data_dir, "--fraction", "0.003",
                    "--batch-size", 4, "--warmup-steps", 0, "--set", "reduction_factor=4", "--max-steps", 1000, "--eval-every", 1000,
                    "--checkpoint-every", 1000, "--no-progress", "--output-dir", out)  # fmt: skip
    assert result.exit_code == 129, result.output
    assert "SIGHUP: stopping after this step" in result.stderr
    step = _step(runs.checkpoint_dir(out, "last"))
    assert step in (2, 3)  # the step under way when the signal came is finished first
    assert f"interrupted at step {step}; resume with: hl train --resume {out}" in result.stderr
    assert not (out / runs.LOCK).exists()  # the lock is released on the way out


@POSIX
def test_sigterm_while_reading_data_ends_like_ctrl_c_and_leaves_no_folder(tmp_path, tiny_t5, data_dir, monkeypatch):
    """Before the first step there is nothing to save: stop at once, release the lock, remove the new folder."""
    import hlcli.training.prepare

    real = hlcli.training.prepare.load_data

    def load_then_terminated(config):
        os.kill(os.getpid(), signal.SIGTERM)
        return real(config)

    monkeypatch.setattr(hlcli.training.prepare, "load_data", load_then_terminated)
    out = tmp_path / "runs" / "new"
    result = invoke("train", *TINY, "--model", tiny_t5, "--data-dir", data_dir, "--max-steps", 2, "--output-dir", out)
    assert result.exit_code == 143, result.output
    assert result.stderr.splitlines()[-1] == "interrupted" and not (tmp_path / "runs").exists()


def _text(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""


TINY = ["--tasks", "atis", "--fraction", "0.003", "--batch-size", "4", "--warmup-steps", "0", "--set", "reduction_factor=4",
        "--no-progress"]


@POSIX
@pytest.mark.slow
def test_sigterm_saves_last_exits_143_and_resume_keeps_best(tmp_path, tiny_t5, data_dir):
    """Issue 19 case 1: SIGTERM before the first checkpoint_every, then --resume, destroyed checkpoints/best."""
    out, log = tmp_path / "run", tmp_path / "train.log"
    process = hl_process("train", *TINY, "--model", tiny_t5, "--data-dir", data_dir, "--max-steps", 100000, "--eval-every", 1,
                  "--checkpoint-every", 1000, "--output-dir", out, log=log)  # fmt: skip
    wait_until(lambda: "eval step 2:" in _text(out / "train.log"), process, log, "step 2's evaluation")
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=120) == 143, _text(log)
    step = _step(runs.checkpoint_dir(out, "last"))
    assert step >= 2 and f"interrupted at step {step}; resume with: hl train --resume {out}" in _text(log)
    best = _snapshot(runs.checkpoint_dir(out, "best"))
    best_value = json.loads(best[runs.TRAINER_STATE].decode())["best_value"]

    result = invoke("train", "--resume", out, "--max-steps", step + 1, "--no-progress")
    assert result.exit_code == 0, result.output
    assert f"resumed {out} at step {step}" in result.stderr and f"trained {step + 1} steps" in result.stdout
    after = json.loads((runs.checkpoint_dir(out, "best") / runs.TRAINER_STATE).read_text())
    assert after["best_value"] <= best_value and after["step"] >= 2  # replaced by a better one only
    assert after["step"] > 2 or _snapshot(runs.checkpoint_dir(out, "best")) == best


# -- --resume never destroys ---------------------------------------------------------------------------------
def test_resume_without_last_continues_from_best_bitwise(tmp_path, tiny_t5, data_dir):
    """A run killed after an evaluation but before its first checkpoint_every has best/ and no last/:
    resume from best's full training state and end where an uninterrupted run ends."""
    settings = dict(max_steps=6, eval_every=2, checkpoint_every=100)
    train(_config(tiny_t5, data_dir, tmp_path / "straight", **settings))

    class Killed(Exception):
        pass

    def die_at_5(result):
        if result.step == 5:
            raise Killed  # like SIGKILL: no checkpoint written on the way out

    killed = tmp_path / "killed"
    with pytest.raises(Killed):
        train(_config(tiny_t5, data_dir, killed, **settings), on_step=die_at_5)
    assert not runs.checkpoint_dir(killed, "last").exists()
    best_step = _step(runs.checkpoint_dir(killed, "best"))

    result = invoke("train", "--resume", killed, "--no-progress")
    assert result.exit_code == 0, result.output
    assert f"no checkpoints/last: resuming from checkpoints/best (step {best_step})" in result.stderr
    assert f"resumed {killed} at step {best_step}" in result.stderr
    for name in ("model.safetensors", "optimizer.safetensors"):
        a = load_file(str(runs.checkpoint_dir(tmp_path / "straight", "last") / name))
        b = load_file(str(runs.checkpoint_dir(killed, "last") / name))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name
    steps = lambda r: [json.loads(line)["step"] for line in (r / runs.METRICS).read_text().splitlines()]  # noqa: E731
    assert steps(killed) == steps(tmp_path / "straight")


def test_resume_refuses_a_best_without_training_state_and_restart_starts_over(run, tmp_path):
    copy = _copy(run, tmp_path)
    shutil.rmtree(copy / "checkpoints" / "last")
    (copy / "checkpoints" / "best" / runs.OPTIMIZER).unlink()
    before = _snapshot(copy)
    result = invoke("train", "--resume", copy, "--no-progress")
    _one_line_error(result, 1, f"error: {copy}: no checkpoints/last, and checkpoints/best (step 2) cannot be resumed from: "
                    "no optimizer.safetensors; nothing was changed", f"hl train --resume {copy} --restart")  # fmt: skip
    assert _snapshot(copy) == before

    result = invoke("train", "--resume", copy, "--restart", "--no-progress")
    assert result.exit_code == 0, result.output
    assert "started over at step 0" in result.stderr and "trained 2 steps" in result.stdout
    assert runs.is_checkpoint_dir(runs.checkpoint_dir(copy, "best")) and _step(runs.checkpoint_dir(copy, "last")) == 2
    result = invoke("train", "--restart", "--no-progress")
    _one_line_error(result, 2, "--restart needs --resume RUN")


def test_resume_refuses_a_last_that_lost_its_weights(run, tmp_path):
    """Issue 19 case 4: the weights replaced by other files while trainer_state.json says step 2."""
    copy = _copy(run, tmp_path)
    last = copy / "checkpoints" / "last"
    (last / runs.MODEL_WEIGHTS).rename(last / "notes.txt")
    before = _snapshot(copy)
    result = invoke("train", "--resume", copy, "--no-progress")
    _one_line_error(result, 1, f"error: {last}: damaged checkpoint: no model.safetensors (its trainer_state.json says step 2); "
                    "nothing was changed", "--restart")  # fmt: skip
    assert _snapshot(copy) == before


def test_resume_refuses_unreadable_best_tensors_and_leaves_them(run, tmp_path):
    copy = _copy(run, tmp_path)
    weights = copy / "checkpoints" / "best" / runs.MODEL_WEIGHTS
    weights.write_bytes(weights.read_bytes()[:100])
    before = _snapshot(copy)
    result = invoke("train", "--resume", copy, "--max-steps", 4, "--no-progress")
    _one_line_error(result, 1, f"error: {weights}: damaged checkpoint: unreadable tensors", "nothing was changed")
    assert _snapshot(copy) == before


# -- one writer per run folder ---------------------------------------------------------------------------------
# Import everything once, then for each stage: say ready, wait for the stage's go file (the barrier),
# run hl exactly as the CLI would with that stage's arguments, record its exit code and output.
BARRIER = """
import contextlib, json, sys, time
from pathlib import Path
import hlcli.cli, hlcli.training, hlcli.methods, hlcli.checkpoint, hlcli.data.corpora
prefix, stages = Path(sys.argv[1]), json.loads(sys.argv[2])
for stage, argv in enumerate(stages):
    Path(f"{prefix}.{stage}.ready").touch()
    deadline = time.monotonic() + 300
    while not Path(f"{prefix.parent}/go.{stage}").exists() and time.monotonic() < deadline:
        time.sleep(0.001)
    with open(f"{prefix}.{stage}.log", "w") as log, contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        try:
            hlcli.cli.app(argv, prog_name="hl")
            code = 0
        except SystemExit as exit:
            code = exit.code or 0
    # Written aside and renamed: the test reads the file as soon as it exists, and under load an
    # open-then-write left it empty for a moment (seen once under pytest -n 2).
    Path(f"{prefix}.{stage}.code.tmp").write_text(str(code))
    Path(f"{prefix}.{stage}.code.tmp").replace(f"{prefix}.{stage}.code")
"""


def _together(tmp_path: Path, stages: list[list]) -> list[list[tuple[int, str]]]:
    """Two processes run the same ``hl`` stages; both are released into each stage at the same moment.
    Returns, per stage, each process's (exit code, output)."""
    processes = []
    for i in (1, 2):
        prefix = tmp_path / f"hl-{i}"
        argv = json.dumps([[str(a) for a in stage] for stage in stages])
        processes.append((hl_process(prefix, argv, log=tmp_path / f"hl-{i}.log", python_args=("-c", BARRIER)), prefix))
    results = []
    for stage in range(len(stages)):
        for process, prefix in processes:
            wait_until(Path(f"{prefix}.{stage}.ready").exists, process, tmp_path / f"{prefix.name}.log", f"stage {stage}")
        (tmp_path / f"go.{stage}").touch()
        for process, prefix in processes:
            wait_until(Path(f"{prefix}.{stage}.code").exists, process, tmp_path / f"{prefix.name}.log", f"the end of stage {stage}")
        results.append([(int(Path(f"{p}.{stage}.code").read_text()), Path(f"{p}.{stage}.log").read_text()) for _, p in processes])
    for process, _ in processes:
        assert process.wait(timeout=60) == 0
    return results, [process.pid for process, _ in processes]


def _one_wins(results: list[tuple[int, str]], pids: list[int], run: Path) -> None:
    codes = [code for code, _ in results]
    assert sorted(codes) == [0, 1], results
    winner, loser = (0, 1) if codes[0] == 0 else (1, 0)
    lines = results[loser][1].splitlines()
    assert lines == [f"error: {run} is being trained by process {pids[winner]}; wait for it to end or stop it; "
                     "readers (hl evaluate, hl tag) may use the run meanwhile"], results[loser][1]  # fmt: skip


@POSIX
@pytest.mark.slow
def test_two_trainers_on_one_folder_started_together_one_is_refused(tmp_path, tiny_t5, data_dir):
    """Issue 19 cases 2 and 3: two hl train into one --output-dir, then two --resume, at the same moment."""
    out = tmp_path / "run"
    common = [*TINY, "--model", tiny_t5, "--data-dir", data_dir, "--eval-every", 2, "--checkpoint-every", 2, "--log-every", 1]
    (new, resumed), pids = _together(tmp_path, [["train", *common, "--max-steps", 4, "--output-dir", out],
                                                ["train", "--resume", out, "--max-steps", 8, "--no-progress"]])  # fmt: skip
    _one_wins(new, pids, out)
    _one_wins(resumed, pids, out)
    records = [json.loads(line) for line in (out / runs.METRICS).read_text().splitlines()]
    assert [record["step"] for record in records if "loss" in record] == list(range(1, 9))  # each step logged once
    assert _step(out / "checkpoints" / "last") == 8 and not (out / runs.LOCK).exists()


# -- OS errors while writing name the path the user gave ----------------------------------------------------
@contextlib.contextmanager
def _tmpfs(folder: Path, options: str):
    folder.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.decode(errors='replace').strip()}): needs root in a "
                    "namespace that allows mount")  # fmt: skip
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


@POSIX
def test_a_full_disk_names_the_checkpoint_folder(tmp_path, tiny_t5, data_dir):
    """Issue 19 case 5 (was `internal error: SafetensorError: ... No space left on device (os error 28)`)."""
    with _tmpfs(tmp_path / "disk", "size=48k") as disk:
        out = disk / "run"
        result = invoke("train", *TINY, "--model", tiny_t5, "--data-dir", data_dir, "--max-steps", 2, "--eval-every", 2,
                        "--checkpoint-every", 2, "--output-dir", out)  # fmt: skip
        _one_line_error(result, 1, f"error: {out}/checkpoints/", "No space left on device; check the path, its permissions and free space")
        assert ".tmp" not in result.stderr
        assert not list((out / "checkpoints").glob(".*.tmp")) and not (out / runs.LOCK).exists()


@POSIX
def test_a_read_only_folder_is_reported_by_name(tmp_path, run, tiny_t5, data_dir):
    with _tmpfs(tmp_path / "ro", "size=64k,ro") as read_only:
        out = read_only / "run"
        result = invoke("train", *TINY, "--model", tiny_t5, "--data-dir", data_dir, "--max-steps", 2, "--output-dir", out)
        _one_line_error(result, 1, f"error: {out}: Read-only file system; check the path")
        result = invoke("tag", run, "--task", "atis", "-o", read_only / "out.txt", input="flights to boston\n")
        _one_line_error(result, 1, f"error: {read_only / 'out.txt'}: Read-only file system; check the path")


def test_an_output_that_is_a_folder_is_named_not_the_temp_file(run, tmp_path, data_dir):
    """Issue 19 case 10: `error: <parent>/.tag.71bha71y.tmp: Is a directory`."""
    folder = tmp_path / "taken"
    folder.mkdir()
    result = invoke("tag", run, "--task", "atis", "-o", folder, input="flights to boston\n")
    _one_line_error(result, 1, f"error: {folder}: Is a directory; check the path")
    assert ".tmp" not in result.stderr
    result = invoke("evaluate", run, "--split", "val", "--data-dir", data_dir, "--output", folder)
    _one_line_error(result, 1, f"error: {folder}: Is a directory; check the path")
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")] and os.listdir(folder) == []


def test_a_safetensors_os_error_inside_a_checkpoint_names_the_folder(tmp_path):
    target = tmp_path / "checkpoints" / "last"
    with pytest.raises(WriteError) as caught:
        with atomic_dir(target) as tmp:
            save_file({"x": torch.zeros(2)}, str(tmp / "gone" / "model.safetensors"))  # a real SafetensorError (os error 2)
    assert str(caught.value) == f"{target}: No such file or directory; check the path, its permissions and free space"
    assert os.listdir(tmp_path / "checkpoints") == []


def test_atomic_writes_honour_the_umask(tmp_path):
    """Issue 21: run files were 0600 (tempfile.mkstemp) while config.json was 0644."""
    previous = os.umask(0o022)
    try:
        with atomic_write(tmp_path / "a.txt") as handle:
            handle.write("x")
        with atomic_dir(tmp_path / "folder") as tmp:
            (tmp / "b.txt").write_text("y")
        os.umask(0o077)
        with atomic_write(tmp_path / "private.txt") as handle:
            handle.write("z")
    finally:
        os.umask(previous)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "folder").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "private.txt").stat().st_mode & 0o777 == 0o600
    (tmp_path / "a.txt").chmod(0o640)  # an existing file keeps its mode, as open() keeps it
    with atomic_write(tmp_path / "a.txt") as handle:
        handle.write("again")
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o640


# -- recipe and task-table values are type-checked --------------------------------------------------------
RECIPE_CASES = [
    ('tasks = ["atis"]\nlr = "3e-4"\n', 2, "lr = '3e-4' (expected a number)"),
    ('tasks = ["atis"]\noutput_dir = 7\n', 2, "output_dir = 7 (expected a string)"),
    ('tasks = ["atis"]\nmax_steps = 10.5\n', 2, "max_steps = 10.5 (expected an integer)"),
    ('tasks = ["atis"]\neval_f1 = "yes"\n', 2, "eval_f1 = 'yes' (expected true or false)"),
    ('tasks = ["atis"]\nmethod_overrides = 3\n', 2, "method_overrides = 3 (expected a table)"),
    ("[tasks.mine]\npath = 42\n", 2, "task 'mine': path = 42 (expected a string)"),
    ("tasks = 5\n", 2, "tasks = 5 (expected a list of task names"),
]


@pytest.mark.parametrize("text,code,message", RECIPE_CASES, ids=[c[2].split(" ")[0] for c in RECIPE_CASES])
def test_a_recipe_value_of_the_wrong_type_names_the_key_and_the_type(tmp_path, monkeypatch, text, code, message):
    monkeypatch.chdir(tmp_path)
    recipe = tmp_path / "r.toml"
    recipe.write_text(text)
    result = invoke("train", "--recipe", recipe, "--no-progress")
    _one_line_error(result, code, f"error: {recipe}: ", message)
    assert sorted(os.listdir(tmp_path)) == ["hl-cache", "r.toml"] or sorted(os.listdir(tmp_path)) == ["r.toml"]  # no ./7, no runs/


def test_a_non_utf8_recipe_is_refused_by_name(tmp_path):
    recipe = tmp_path / "latin1.toml"
    recipe.write_bytes('tasks = ["atis"]\n# caf\xe9\n'.encode("latin-1"))
    _one_line_error(invoke("train", "--recipe", recipe), 1, f"error: {recipe}: not UTF-8 text", "expected a UTF-8 TOML file")


def test_tasks_given_as_one_string_in_a_recipe_is_a_comma_list(tmp_path):
    """Issue 19 case 7: `tasks = "atis"` gave `unknown task 'a'`."""
    recipe = tmp_path / "r.toml"
    recipe.write_text('tasks = "atis, restaurant"\n')
    assert load_config(recipe).tasks == ["atis", "restaurant"]


def test_a_symlink_loop_and_an_unknown_format_prefix_give_their_errors(tmp_path):
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    _one_line_error(invoke("train", "--tasks", f"atis,mine={loop}"), 1, f"error: {loop}: symlink loop")
    _one_line_error(invoke("train", "--tasks", f"atis,mine=xml:{tmp_path}"), 2,
                    "error: unknown format 'xml'; known formats: conll, goo, jsonl, mit")  # fmt: skip


# -- config.json and the checkpoints' config agree ---------------------------------------------------------------
def test_a_tampered_checkpoint_method_is_refused_naming_the_file(run, tmp_path):
    """Issue 19 case 9: `error: hyperformer has no LoRA; ...` named no file, and --resume rewrote it."""
    copy = _copy(run, tmp_path)
    tampered = copy / "checkpoints" / "best" / "config.json"
    tampered.write_text(tampered.read_text().replace('"method": "hyperloader"', '"method": "hyperformer"', 1))
    before = _snapshot(copy)
    result = invoke("tag", copy, "--task", "atis", input="flights to boston\n")
    _one_line_error(result, 1, f"error: {tampered}: ", "'hyperformer'", "'hyperloader'")
    result = invoke("train", "--resume", copy, "--max-steps", 4, "--no-progress")
    _one_line_error(result, 1, f"error: {tampered}: ", "'hyperformer'", "'hyperloader'")
    assert _snapshot(copy) == before


def test_the_io_lock_is_filelock(tmp_path):
    """Issue 21: ``io.locked`` is filelock's (portable, tested upstream) rather than hand-written fcntl."""
    import filelock

    from hlcli.io import locked

    lock = locked(tmp_path / "x.lock")
    assert isinstance(lock, filelock.BaseFileLock)
    with lock:
        with pytest.raises(filelock.Timeout):
            filelock.FileLock(tmp_path / "x.lock", is_singleton=False, thread_local=False).acquire(timeout=0)


def test_hlerror_from_a_write_is_one_line(tmp_path):
    error = WriteError(tmp_path / "x", OSError(28, os.strerror(28)))
    assert isinstance(error, HLError) and str(error) == f"{tmp_path / 'x'}: No space left on device; check the path, its permissions and free space"
