"""Exact parameter counts (the authors' released numbers) and generated shapes, on the meta device."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoTokenizer, T5Config, T5ForConditionalGeneration

from hlcli.methods import method_config
from hlcli.methods.base import TaskSpec
from hlcli.methods.hyperloader.model import WeightSourceT5Tagger

T5_CONFIGS = {
    "t5-small": dict(d_model=512, d_ff=2048, num_layers=6, num_heads=8, d_kv=64),
    "t5-base": dict(d_model=768, d_ff=3072, num_layers=12, num_heads=12, d_kv=64),
    "t5-large": dict(d_model=1024, d_ff=4096, num_layers=24, num_heads=16, d_kv=64),
}
SEVEN_TASKS = [TaskSpec(f"task{i}", ["X"]) for i in range(7)]


@pytest.fixture(scope="module")
def tokenizer(t5_tokenizer_path):
    return AutoTokenizer.from_pretrained(t5_tokenizer_path)


def meta_model(method: str, size: str, tokenizer, tasks=SEVEN_TASKS) -> WeightSourceT5Tagger:
    with torch.device("meta"):
        backbone = T5ForConditionalGeneration(T5Config(vocab_size=32128, **T5_CONFIGS[size]))
        return WeightSourceT5Tagger(method_config(method, {}), backbone, tokenizer, tasks)


def test_t5_base_backbone_size(tokenizer):
    with torch.device("meta"):
        backbone = T5ForConditionalGeneration(T5Config(vocab_size=32128, **T5_CONFIGS["t5-base"]))
    assert sum(p.numel() for p in backbone.parameters()) == 222_903_552


@pytest.mark.parametrize(
    "method, trainable, total",
    [("hyperloader", 6_784_368, 229_640_304), ("hyperformer", 5_210_992, 228_066_928)],
)
def test_exact_counts_t5_base_seven_tasks(tokenizer, method, trainable, total):
    assert meta_model(method, "t5-base", tokenizer).parameter_counts() == (total, trainable)


def test_trainable_set_is_source_and_t5_layer_norms(tokenizer):
    model = meta_model("hyperloader", "t5-base", tokenizer)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    backbone = {n for n in trainable if n.startswith("backbone.")}
    assert all(n.endswith("layer_norm.weight") for n in backbone)
    assert len(backbone) == 12 * 2 + 1 + 12 * 3 + 1
    assert sum(p.numel() for n, p in model.named_parameters() if n in backbone) == 47_616
    assert trainable - backbone == {n for n, _ in model.source.named_parameters(prefix="source")}
    assert not model.backbone.lm_head.weight.requires_grad and not model.backbone.shared.weight.requires_grad


@pytest.mark.parametrize("size", list(T5_CONFIGS))
def test_generated_shapes(tokenizer, size):
    cfg = T5_CONFIGS[size]
    d, L, inner, b = cfg["d_model"], cfg["num_layers"], cfg["num_heads"] * cfg["d_kv"], cfg["d_model"] // 32
    model = meta_model("hyperloader", size, tokenizer)
    weights = model.source(3)
    for stack, n_lora in (("encoder", 2), ("decoder", 4)):
        w = weights[stack]
        assert w.adapter_down.shape == (L, 2, b, d)
        assert w.adapter_down_bias.shape == (L, 2, b)
        assert w.adapter_up.shape == (L, 2, d, b)
        assert w.adapter_up_bias.shape == (L, 2, d)
        assert w.ln_weight.shape == w.ln_bias.shape == (L, 2, d)
        assert w.lora_A.shape == (L, n_lora, 8, d)
        assert w.lora_B.shape == (L, n_lora, inner, 8)
        assert model.source.hypernetworks[stack].position_embeddings.num_embeddings == 6


def test_hyperformer_has_no_lora_and_two_positions(tokenizer):
    model = meta_model("hyperformer", "t5-small", tokenizer)
    weights = model.source(0)
    for stack in ("encoder", "decoder"):
        assert weights[stack].lora_A is None and weights[stack].lora_B is None
        assert model.source.hypernetworks[stack].position_embeddings.num_embeddings == 2
    assert not any(type(m).__name__ == "GeneratedLoRALinear" for m in model.modules())
