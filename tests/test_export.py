"""``hl export``: one task's generated weights as a plain (static) checkpoint that tags like the full run."""

from __future__ import annotations

import json

import pytest
import torch

from _adapt_runs import bert_base, examples, outputs, t5_base  # noqa: F401 - fixtures

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: tiny models, one torch thread
from _cli import invoke
from hlcli import runs
from hlcli.checkpoint import load_model
from hlcli.methods.hyperloader.hypernetwork import HyperNetwork


def tag(run, task, text):
    result = invoke("tag", "--run", run, "--task", task, "--format", "conll", input=text.encode())
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.mark.parametrize("backbone", ["t5_base", "bert_base"])
@pytest.mark.parametrize("merge", [True, False])
def test_export_tags_like_the_full_run(backbone, merge, request, tmp_path, data_dir):
    run = request.getfixturevalue(backbone)
    out = tmp_path / "atis"
    flag = "--merge-lora" if merge else "--no-merge-lora"
    result = invoke("export", run, "--task", "atis", "-o", out, flag)
    assert result.exit_code == 0, result.output
    assert "exported atis" in result.stdout

    config = json.loads((out / "config.json").read_text())
    assert config["method"] == "static" and [t["name"] for t in config["tasks"]] == ["atis"]
    assert config["method_config"]["use_lora"] is not merge
    assert bool(config["backbone_tensors"]) is merge  # merged q/v are stored as backbone weights
    assert all(n.endswith((".q.weight", ".v.weight", ".query.weight", ".value.weight")) for n in config["backbone_tensors"])
    assert config["history"][0]["tasks"] == ["atis", "snips"]
    assert "Exported by `hl export`" in (out / "README.md").read_text()

    full, exported = load_model(runs.checkpoint_dir(run, runs.BEST)), load_model(out)
    assert not any(isinstance(m, HyperNetwork) for m in exported.modules())  # no generator in the exported model
    batch = examples("atis", data_dir)
    # same numbers up to float rounding of the merged / factored LoRA, and the same tags
    torch.testing.assert_close(outputs(exported, "atis", batch), outputs(full, "atis", batch), rtol=1e-5, atol=1e-5)
    text = "".join(" ".join(e.tokens) + "\n" for e in batch) + "show me flights from boston to denver\n"
    assert tag(out, "atis", text) == tag(run, "atis", text)


def test_export_is_bitwise_when_merged_on_t5(t5_base, tmp_path, data_dir):
    """Merged at export = merged by the full model's inference cache: the very same tensors."""
    out = tmp_path / "atis"
    assert invoke("export", t5_base, "--task", "atis", "-o", out).exit_code == 0
    full, exported = load_model(runs.checkpoint_dir(t5_base, runs.BEST)), load_model(out)
    batch = examples("atis", data_dir)
    assert torch.equal(outputs(exported, "atis", batch), outputs(full, "atis", batch))


def test_export_errors(t5_base, tmp_path):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x").write_text("x")
    for args, message in (
        (("--task", "atis", "-o", tmp_path / "busy"), "output folder already exists and is not empty"),
        (("--task", "mtop", "-o", tmp_path / "new"), "unknown task 'mtop'"),
    ):
        result = invoke("export", t5_base, *args)
        assert result.exit_code == 2 and message in result.output, result.output
        assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "new").exists()
    exported = tmp_path / "atis"
    assert invoke("export", t5_base, "--task", "atis", "-o", exported).exit_code == 0
    result = invoke("export", exported, "--task", "atis", "-o", tmp_path / "again")
    assert result.exit_code == 2 and "nothing to export from a static model" in result.output, result.output
