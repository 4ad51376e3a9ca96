"""The CLI's conventions: how a run is named, hl train's flags are TrainConfig's fields, --verbose."""

from __future__ import annotations

import json

import pytest

from _cli import invoke
from _faults import ctrl_c_at, on_training_loss

pytestmark = pytest.mark.usefixtures("one_thread")

SENTENCE = "show flights from boston to paris"


def _train(*args) -> None:
    result = invoke("train", *args)
    assert result.exit_code == 0, result.output


def _tagged(line: str) -> tuple[list[str], list[str]]:
    """``hl tag``'s default output line → its words and tags."""
    pairs = [w.rsplit("/", 1) for w in line.split(" ")]
    return [w for w, _ in pairs], [t for _, t in pairs]


# -- naming the run: positional, $HL_RUN, else the newest finished run under ./runs -----------------
def test_readme_quickstart_then_hl_tag_with_only_a_task(tiny_run, toy_tasks):
    """`hl train` into runs/quickstart, then `hl tag --task T < input.txt` as typed in the README."""
    _train("--tasks", toy_tasks("flights", "music"), *tiny_run, "--max-steps", 2, "--output-dir", "runs/quickstart")
    result = invoke("tag", "--task", "flights", input=f"{SENTENCE}\n".encode())
    assert result.exit_code == 0, result.output
    words, tags = _tagged(result.stdout.removesuffix("\n"))
    assert words == SENTENCE.split() and set(tags) <= {"O", "from", "to"}, result.stdout
    assert "using runs/quickstart (the newest finished run with task 'flights' under ./runs)" in result.stderr
    named = invoke("tag", "runs/quickstart", "--task", "flights", input=f"{SENTENCE}\n".encode())
    assert named.exit_code == 0 and named.stdout == result.stdout and "using" not in named.stderr


def test_the_newest_finished_run_with_the_task_is_chosen(tmp_path, tiny_run, toy_tasks, monkeypatch):
    for name, tasks in (("old", ("flights", "music")), ("new", ("flights",)), ("music-only", ("music",))):
        _train("--tasks", toy_tasks(*tasks), *tiny_run, "--max-steps", 2, "--output-dir", f"runs/{name}")
    # Interrupted at step 2 of 4: newer still, but not finished.
    with monkeypatch.context() as patch:
        on_training_loss(patch, ctrl_c_at(2))
        result = invoke("train", "--tasks", toy_tasks("flights"), *tiny_run, "--max-steps", 4, "--output-dir", "runs/unfinished")
    assert result.exit_code == 130, result.output
    (tmp_path / "runs" / "not-a-run").mkdir()
    assert "using runs/new " in invoke("tag", "--task", "flights", input=b"x\n").stderr
    assert "using runs/music-only " in invoke("tag", "--task", "music", input=b"x\n").stderr
    with_env = invoke("tag", "--task", "flights", input=b"x\n", env={"HL_RUN": "runs/old"})
    assert with_env.exit_code == 0 and "using" not in with_env.stderr
    result = invoke("tag", "--task", "restaurant", input=b"x\n")
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "no finished run with task 'restaurant' under ./runs" in result.stderr and "hl train" in result.stderr


def test_hl_evaluate_without_a_run_takes_hl_run_else_the_newest_finished_run(tmp_path, tiny_run, toy_tasks):
    missing = invoke("evaluate", "--split", "val")
    assert missing.exit_code == 2 and "no run given, HL_RUN unset and no finished run under ./runs" in missing.stderr
    assert "hl evaluate RUN" in missing.stderr
    for name, tasks in (("both", ("flights", "music")), ("flights", ("flights",))):
        _train("--tasks", toy_tasks(*tasks), *tiny_run, "--max-steps", 2, "--output-dir", f"runs/{name}")
    newest = invoke("evaluate", "--split", "val")
    assert newest.exit_code == 0, newest.output
    assert "using runs/flights (the newest finished run under ./runs)" in newest.stderr
    assert (tmp_path / "runs" / "flights" / "eval.json").exists() and not (tmp_path / "runs" / "both" / "eval.json").exists()
    with_music = invoke("evaluate", "--split", "val", "--tasks", "music")
    assert with_music.exit_code == 0 and "using runs/both (the newest finished run with task 'music'" in with_music.stderr
    with_env = invoke("evaluate", "--split", "val", env={"HL_RUN": "runs/both"})
    assert with_env.exit_code == 0 and "using" not in with_env.stderr


def test_the_run_option_is_a_deprecated_alias(tmp_path, tiny_run, toy_tasks):
    run = tmp_path / "run"
    _train("--tasks", toy_tasks("flights"), *tiny_run, "--max-steps", 2, "--output-dir", run)
    result = invoke("tag", "--run", run, "--task", "flights", input=b"to paris\n")
    assert result.exit_code == 0 and _tagged(result.stdout.removesuffix("\n"))[0] == ["to", "paris"], result.output
    assert result.stdout == invoke("tag", run, "--task", "flights", input=b"to paris\n").stdout  # the same run
    assert "--run is deprecated" in result.stderr
    both = invoke("tag", run, "--run", run, "--task", "flights", input=b"x\n")
    assert both.exit_code == 2 and "RUN or --run, not both" in both.stderr
    assert "--run" not in invoke("tag", "--help").stdout


# -- hl train's flags are TrainConfig's fields ----------------------------------------------------------
def test_every_config_field_is_a_flag_with_its_help(tmp_path, tiny_run, toy_tasks):
    import dataclasses

    from hlcli.config import TrainConfig

    text = invoke("train", "--help", env={"COLUMNS": "250"}).stdout
    for field in dataclasses.fields(TrainConfig):
        flag = {"method_overrides": "--set"}.get(field.name, "--" + field.name.replace("_", "-"))
        assert flag in text, flag
    assert "Task sampling temperature" in text  # help comes from the field's metadata
    # Fields that had no hand-written flag now have one.
    run = tmp_path / "run"
    result = invoke("train", "--tasks", toy_tasks("music"), *tiny_run, "--max-steps", 2, "--temperature", 2, "--log-every", 1,
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
