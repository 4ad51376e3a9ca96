"""Nothing crashes: untrusted run folders are refused by name, any text can be tagged, a closed
pipe ends quietly, a non-finite loss stops cleanly, and every user error has its exit code.

The run folder here is real: HyperLoader on a tiny random T5, trained 2 steps in-process on real
corpora, so ``hl tag`` / ``hl evaluate`` load real checkpoints (copies of it are tampered with).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import typer
from safetensors.torch import load_file, save_file

import hlcli
from _cli import invoke
from _faults import loss_at, on_training_loss
from hlcli import runs
from hlcli.cli._common import handle_errors
from hlcli.config import TrainConfig
from hlcli.training import train

PACKAGE = Path(hlcli.__file__).parent


pytestmark = pytest.mark.usefixtures("one_thread")


# -- untrusted files: no pickle anywhere ---------------------------------------------------------------
FORBIDDEN = {
    "torch.load": r"\btorch\.load\s*\(",
    "pickle": r"^\s*(import|from)\s+(c?pickle|dill|joblib|cloudpickle)\b|\bpickle\.(loads?|Unpickler)\b",
    "trust_remote_code=True": r"trust_remote_code\s*=\s*True",
    "weights_only=False": r"weights_only\s*=\s*False",
    "allow_pickle=True": r"allow_pickle\s*=\s*True",
}


def test_the_package_never_unpickles_or_runs_remote_code():
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for what, pattern in FORBIDDEN.items():
                if re.search(pattern, line) and not line.lstrip().startswith("#"):
                    found.append(f"{path.relative_to(PACKAGE)}:{number}: {what}")
    assert not found, found
    assert len(list(PACKAGE.rglob("*.py"))) > 20  # the scan did look at the package


# -- a real run folder ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def run(tmp_path_factory, tiny_t5, data_dir) -> Path:
    root = tmp_path_factory.mktemp("robust")
    train(TrainConfig(tasks=["atis", "restaurant"], model=tiny_t5, data_dir=str(data_dir), fraction=0.003,
                      batch_size=4, max_steps=2, warmup_steps=1, eval_every=2, checkpoint_every=2,
                      method_overrides={"reduction_factor": 4}, output_dir=str(root / "run")))  # fmt: skip
    return root / "run"


def test_a_run_folder_holds_only_safetensors_json_and_text(run):
    suffixes = {p.suffix for p in run.rglob("*") if p.is_file()}
    assert suffixes <= {".safetensors", ".json", ".jsonl", ".md", ".log"}, suffixes
    assert {p.name for p in runs.checkpoint_dir(run, "last").iterdir()} == {
        "model.safetensors", "config.json", "README.md", "trainer_state.json", "optimizer.safetensors", "rng.safetensors"}  # fmt: skip


def _edit_json(path: Path, change) -> None:
    path.write_text(json.dumps(change(json.loads(path.read_text()))))


def _edit_tensors(path: Path, change) -> None:
    save_file(change(load_file(str(path))), str(path))


def _wrong_backbone(cfg):
    cfg["backbone"]["fingerprint"]["d_model"] = 64
    return cfg


def _extra_task(cfg):
    cfg["tasks"].append({"name": "mtop", "types": ["DATE"]})
    return cfg


def _drop_first(tensors):
    tensors.pop(sorted(tensors)[0])
    return tensors


# (what is done to checkpoints/best and checkpoints/last, the message that names the problem)
TAMPERED = {
    "wrong backbone": (lambda c: _edit_json(c / "config.json", _wrong_backbone),
                       r"config\.json: backbone does not match the checkpoint \(d_model: 64 != 32\)"),
    "wrong task list": (lambda c: _edit_json(c / "config.json", _extra_task),
                        r"model\.safetensors: tensor \S+ has shape \(2, \d+\) \(expected shape \(3, \d+\)\)"),
    "missing tensor": (lambda c: _edit_tensors(c / "model.safetensors", _drop_first), r"model\.safetensors: missing tensor\(s\) \S+"),
    "extra tensor": (lambda c: _edit_tensors(c / "model.safetensors", lambda t: {**t, "smuggled": torch.zeros(3)}),
                     r"model\.safetensors: unexpected tensor\(s\) smuggled"),
    "corrupted safetensors": (lambda c: (c / "model.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{garbage"),
                              r"model\.safetensors: unreadable weights"),
    "truncated safetensors": (lambda c: (c / "model.safetensors").write_bytes((c / "model.safetensors").read_bytes()[:1000]),
                              r"model\.safetensors: unreadable weights"),
    "truncated JSON": (lambda c: (c / "config.json").write_text((c / "config.json").read_text()[:200]),
                       r"config\.json: unreadable checkpoint config"),
    "no weights": (lambda c: (c / "model.safetensors").unlink(), r"run folder has no checkpoint yet"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(TAMPERED))
def test_a_tampered_run_folder_is_refused_by_hl_tag_saying_what(run, tmp_path, case):
    change, message = TAMPERED[case]
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    for which in ("best", "last"):
        change(runs.checkpoint_dir(copy, which))
    result = invoke("tag", "--run", copy, "--task", "atis", input=b"flights to boston\n")
    assert result.exit_code == 1, result.output
    assert re.search(message, result.stderr), result.stderr
    assert str(copy) in result.stderr and "Traceback" not in result.output and result.stdout == ""


@pytest.mark.parametrize("case", ["wrong task list", "truncated JSON"])
def test_a_tampered_run_folder_is_refused_by_hl_evaluate(run, tmp_path, case, data_dir):
    change, message = TAMPERED[case]
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    change(runs.checkpoint_dir(copy, "best"))
    result = invoke("evaluate", copy, "--split", "val", "--data-dir", data_dir)
    assert result.exit_code == 1 and re.search(message, result.stderr), result.output


def test_a_damaged_eval_json_is_rebuilt_by_hl_evaluate(run, tmp_path, data_dir):
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    (copy / "eval.json").write_text('{"test": {"avera')
    result = invoke("evaluate", copy, "--split", "val", "--data-dir", data_dir)
    assert result.exit_code == 0, result.output
    assert set(json.loads((copy / "eval.json").read_text())) == {"val"}


def test_a_damaged_trainer_state_is_refused_by_resume(run, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    state = runs.checkpoint_dir(copy, "last") / "trainer_state.json"
    state.write_text(state.read_text()[:100])
    result = invoke("train", "--resume", copy, "--no-progress")
    assert result.exit_code == 1 and "trainer_state.json: unreadable trainer state" in result.stderr, result.output
    state.unlink()
    (runs.checkpoint_dir(copy, "last") / "optimizer.safetensors").write_bytes(b"nonsense")
    result = invoke("train", "--resume", copy, "--no-progress")
    assert result.exit_code == 1 and "unreadable trainer state" in result.stderr, result.output


# -- tagging any input ---------------------------------------------------------------------------------
def test_hl_tag_gives_one_line_per_input_line_for_any_text(run):
    odd = [
        b"",
        b"   \t  ",
        " ".join(["flights", "to", "boston", "\u05e9\u05dc\u05d5\u05dd", "\U0001f6eb"] * 200).encode(),  # 1,000 words
        b"tab\tseparated\twords",
        b"control \x00 \x1b[31m \x7f \x0b \x0c \x1c chars",
        "emoji \U0001f355\u200d and \u202eRTL\u202c \u0645\u0631\u062d\u0628\u0627 \u2028 sep".encode(),
        b"invalid \xff\xfe utf-8 \xc3",
        b"\r",
        b"last line without newline \xed\xa0\x80",
    ]
    data = b"\n".join(odd)
    words = [len(raw.decode("utf-8", "replace").split()) for raw in odd]  # str.split: Unicode spaces too
    result = invoke("tag", "--run", run, "--task", "restaurant", input=data)
    assert result.exit_code == 0, result.output
    lines = result.stdout.split("\n")
    assert lines[-1] == "" and len(lines) - 1 == len(odd)
    assert [len(line.split(" ")) if line else 0 for line in lines[:-1]] == words
    assert lines[2].count("/") == 1000
    assert result.stderr.count("invalid UTF-8") == 1 and "<stdin>:7:" in result.stderr

    result = invoke("tag", "--run", run, "--task", "atis", "--format", "jsonl", input=data)
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(records) == len(odd) and [len(r["tokens"]) for r in records] == words


# -- a closed stdout pipe: one place, quiet ------------------------------------------------------------
def test_broken_pipe_is_handled_once_in_handle_errors(capsys):
    @handle_errors
    def command():
        raise BrokenPipeError

    with pytest.raises(typer.Exit) as exit_info:
        command()
    assert exit_info.value.exit_code == 1 and capsys.readouterr().err == ""
    for name in ("tag.py", "convert.py"):
        assert "BrokenPipeError" not in (PACKAGE / "cli" / name).read_text()


def test_hl_convert_into_a_closed_pipe_exits_quietly(tmp_path):
    (tmp_path / "big.conll").write_text("Peter B-PER\nlives O\nin O\nParis B-LOC\n\n" * 20000)
    process = subprocess.Popen(
        [sys.executable, "-m", "hlcli", "convert", tmp_path / "big.conll", "--input-format", "conll", "--to", "bio", "-o", "-"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert process.stdout.readline().startswith(b'{"tokens": ["Peter"')
    process.stdout.close()  # `| head -1`
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=120) == 1
    assert stderr == "", stderr


# -- non-finite loss through the CLI (a real run; the nan is injected: no real model gives one on cue) --
def _nan_at(monkeypatch, call: int) -> None:
    on_training_loss(monkeypatch, loss_at(call, float("nan")))


def test_nan_loss_exits_1_naming_step_task_and_the_last_good_checkpoint(tmp_path, monkeypatch, tiny_run, toy_tasks):
    _nan_at(monkeypatch, 5)
    result = invoke("train", "--tasks", toy_tasks("music"), *tiny_run, "--max-steps", 6, "--output-dir", tmp_path / "run")
    assert result.exit_code == 1, result.output
    assert "non-finite loss (nan) at step 5 on task 'music'" in result.stderr
    assert "(step 4) is the last good checkpoint" in result.stderr and "--skip-nonfinite" in result.stderr
    assert json.loads((runs.checkpoint_dir(tmp_path / "run", "last") / "trainer_state.json").read_text())["step"] == 4


def test_skip_nonfinite_skips_the_batch_and_exits_0(tmp_path, monkeypatch, tiny_run, toy_tasks):
    _nan_at(monkeypatch, 5)
    result = invoke("train", "--tasks", toy_tasks("music"), *tiny_run, "--max-steps", 6, "--skip-nonfinite",
                    "--output-dir", tmp_path / "run")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "trained 6 steps" in result.stdout and "skipped 1 batches" in result.stdout
    assert "step 5: non-finite loss or gradient, batch skipped" in (tmp_path / "run" / "train.log").read_text()


# -- errors that help: what, where, how to fix; exit codes 1 / 2 -----------------------------------------
def test_user_errors_name_the_problem_and_exit_with_their_code(tmp_path, data_dir):
    bad = tmp_path / "bad.conll"
    bad.write_text("Peter B-PER\nlives\n", encoding="utf-8")
    good = tmp_path / "good.conll"
    good.write_text("Peter B-PER\n", encoding="utf-8")
    (tmp_path / "a-file").write_text("")
    cases = [
        (["convert", bad, "--format", "conll", "--to", "bio"], 1, f"{bad}:2: "),
        (["convert", tmp_path / "missing.conll", "--format", "conll"], 2, "missing.conll' is neither a corpus nor an existing file"),
        (["convert", bad, "--input-format", "xml"], 2, "unknown format 'xml'; known formats: bio, conll"),
        (["train", "--tasks", "atis,nope", "--data-dir", data_dir, "--output-dir", tmp_path / "r"], 2,
         "unknown task 'nope'; known tasks: atis, movie, movietrivia, mtod, mtop, restaurant, snips"),
        (["train", "--tasks", "atis", "--max-steps", "0", "--output-dir", tmp_path / "r"], 2, "max_steps"),
        (["train", "--resume", tmp_path], 1, "nothing to resume"),
        (["tag", "--task", "atis"], 2, "no run given, HL_RUN unset and no finished run with task 'atis' under ./runs"),
        (["evaluate", tmp_path / "nowhere"], 1, "nowhere: no such run or checkpoint folder"),
        (["train", "--no-such-option"], 2, "No such option"),
        (["convert", good, "--format", "conll", "-o", tmp_path / "a-file" / "out.jsonl"], 1, "a-file: a file is in the way (expected a folder to write out.jsonl into)"),
    ]  # fmt: skip
    for args, code, message in cases:
        result = invoke(*args)
        assert result.exit_code == code, (args, result.output)
        assert message in result.output, (args, result.output)
        assert "Traceback" not in result.output and "internal error" not in result.output, (args, result.output)
    assert not (tmp_path / "r").exists()
