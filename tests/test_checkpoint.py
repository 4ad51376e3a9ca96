"""Checkpoints: save → load gives identical outputs; mismatches are refused with a named problem."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from conftest import save_tiny_t5
from hlcli.checkpoint import load_model, save_model
from hlcli.data.example import Example
from hlcli.errors import HLError
from hlcli.methods import build_model
from hlcli.methods.base import TaskSpec

TASKS = [TaskSpec("ner", ["LOC", "PER"]), TaskSpec("slots", ["MUSIC_ITEM"])]
SENTENCES = [["John", "lives", "in", "Paris"], ["play", "a", "song"]]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def saved(tmp_path_factory, t5_tokenizer_path):
    root = tmp_path_factory.mktemp("ckpt")
    backbone = save_tiny_t5(root / "t5", t5_tokenizer_path)
    model = build_model("hyperloader", backbone=backbone, tasks=TASKS, overrides={"lora_rank": 4})
    with torch.no_grad():  # as if trained: every trainable tensor moves away from its init
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p) * 0.1)
    save_model(model, root / "model", metrics={"avg_f1": 0.5})
    return model, root / "model", root


def test_roundtrip_is_identical(saved):
    model, folder, _ = saved
    loaded = load_model(folder)
    assert loaded.method == "hyperloader" and loaded.method_config == model.method_config
    assert [t.name for t in loaded.tasks] == ["ner", "slots"] and loaded.tasks[0].types == ["LOC", "PER"]
    batch = model.collate("ner", [Example("ner", tuple(SENTENCES[0]), ("B-PER", "O", "O", "B-LOC"))])
    model.eval()
    with torch.no_grad():
        assert torch.equal(model("ner", batch, use_cache=False), loaded("ner", batch, use_cache=False))
    assert model.predict("ner", SENTENCES) == loaded.predict("ner", SENTENCES)
    assert loaded.parameter_counts() == model.parameter_counts()


def test_folder_contents(saved):
    model, folder, _ = saved
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    config = json.loads((folder / "config.json").read_text())
    assert config["method_config"]["lora_rank"] == 4
    assert config["backbone"]["fingerprint"]["d_model"] == 32
    assert config["parameters"]["trainable"] == model.parameter_counts()[1]
    assert {"hlcli", "torch", "transformers"} <= set(config["versions"])
    tensors = load_file(str(folder / "model.safetensors"))
    assert set(tensors) == {n for n, p in model.named_parameters() if p.requires_grad}
    card = (folder / "README.md").read_text()
    assert "MUSIC_ITEM" in card and "avg_f1" in card


def tamper(folder, tmp_path, *, tensors=None, config=None):
    """A copy of the checkpoint with its tensors and/or config changed."""
    copy = tmp_path / "tampered"
    copy.mkdir()
    data = load_file(str(folder / "model.safetensors"))
    save_file(tensors(data) if tensors else data, str(copy / "model.safetensors"))
    cfg = json.loads((folder / "config.json").read_text())
    (copy / "config.json").write_text(json.dumps(config(cfg) if config else cfg))
    return copy


def _drop_one(data):
    data.pop(sorted(data)[0])
    return data


def _with_task(cfg):
    cfg["tasks"].append({"name": "extra", "types": []})
    return cfg


def _lora_rank(cfg):
    cfg["method_config"]["lora_rank"] = 8
    return cfg


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(tensors=_drop_one), "missing tensor"),
        (dict(tensors=lambda d: {**d, "source.extra": torch.zeros(2)}), r"unexpected tensor\(s\) source.extra"),
        (dict(config=_with_task), r"task_embeddings.weight has shape \(2, 64\)"),
        (dict(config=_lora_rank), "lora_A.weight has shape"),
    ],
)
def test_mismatches_are_refused(saved, tmp_path, change, message):
    _, folder, _ = saved
    with pytest.raises(HLError, match=message):
        load_model(tamper(folder, tmp_path, **change))


def test_wrong_backbone_is_refused(saved, tmp_path, t5_tokenizer_path):
    _, folder, _ = saved
    other = save_tiny_t5(tmp_path / "other-t5", t5_tokenizer_path, d_ff=96)
    with pytest.raises(HLError, match="backbone does not match.*d_ff: 64 != 96"):
        load_model(folder, backbone=other)


def test_not_a_checkpoint(tmp_path):
    with pytest.raises(HLError, match="not a checkpoint folder"):
        load_model(tmp_path)
