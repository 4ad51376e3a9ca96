"""The CLI's conventions: how a run is named, hl train's flags are TrainConfig's fields, --verbose."""

from __future__ import annotations

import json
import os
import signal

import pytest

from _cli import invoke
from _fake_model import build_fake, use_fake
from test_train_cli import FAST


@pytest.fixture
def fake(monkeypatch):
    use_fake(monkeypatch)


# -- naming the run: positional, $HL_RUN, else the newest finished run under ./runs -----------------
def test_readme_quickstart_then_hl_tag_with_only_a_task(tmp_path, fake, monkeypatch):
    """`hl train` into runs/quickstart, then `hl tag --task T < input.txt` as typed in the README."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HL_RUN", raising=False)
    assert invoke("train", "--tasks", "flights,music", *FAST, "--max-steps", 30, "--output-dir", "runs/quickstart").exit_code == 0
    result = invoke("tag", "--task", "flights", input=b"show flights from boston to paris\n")
    assert result.exit_code == 0, result.output
    assert result.stdout == "show/O flights/O from/O boston/from to/O paris/to\n"
    assert "using runs/quickstart (the newest finished run with task 'flights' under ./runs)" in result.stderr
    named = invoke("tag", "runs/quickstart", "--task", "flights", input=b"show flights from boston to paris\n")
    assert named.exit_code == 0 and named.stdout == result.stdout and "using" not in named.stderr


def test_the_newest_finished_run_with_the_task_is_chosen(tmp_path, fake, monkeypatch):
    import hlcli.training

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HL_RUN", raising=False)
    for name, tasks in (("old", "flights,music"), ("new", "flights"), ("music-only", "music")):
        assert invoke("train", "--tasks", tasks, *FAST, "--max-steps", 10, "--output-dir", f"runs/{name}").exit_code == 0
    # Interrupted at step 7 of 10: newer still, but not finished.
    def build(*args, **kwargs):
        model = build_fake(*args, **kwargs)
        model.hook = lambda m, calls: os.kill(os.getpid(), signal.SIGINT) if calls == 7 else None
        return model

    monkeypatch.setattr(hlcli.training, "build_model", build)
    assert invoke("train", "--tasks", "flights", *FAST, "--max-steps", 10, "--output-dir", "runs/unfinished").exit_code == 130
    (tmp_path / "runs" / "not-a-run").mkdir()
    assert "using runs/new " in invoke("tag", "--task", "flights", input=b"x\n").stderr
    assert "using runs/music-only " in invoke("tag", "--task", "music", input=b"x\n").stderr
    with_env = invoke("tag", "--task", "flights", input=b"x\n", env={"HL_RUN": "runs/old"})
    assert with_env.exit_code == 0 and "using" not in with_env.stderr
    result = invoke("tag", "--task", "restaurant", input=b"x\n")
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "no finished run with task 'restaurant' under ./runs" in result.stderr and "hl train" in result.stderr


def test_hl_evaluate_without_a_run_takes_hl_run_else_the_newest_finished_run(tmp_path, fake, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HL_RUN", raising=False)
    missing = invoke("evaluate", "--split", "val")
    assert missing.exit_code == 2 and "no run given, HL_RUN unset and no finished run under ./runs" in missing.stderr
    assert "hl evaluate RUN" in missing.stderr
    for name, tasks in (("both", "flights,music"), ("flights", "flights")):
        assert invoke("train", "--tasks", tasks, *FAST, "--max-steps", 10, "--output-dir", f"runs/{name}").exit_code == 0
    newest = invoke("evaluate", "--split", "val")
    assert newest.exit_code == 0, newest.output
    assert "using runs/flights (the newest finished run under ./runs)" in newest.stderr
    assert (tmp_path / "runs" / "flights" / "eval.json").exists() and not (tmp_path / "runs" / "both" / "eval.json").exists()
    with_music = invoke("evaluate", "--split", "val", "--tasks", "music")
    assert with_music.exit_code == 0 and "using runs/both (the newest finished run with task 'music'" in with_music.stderr
    with_env = invoke("evaluate", "--split", "val", env={"HL_RUN": "runs/both"})
    assert with_env.exit_code == 0 and "using" not in with_env.stderr


def test_the_run_option_is_a_deprecated_alias(tmp_path, fake):
    run = tmp_path / "run"
    assert invoke("train", "--tasks", "flights", *FAST, "--max-steps", 10, "--output-dir", run).exit_code == 0
    result = invoke("tag", "--run", run, "--task", "flights", input=b"to paris\n")
    assert result.exit_code == 0 and result.stdout == "to/O paris/to\n"
    assert "--run is deprecated" in result.stderr
    both = invoke("tag", run, "--run", run, "--task", "flights", input=b"x\n")
    assert both.exit_code == 2 and "RUN or --run, not both" in both.stderr
    assert "--run" not in invoke("tag", "--help").stdout


# -- hl train's flags are TrainConfig's fields ----------------------------------------------------------
def test_every_config_field_is_a_flag_with_its_help(tmp_path, fake):
    import dataclasses

    from hlcli.config import TrainConfig

    text = invoke("train", "--help", env={"COLUMNS": "250"}).stdout
    for field in dataclasses.fields(TrainConfig):
        flag = {"method_overrides": "--set"}.get(field.name, "--" + field.name.replace("_", "-"))
        assert flag in text, flag
    assert "Task sampling temperature" in text  # help comes from the field's metadata
    # Fields that had no hand-written flag now have one.
    run = tmp_path / "run"
    result = invoke("train", "--tasks", "music", *FAST, "--max-steps", 2, "--temperature", 2, "--log-every", 1,
                    "--max-grad-norm", 0.5, "--eval-batch-size", 3, "--output-dir", run)  # fmt: skip
    assert result.exit_code == 0, result.output
    config = json.loads((run / "config.json").read_text())
    assert (config["temperature"], config["log_every"], config["max_grad_norm"], config["eval_batch_size"]) == (2.0, 1, 0.5, 3)



# -- --verbose / HL_VERBOSE: read from the command's own option, nothing global ---------------------
def test_verbose_comes_from_the_flag_or_hl_verbose_and_does_not_stick(tmp_path):
    missing = tmp_path / "missing"
    assert "Traceback" in invoke("evaluate", missing, "--verbose").output
    plain = invoke("evaluate", missing)
    assert plain.exit_code == 1 and "Traceback" not in plain.output and "no such run" in plain.stderr
    assert "Traceback" in invoke("evaluate", missing, env={"HL_VERBOSE": "1"}).output
    # A run folder called "-v" is a run folder, not a request for tracebacks.
    assert "Traceback" not in invoke("evaluate", "--", "-v").output
