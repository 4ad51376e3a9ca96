"""``hl train`` → ``hl evaluate`` → ``hl tag`` through the CLI, on real models (conftest's tiny T5)."""

from __future__ import annotations

import json
import os
import signal

import pytest

from _cli import invoke
from _faults import ctrl_c_at, loss_at, on_training_loss
from hlcli import runs

pytestmark = pytest.mark.usefixtures("one_thread")


def test_default_run_folder_name(tmp_path, tiny_run, toy_tasks):
    result = invoke("train", "--tasks", toy_tasks("music"), *tiny_run, "--max-steps", 2, "--fraction", "0.5")
    assert result.exit_code == 0, result.output
    (folder,) = (tmp_path / "runs").iterdir()  # conftest: each test runs in its own tmp_path
    assert folder.name.startswith("hyperloader-music-0.5-")


def test_ctrl_c_exits_130_and_resume_finishes_the_run(tmp_path, tiny_run, toy_tasks, monkeypatch):
    run = tmp_path / "run"
    with monkeypatch.context() as patch:
        on_training_loss(patch, ctrl_c_at(3))  # Ctrl-C while step 3 computes its loss
        result = invoke("train", "--tasks", toy_tasks("flights", "music"), *tiny_run, "--max-steps", 4,
                        "--output-dir", run, "--progress")  # fmt: skip
    assert result.exit_code == 130, result.output
    assert f"resume with: hl train --resume {run}" in result.stderr
    assert json.loads((runs.checkpoint_dir(run, "last") / "trainer_state.json").read_text())["step"] == 3

    result = invoke("train", "--resume", run, "--lr", "1")
    assert result.exit_code == 2 and "--resume takes its settings from the run folder; drop lr" in result.stderr
    result = invoke("train", "--resume", run, "--max-steps", 5, "--no-progress")
    assert result.exit_code == 0, result.output
    assert "trained 5 steps" in result.stdout
    assert json.loads((run / "config.json").read_text())["max_steps"] == 4  # the recorded config is kept


def test_nonfinite_loss_exits_1_naming_step_and_task(tmp_path, tiny_run, toy_tasks, monkeypatch):
    on_training_loss(monkeypatch, loss_at(3, float("nan")))  # a real model cannot be made to give nan at step 3
    result = invoke("train", "--tasks", toy_tasks("music"), *tiny_run, "--max-steps", 4, "--output-dir", tmp_path / "run")
    assert result.exit_code == 1
    assert "error: non-finite loss (nan) at step 3 on task 'music'" in result.stderr
    assert "Traceback" not in result.output


def test_recipe_and_usage_errors(tmp_path):
    recipe = tmp_path / "bad.toml"
    recipe.write_text('tasks = ["music"]\nsteps = 3\n')
    result = invoke("train", "--recipe", recipe)
    assert result.exit_code == 1 and "unknown setting 'steps'" in result.stderr and "max_steps" in result.stderr
    result = invoke("train", "--tasks", "atis", "--schedule", "cosine")
    assert result.exit_code == 2 and "schedule = 'cosine'" in result.stderr
    result = invoke("train", "--tasks", "atis", "--set", "novalue")
    assert result.exit_code == 2 and "key=value" in result.stderr
    result = invoke("train", "--tasks", "atis", "--fraction", "2")
    assert result.exit_code == 2 and "fraction 2.0 out of range" in result.stderr
    result = invoke("evaluate", tmp_path / "missing")
    assert result.exit_code == 1 and "no such run or checkpoint folder" in result.stderr
    for command in ("train", "evaluate", "tag"):
        assert "Example" in invoke(command, "--help").stdout


def test_recipes_in_the_repository_load():
    from hlcli.config import load_config

    folder = runs.Path(__file__).resolve().parent.parent / "recipes"
    recipes = sorted(folder.glob("*.toml"))
    assert {p.name for p in recipes} >= {"smoke.toml", "paper-table3.toml", "paper-table4.toml", "cpu-minilm.toml"}
    for recipe in recipes:
        config = load_config(recipe)
        assert config.tasks, recipe


# -- the real thing: HyperLoader on a tiny random T5, real corpora, real checkpoints ----------------

# ~13 ATIS and ~21 MIT Restaurant training sentences, 2 + 2 validation sentences.
REAL = ["--tasks", "atis,restaurant", "--fraction", "0.003", "--batch-size", "4", "--lr", "3e-3", "--warmup-steps", "2",
        "--schedule", "constant", "--set", "reduction_factor=4", "--no-progress"]  # fmt: skip


