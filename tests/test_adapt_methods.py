"""README: ``hl adapt`` "works for hyperloader, hyperformer and lora-only". tests/test_adapt.py covers
hyperloader in depth; here the two other methods get the central promise, on a tiny T5: the added
task trains, and with everything frozen (the default) the old tasks score bitwise as before."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from _adapt_runs import examples, outputs, train_base
from _cli import invoke
from hlcli import runs
from hlcli.adapt import TASK_TABLES
from hlcli.checkpoint import load_model

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: tiny models, one torch thread

OLD = ("atis", "snips")


def weights(run):
    return load_file(str(runs.checkpoint_dir(run, runs.LAST) / "model.safetensors"))


@pytest.mark.parametrize("method", ["hyperformer", "lora-only"])
def test_adapt_adds_a_task_and_leaves_the_old_ones_bitwise_unchanged(method, tmp_path, tiny_t5, data_dir):
    base = train_base(tmp_path / "base", tiny_t5, data_dir, method=method)
    before = load_model(runs.checkpoint_dir(base, runs.LAST))
    old_outputs = {task: outputs(before, task, examples(task, data_dir)) for task in OLD}

    result = invoke("adapt", base, "--tasks", "restaurant", "--data-dir", data_dir, "--max-steps", 4, "--eval-every", 4,
                    "--lr", "1e-2", "--no-progress", "--output-dir", tmp_path / "added")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "added restaurant in 4 steps" in result.stdout
    added = tmp_path / "added"
    assert json.loads((added / runs.CONFIG).read_text())["method"] == method

    after = load_model(runs.checkpoint_dir(added, runs.LAST))
    assert [t.name for t in after.tasks] == [*OLD, "restaurant"]
    for task in OLD:
        assert torch.equal(outputs(after, task, examples(task, data_dir)), old_outputs[task]), task
    old, new = weights(base), weights(added)
    (table,) = [name for name in TASK_TABLES if name in old]
    assert set(new) == set(old)  # T5: no head; the table only grew a row
    for name, tensor in old.items():
        if name == table:
            assert new[name].shape[0] == len(OLD) + 1 and torch.equal(new[name][: len(OLD)], tensor)
            assert not torch.equal(new[name][len(OLD)], tensor.mean(0))  # started at the mean, then trained
        else:
            assert torch.equal(new[name], tensor), name
    # The new task is served like any other.
    tagged = invoke("tag", added, "--task", "restaurant", input="a table for two\n")
    assert tagged.exit_code == 0, tagged.output
    assert [pair.split("/")[0] for pair in tagged.stdout.split()] == ["a", "table", "for", "two"]
