"""Shareable runs: a model card with a Hugging Face YAML header, the scores, the data and the command
that trained the run; ``hl export --hub-dir`` lays out a folder the hub takes as it is (no network)."""

from __future__ import annotations

import shlex

import pytest
import yaml
from safetensors.torch import load_file

from _cli import invoke
from hlcli import runs

pytestmark = pytest.mark.usefixtures("one_thread")


def card_parts(path):
    text = path.read_text(encoding="utf-8")
    assert text.startswith("---\n")
    head, body = text[4:].split("\n---\n", 1)
    return yaml.safe_load(head), body


@pytest.fixture
def scored_run(tmp_path, tiny_run, toy_tasks):
    run = tmp_path / "run"
    result = invoke("train", "--tasks", toy_tasks("flights", "music"), *tiny_run, "--max-steps", 2,
                    "--fraction", "0.5,music=1", "--output-dir", run)  # fmt: skip
    assert result.exit_code == 0, result.output
    best = runs.checkpoint_dir(run, runs.BEST)
    meta, body = card_parts(best / "README.md")
    assert "model-index" not in meta and "## Scores" not in body  # not evaluated yet
    result = invoke("evaluate", run, "--split", "val")
    assert result.exit_code == 0, result.output
    return run


def test_the_card_has_the_hub_header_the_scores_the_data_and_the_command(scored_run, tiny_t5):
    from huggingface_hub import ModelCard

    card = runs.checkpoint_dir(scored_run, runs.BEST) / "README.md"
    meta, body = card_parts(card)
    assert meta["library_name"] == "hlcli" and meta["pipeline_tag"] == "token-classification"
    assert meta["tags"][:2] == ["hlcli", "hyperloader"] and meta["metrics"] == ["f1", "precision", "recall"]
    assert "base_model" not in meta  # a local backbone folder has no hub id
    # huggingface_hub reads the header back into its own evaluation results.
    loaded = ModelCard.load(card)
    results = {(r.dataset_name, r.dataset_split, r.metric_type): r.metric_value for r in loaded.data.eval_results}
    import json

    scores = json.loads((scored_run / runs.EVAL).read_text())["val"]["tasks"]
    assert set(results) == {(t, "val", m) for t in ("flights", "music") for m in ("f1", "precision", "recall")}
    assert all(results[t, "val", m] == round(scores[t][m], 4) for t, _, m in results)
    assert f"| val | music | {scores['music']['f1']:.4f} |" in body
    assert "- **flights**: `" in body and "50% of its training and validation data" in body
    assert "- **music**: `" in body and "100% of its training and validation data" in body


def test_the_cards_command_trains_the_same_run(scored_run, tmp_path):
    (_, body) = card_parts(runs.checkpoint_dir(scored_run, runs.BEST) / "README.md")
    command = body.split("## How it was trained\n\n```\n", 1)[1].split("\n```", 1)[0]
    words = shlex.split(command)
    assert words[:2] == ["hl", "train"] and "--fraction" in words and words[words.index("--fraction") + 1] == "flights=0.5,music=1"
    words[words.index("--output-dir") + 1] = str(tmp_path / "again")
    result = invoke(*words[1:], "--no-progress")
    assert result.exit_code == 0, result.output
    first = load_file(str(runs.checkpoint_dir(scored_run, runs.LAST) / "model.safetensors"))
    again = load_file(str(runs.checkpoint_dir(tmp_path / "again", runs.LAST) / "model.safetensors"))
    assert first.keys() == again.keys() and all((first[k] == again[k]).all() for k in first)


def test_hub_dir_holds_what_upload_folder_pushes(scored_run, tmp_path):
    from huggingface_hub import metadata_load

    hub = tmp_path / "hub"
    result = invoke("export", scored_run, "--hub-dir", hub)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in hub.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    assert f"hub folder {hub}: README.md, config.json, model.safetensors; scores of val" in result.stdout
    meta = metadata_load(hub / "README.md")
    assert meta["model-index"][0]["name"] == "run" and meta["library_name"] == "hlcli"
    best = runs.checkpoint_dir(scored_run, runs.BEST)
    assert (hub / "model.safetensors").read_bytes() == (best / "model.safetensors").read_bytes()
    # The folder is a checkpoint: hl tag reads it as it reads the run.
    text = b"show flights from boston to denver\n"
    tagged = invoke("tag", "--run", hub, "--task", "flights", "--format", "conll", input=text)
    assert tagged.exit_code == 0 and tagged.stdout == invoke("tag", "--run", scored_run, "--task", "flights",
                                                               "--format", "conll", input=text).stdout  # fmt: skip
    again = invoke("export", scored_run, "--hub-dir", hub)
    assert again.exit_code == 2 and "not empty" in again.stderr
    assert invoke("export", scored_run).exit_code == 2  # neither -o nor --hub-dir

    # With --task: that task's plain export, its own scores only.
    one = tmp_path / "hub-music"
    result = invoke("export", scored_run, "--task", "music", "--hub-dir", one)
    assert result.exit_code == 0, result.output
    meta = metadata_load(one / "README.md")
    assert meta["tags"][1] == "static" and meta["model-index"][0]["name"] == "run-music"
    assert {r["dataset"]["name"] for r in meta["model-index"][0]["results"]} == {"music"}


def test_base_model_is_the_backbones_hub_id():
    from hlcli.card import base_model

    assert base_model({"name": "minilm"}) == "sentence-transformers/all-MiniLM-L6-v2"
    assert base_model({"name": "t5-base"}) == "t5-base"
    assert base_model({"name": "/models/tiny-t5"}) is None


def test_a_checkpoint_replaced_while_it_was_scored_keeps_its_own_card(scored_run, monkeypatch):
    """``hl evaluate`` of a run that is still training: the trainer swaps checkpoints/best whole
    between the load and the card's rewrite. The new model's card must not get the old model's
    scores, and a best/ that is gone for a moment must not be created again holding only a card
    (the concurrency test caught "checkpoints/best/README.md: No such file or directory")."""
    import json

    import hlcli.checkpoint
    import hlcli.evaluation

    best = runs.checkpoint_dir(scored_run, runs.BEST)
    scored_step = runs.checkpoint_step(best)
    record = json.loads((scored_run / runs.EVAL).read_text())["val"]
    assert record["step"] == scored_step  # eval.json names the model it scored
    state = best / runs.TRAINER_STATE
    trainer_card = "---\nlibrary_name: hlcli\n---\nthe trainer's card of a newer model\n"

    def replaced_by_the_trainer(checkpoint, run_dir, **kwargs):  # the swap, then the real refresh
        data = json.loads(state.read_text())
        state.write_text(json.dumps({**data, "step": scored_step + 1}))
        (best / "README.md").write_text(trainer_card)
        return real_refresh(checkpoint, run_dir, **kwargs)

    real_refresh = hlcli.checkpoint.refresh_card
    monkeypatch.setattr(hlcli.evaluation, "refresh_card", replaced_by_the_trainer)
    result = invoke("evaluate", scored_run, "--split", "test")
    assert result.exit_code == 0, result.output
    assert (best / "README.md").read_text() == trainer_card
    # Refreshed later for the new model (its own evaluation), the card shows no score of the old one.
    hlcli.checkpoint.refresh_card(best, scored_run)
    meta, body = card_parts(best / "README.md")
    assert "model-index" not in meta and "## Scores" not in body

    # Gone while scored (between two renames of a swap): nothing is created for the card alone.
    moved = best.with_name("best-aside")
    best.rename(moved)
    hlcli.checkpoint.refresh_card(best, scored_run, step=scored_step)
    assert not best.exists()