@pytest.mark.slow
def test_end_to_end_hyperloader_t5_train_evaluate_tag(tmp_path, tiny_t5, data_dir):
    """hl train → hl evaluate → hl tag with the real method, checkpoint format and corpora: what
    each command writes and prints.

    This checks the plumbing end to end (12 steps); that the pipeline learns (F1 1.0 on its
    training slice) is shown by tests/test_e2e_learning.py.
    """
    run = tmp_path / "run"
    result = invoke("train", *REAL, "--model", tiny_t5, "--data-dir", data_dir, "--max-steps", 12,
                    "--eval-every", 6, "--checkpoint-every", 6, "--output-dir", run)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "trained 12 steps" in result.stdout and f"hl evaluate {run}" in result.stdout
    assert "eval step 6: val_loss" in result.stderr  # one summary line per evaluation
    config = json.loads((run / "config.json").read_text())
    assert config["method_overrides"] == {"reduction_factor": 4} and config["max_steps"] == 12
    assert config["tasks"] == ["atis", "restaurant"]
    last = runs.checkpoint_dir(run, "last")
    card = json.loads((last / "config.json").read_text())
    assert card["method"] == "hyperloader" and [t["name"] for t in card["tasks"]] == ["atis", "restaurant"]
    assert card["extra"]["step"] == 12 and card["method_config"]["reduction_factor"] == 4
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    evals = {r["step"]: r["eval"] for r in records if "eval" in r}
    assert sorted(evals) == [6, 12] and all(0 < e["val_loss"] < 20 for e in evals.values())
    assert runs.is_checkpoint_dir(runs.checkpoint_dir(run, "best"))

    result = invoke("evaluate", run, "--split", "train", "--output", tmp_path / "train.json")
    assert result.exit_code == 0, result.output
    scores = json.loads((tmp_path / "train.json").read_text())
    assert set(scores["tasks"]) == {"atis", "restaurant"} and 0.0 <= scores["average_f1"] <= 1.0
    assert scores["split"] == "train" and scores["tasks"]["atis"]["sentences"] == 13
    assert "Average" in result.stdout and f"{scores['average_f1']:.4f}" in result.stdout
    assert "scoring: seqeval default mode (conlleval-compatible" in result.stdout
    assert (run / "predictions" / "train" / "restaurant.jsonl").is_file()
    predictions = [json.loads(line) for line in (run / "predictions" / "train" / "atis.jsonl").read_text().splitlines()]
    assert all(len(p["pred"]) == len(p["tokens"]) == len(p["gold"]) for p in predictions)

    # --format sbio: word/TYPE per word (O outside a slot), the empty line kept.
    result = invoke("tag", "--run", run, "--task", "atis", "--format", "sbio", input=b"show flights from boston to paris\n\n")
    assert result.exit_code == 0, result.output
    first, second, end = result.stdout.split("\n")
    assert (second, end) == ("", "")
    types = {"O", *next(t["types"] for t in card["tasks"] if t["name"] == "atis")}
    assert [w.rsplit("/", 1)[0] for w in first.split(" ")] == "show flights from boston to paris".split()
    assert all(w.rsplit("/", 1)[1] in types for w in first.split(" ")), first

    text = "book a table at an italian place\n\n  \t \ncheap 🍕 near Tel Aviv tonight\n"
    result = invoke("tag", "--run", run, "--task", "restaurant", "--format", "jsonl", input=text.encode())
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["text"] for r in records] == ["book a table at an italian place", "", "  \t ", "cheap 🍕 near Tel Aviv tonight"]
    assert [len(r["tags"]) for r in records] == [7, 0, 0, 6]
    for r in records:
        assert all(r["text"][s["start"] : s["end"]] == s["text"] for s in r["spans"])


@pytest.mark.slow
def test_end_to_end_resume_is_bitwise_with_t5_dropout(tmp_path, tiny_t5, data_dir, monkeypatch):
    """Ctrl-C at step 3 + --resume gives the same tensors as 6 uninterrupted steps (T5 dropout included)."""
    import torch
    from safetensors.torch import load_file

    import hlcli.training.loop

    args = [*REAL, "--model", tiny_t5, "--data-dir", data_dir, "--max-steps", 6, "--eval-every", 3, "--checkpoint-every", 100]
    assert invoke("train", *args, "--output-dir", tmp_path / "straight").exit_code == 0

    real_step, calls = hlcli.training.loop.optimizer_step, []

    def step_then_ctrl_c(*a, **k):
        calls.append(1)
        if len(calls) == 3:
            os.kill(os.getpid(), signal.SIGINT)
        return real_step(*a, **k)

    monkeypatch.setattr(hlcli.training.loop, "optimizer_step", step_then_ctrl_c)
    assert invoke("train", *args, "--output-dir", tmp_path / "split").exit_code == 130
    monkeypatch.setattr(hlcli.training.loop, "optimizer_step", real_step)
    result = invoke("train", "--resume", tmp_path / "split", "--no-progress")
    assert result.exit_code == 0, result.output
    for name in ("model.safetensors", "optimizer.safetensors", "rng.safetensors"):
        a = load_file(str(runs.checkpoint_dir(tmp_path / "straight", "last") / name))
        b = load_file(str(runs.checkpoint_dir(tmp_path / "split", "last") / name))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name


@pytest.mark.parametrize(
    ("extra", "message"),
    [(["--method", "nope"], "unknown method 'nope'; known methods: full-finetune, hyperdecoder, hyperformer, hyperloader"),
     (["--set", "nope=1"], "unknown option(s) 'nope' for method 'hyperloader'")],
)  # fmt: skip
def test_a_misspelt_method_or_option_is_reported_before_the_data_folder(tmp_path, extra, message):
    result = invoke("train", "--tasks", "atis", *extra, "--data-dir", tmp_path / "no-data", "--output-dir", tmp_path / "r")
    assert result.exit_code == 2, result.output
    assert message in result.output and "data folder" not in result.output
    assert not (tmp_path / "r").exists()

