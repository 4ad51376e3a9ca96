"""``hl adapt``: add a task to a trained run; frozen mode leaves the old tasks bitwise untouched."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file

from _adapt_runs import BASE_STEPS, bert_base, examples, outputs, t5_base  # noqa: F401 - fixtures

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: tiny models, one torch thread
from _cli import invoke
from hlcli import runs
from hlcli.checkpoint import load_model

OLD = ("atis", "snips")


def adapt(base, out, data_dir, *extra):
    result = invoke("adapt", base, "--tasks", "restaurant", "--data-dir", data_dir, "--max-steps", 4, "--eval-every", 4,
                    "--checkpoint-every", 4, "--lr", "1e-2", "--no-progress", "--output-dir", out, *extra)
    assert result.exit_code == 0, result.output
    return out


def weights(run):
    return load_file(str(runs.checkpoint_dir(run, runs.LAST) / "model.safetensors"))


TABLES = ("source.task_embeddings.weight", "task_embeddings")


@pytest.mark.parametrize("backbone", ["t5_base", "bert_base"])
def test_frozen_add_keeps_old_tasks_bitwise(backbone, request, tmp_path, data_dir):
    base = request.getfixturevalue(backbone)
    before = load_model(runs.checkpoint_dir(base, runs.LAST))
    old_outputs = {t: outputs(before, t, examples(t, data_dir)) for t in OLD}
    old_tags = {t: before.predict(t, [e.tokens for e in examples(t, data_dir)]) for t in OLD}

    added = adapt(base, tmp_path / "added", data_dir, "--init", "mean")
    after = load_model(runs.checkpoint_dir(added, runs.LAST))  # loads as a plain hyperloader checkpoint
    assert [t.name for t in after.tasks] == [*OLD, "restaurant"]
    for task in OLD:
        assert torch.equal(outputs(after, task, examples(task, data_dir)), old_outputs[task]), task
        assert after.predict(task, [e.tokens for e in examples(task, data_dir)]) == old_tags[task]

    old, new = weights(base), weights(added)
    extra = set(new) - set(old)  # the new task's head on an encoder; nothing on T5
    assert set(old) <= set(new) and all(n.startswith("heads.2.") for n in extra) and bool(extra) == (backbone == "bert_base")
    for name, tensor in old.items():
        if name in TABLES:
            assert torch.equal(new[name][: len(OLD)], tensor)
            # the new row started at the mean of the old ones and has trained away from it
            assert not torch.equal(new[name][len(OLD)], tensor.mean(0))
        else:
            assert torch.equal(new[name], tensor), name


def test_unfrozen_generator_moves_but_old_rows_stay(t5_base, tmp_path, data_dir):
    added = adapt(t5_base, tmp_path / "tuned", data_dir, "--unfreeze", "hypernetwork", "--generator-lr", "1e-2",
                  "--replay", "--init", "random")
    old, new = weights(t5_base), weights(added)
    generator = [n for n in old if ".hypernetworks." in n]
    assert generator and any(not torch.equal(old[n], new[n]) for n in generator)
    table = "source.task_embeddings.weight"
    assert torch.equal(new[table][: len(OLD)], old[table])
    # T5's own layer norms are shared but not part of the generator: they stay frozen
    norms = [n for n in old if n.startswith("backbone.")]
    assert norms and all(torch.equal(old[n], new[n]) for n in norms)
    config = json.loads((added / "config.json").read_text())
    assert config["tasks"] == [*OLD, "restaurant"]  # replay samples the old tasks too
    assert config["adapt"]["unfreeze"] == "hypernetwork" and config["adapt"]["generator_lr"] == 1e-2


def test_history_in_config_and_model_card(t5_base, tmp_path, data_dir):
    added = adapt(t5_base, tmp_path / "added", data_dir)
    checkpoint = runs.checkpoint_dir(added, runs.LAST)
    history = json.loads((checkpoint / "config.json").read_text())["history"]
    assert history == [
        {"stage": "joint", "tasks": list(OLD), "steps": BASE_STEPS},
        {"stage": "added", "tasks": ["restaurant"], "steps": 4, "init": "mean", "unfreeze": "none", "replay": False},
    ]
    card = (checkpoint / "README.md").read_text()
    assert "| joint | atis, snips | 6 | trained jointly from scratch |" in card
    assert "| added | restaurant | 4 | added later (init mean, unfrozen: none, replay: no) |" in card
    # a second addition chains the history
    again = invoke("adapt", added, "--tasks", "mtod", "--data-dir", data_dir, "--max-steps", 2, "--eval-every", 2,
                   "--no-progress", "--output-dir", tmp_path / "again")
    assert again.exit_code == 0, again.output
    history = json.loads((runs.checkpoint_dir(tmp_path / "again", runs.LAST) / "config.json").read_text())["history"]
    assert [(h["stage"], h["tasks"], h["steps"]) for h in history] == [
        ("joint", list(OLD), 6), ("added", ["restaurant"], 4), ("added", ["mtod"], 2)]


def test_resume_an_adapted_run(t5_base, tmp_path, data_dir):
    added = adapt(t5_base, tmp_path / "added", data_dir)
    result = invoke("train", "--resume", added, "--max-steps", 6, "--data-dir", data_dir, "--no-progress")
    assert result.exit_code == 0, result.output
    assert runs.checkpoint_step(runs.checkpoint_dir(added, runs.LAST)) == 6
    old, new = weights(t5_base), weights(added)
    assert all(torch.equal(new[n][: len(OLD)] if n in TABLES else new[n], t) for n, t in old.items())


def test_refusals(t5_base, tmp_path, data_dir):
    def run(*args):
        result = invoke("adapt", t5_base, "--data-dir", data_dir, "--no-progress", "--output-dir", tmp_path / "x", *args)
        assert result.exit_code == 2, result.output
        assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1, result.output
        return result.output

    assert "already in the model" in run("--tasks", "atis")
    assert "--replay trains nothing" in run("--tasks", "restaurant", "--replay")
    assert "expected mean | random" in run("--tasks", "restaurant", "--init", "zeros")
    assert not (tmp_path / "x").exists()
    # a method without task embeddings says why
    other = tmp_path / "unipelt"
    shutil.copytree(runs.checkpoint_dir(t5_base, runs.LAST), other)
    config = json.loads((other / "config.json").read_text())
    (other / "config.json").write_text(json.dumps({**config, "method": "unipelt"}))
    result = invoke("adapt", other, "--tasks", "restaurant", "--no-progress")
    assert result.exit_code == 2 and "cannot add a task to a unipelt model" in result.output, result.output


def test_default_rates_new_embeddings_at_1e_2_and_the_generator_at_a_tenth_of_the_base_run(t5_base, tmp_path):
    from hlcli.adapt import EMBEDDING_LR, adapt_config

    base_lr = json.loads((t5_base / "config.json").read_text())["lr"]
    frozen = adapt_config(t5_base, tasks=["restaurant"], output_dir=tmp_path / "a")
    assert frozen.lr == EMBEDDING_LR == 1e-2 and frozen.adapt["generator_lr"] is None
    tuned = adapt_config(t5_base, tasks=["restaurant"], unfreeze="hypernetwork", settings={"lr": 3e-2}, output_dir=tmp_path / "b")
    # --lr sets the new rows' rate only; the generator's follows the rate it was trained at.
    assert tuned.lr == 3e-2 and tuned.adapt["generator_lr"] == pytest.approx(base_lr / 10)
