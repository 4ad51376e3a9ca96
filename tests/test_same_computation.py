"""The speed work of issue 10 must not change what a HyperLoader model computes.

``fixtures/hyperloader_reference.json`` holds a tiny model's loss, per-parameter gradient
summaries and predictions, written by the code *before* that change (``python
tests/test_same_computation.py`` on commit d46f0cd). The tests rebuild the
same model from the same seeds and compare: predictions exactly, loss and gradients to 1e-6
relative (the per-layer gradients of the generated weights are now summed by one ``stack``
instead of layer by layer into zero tensors: same numbers, possibly another summation order).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))

FIXTURE = Path(__file__).parent / "fixtures" / "hyperloader_reference.json"
TASKS = [("ner", ["LOC", "PER"]), ("slots", ["MUSIC_ITEM", "TRACK"])]
SENTENCES = [
    (("John", "lives", "in", "Paris"), ("B-PER", "O", "O", "B-LOC")),
    (("New", "York", "is", "big", "."), ("B-LOC", "I-LOC", "O", "O", "O")),
    (("Mary", "met", "Ann", "in", "Rome", "and", "Oslo"), ("B-PER", "O", "B-PER", "O", "B-LOC", "O", "B-LOC")),
]


def compute(backbone: str, *, static: bool) -> dict:
    """Loss, gradient summaries and predictions of a seeded tiny model (eval mode: no dropout)."""
    from hlcli.data.example import Example
    from hlcli.methods import build_model
    from hlcli.methods.base import TaskSpec
    from hlcli.methods.hyperloader.config import HyperLoaderConfig
    from hlcli.methods.hyperloader.t5 import t5_stack_specs
    from hlcli.methods.hyperloader.weight_source import StaticWeightSource

    torch.manual_seed(0)
    model = build_model("hyperloader", backbone=backbone, tasks=[TaskSpec(n, t) for n, t in TASKS])
    if static:
        config = HyperLoaderConfig()
        model.source = StaticWeightSource(config, n_tasks=2, stacks=t5_stack_specs(model.backbone.config, config))
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():  # every generated weight away from its near-zero start
        for name, p in sorted(model.named_parameters()):
            if p.requires_grad:
                p.add_(torch.randn(p.shape, generator=generator) * 0.05)
    examples = [Example("ner", words, tags) for words, tags in SENTENCES]
    model.eval()
    loss = model.loss("ner", model.collate("ner", examples), label_smoothing=0.1)
    loss.backward()
    grads = {
        name: [float(p.grad.sum()), float(p.grad.abs().sum()), float(p.grad.flatten()[:: max(1, p.numel() // 7)].sum())]
        for name, p in sorted(model.named_parameters())
        if p.grad is not None
    }
    with torch.no_grad():
        logits = model("ner", model.collate("ner", examples), use_cache=False)
    return {
        "loss": float(loss),
        "grads": grads,
        "logits_sum": float(logits.double().sum()),
        "predictions": model.predict("ner", [words for words, _ in SENTENCES], batch_size=2),
        "predictions_slots": model.predict("slots", [words for words, _ in SENTENCES], batch_size=3),
    }


def _tiny(folder: Path, tokenizer: Path) -> str:
    from conftest import save_tiny_t5

    return save_tiny_t5(folder, tokenizer, d_model=64, d_ff=128, num_heads=4, d_kv=32)


@pytest.fixture(scope="module")
def tiny_backbone(tmp_path_factory, t5_tokenizer_path) -> str:
    return _tiny(tmp_path_factory.mktemp("tiny-t5"), t5_tokenizer_path)


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: tiny models, one torch thread


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-6 * max(1.0, abs(b))


@pytest.mark.parametrize("kind", ["hyperloader", "static"])
def test_loss_gradients_and_predictions_unchanged(tiny_backbone, kind):
    reference = json.loads(FIXTURE.read_text())[kind]
    now = compute(tiny_backbone, static=kind == "static")
    assert now["predictions"] == reference["predictions"]
    assert now["predictions_slots"] == reference["predictions_slots"]
    assert _close(now["loss"], reference["loss"]), (now["loss"], reference["loss"])
    assert _close(now["logits_sum"], reference["logits_sum"])
    assert sorted(now["grads"]) == sorted(reference["grads"])  # same trainable set, same names
    wrong = {
        name: (values, reference["grads"][name])
        for name, values in now["grads"].items()
        if not all(_close(a, b) for a, b in zip(values, reference["grads"][name]))
    }
    assert wrong == {}


if __name__ == "__main__":  # regenerate the fixture (only ever from the code before a speed change)
    import tempfile

    torch.set_num_threads(1)
    from conftest import T5_TOKENIZER as tokenizer

    with tempfile.TemporaryDirectory() as tmp:
        backbone = _tiny(Path(tmp), tokenizer)
        data = {kind: compute(backbone, static=kind == "static") for kind in ("hyperloader", "static")}
    FIXTURE.write_text(json.dumps(data, indent=1) + "\n")
    print(f"wrote {FIXTURE}")


def _graph_nodes(root) -> list[str]:
    seen, stack, names = set(), [root], []
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        names.append(type(node).__name__)
        stack.extend(next_node for next_node, _ in node.next_functions)
    return names


def test_generated_weights_reach_the_layers_through_one_unbind_per_tensor(tiny_backbone):
    """Per-layer indexing of the stacked weights put one SelectBackward per use into the graph,
    each building a zero tensor of the whole stack in the backward (issue 10)."""
    from hlcli.data.example import Example
    from hlcli.methods import build_model
    from hlcli.methods.base import TaskSpec

    model = build_model("hyperloader", backbone=tiny_backbone, tasks=[TaskSpec(n, t) for n, t in TASKS]).train()
    batch = model.collate("ner", [Example("ner", words, tags) for words, tags in SENTENCES])
    nodes = _graph_nodes(model.loss("ner", batch).grad_fn)
    assert nodes.count("SelectBackward0") == 1  # the task's row of the task-embedding table
    # 2 stacks x (4 adapter tensors + 2 layer-norm tensors + LoRA A and B)
    assert nodes.count("UnbindBackward0") == 16
