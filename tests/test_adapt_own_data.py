"""``hl adapt RUN --tasks pets=FOLDER``: one's own corpus added to a trained model, recorded like ``hl train``'s."""

from __future__ import annotations

import json

import pytest

from _cli import invoke

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: tiny models, one torch thread

STEPS = ["--max-steps", 2, "--eval-every", 2, "--checkpoint-every", 2, "--no-progress"]


@pytest.fixture
def base(tmp_path, tiny_run, toy_tasks):
    """A tiny HyperLoader run on the toy ``flights`` corpus, itself read as own data."""
    run = tmp_path / "base"
    result = invoke("train", "--tasks", toy_tasks("flights"), *tiny_run, "--max-steps", 2, "--output-dir", run)
    assert result.exit_code == 0, result.output
    return run


def test_adapt_adds_an_own_folder_and_records_where_it_lives(base, tmp_path, toy_tasks):
    spec = toy_tasks("music")  # "music=FOLDER"
    folder = spec.split("=", 1)[1]
    added = tmp_path / "added"
    result = invoke("adapt", base, "--tasks", spec, *STEPS, "--output-dir", added)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("added music in 2 steps;")

    config = json.loads((added / "config.json").read_text())
    assert config["tasks"] == ["music"]  # the name alone, as hl train records it
    assert config["task_sources"]["music"]["path"] == folder
    assert config["task_sources"]["music"]["detected_format"] == "conll"  # pinned when first read
    assert set(config["task_sources"]["music"]["sha256"]) == {"train", "val", "test"}
    assert config["adapt"]["added"] == ["music"]
    checkpoint = json.loads((added / "checkpoints" / "last" / "config.json").read_text())
    assert [t["name"] for t in checkpoint["tasks"]] == ["flights", "music"]

    # The base model's own task is not trained here (no --replay), but the model serves it: where its
    # data lives is recorded too, as the base run pinned it.
    base_sources = json.loads((base / "config.json").read_text())["task_sources"]
    assert config["adapt"]["base_sources"] == {"flights": base_sources["flights"]}

    # hl evaluate scores both tasks from the run's own record (no --tasks, no data dir).
    scored = invoke("evaluate", added, "--split", "val")
    assert scored.exit_code == 0, scored.output
    assert set(json.loads((added / "eval.json").read_text())["val"]["tasks"]) == {"flights", "music"}


def test_replay_keeps_the_base_runs_own_sources(base, tmp_path, toy_tasks):
    added = tmp_path / "replayed"
    result = invoke("adapt", base, "--tasks", toy_tasks("music"), "--unfreeze", "hypernetwork", "--replay", *STEPS,
                    "--output-dir", added)  # fmt: skip
    assert result.exit_code == 0, result.output
    config = json.loads((added / "config.json").read_text())
    assert config["tasks"] == ["flights", "music"]
    base_sources = json.loads((base / "config.json").read_text())["task_sources"]
    assert config["task_sources"]["flights"] == base_sources["flights"]  # the base run's data, as pinned
    assert config["adapt"]["added"] == ["music"]


def test_a_name_already_in_the_model_or_a_missing_folder_is_refused(base, tmp_path, toy_tasks):
    again = invoke("adapt", base, "--tasks", toy_tasks("flights"), *STEPS, "--output-dir", tmp_path / "x")
    assert again.exit_code == 2 and "task 'flights' is already in the model" in again.output
    missing = invoke("adapt", base, "--tasks", f"pets={tmp_path / 'nowhere'}", *STEPS, "--output-dir", tmp_path / "y")
    assert missing.exit_code != 0 and "Traceback" not in missing.output
    assert str(tmp_path / "nowhere") in missing.output
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()
