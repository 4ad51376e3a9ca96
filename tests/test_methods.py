"""Every registered method on tiny backbones: training step, trainable set, predict, save → load."""

from __future__ import annotations

import importlib.util
import math
import re

import pytest
import torch
from transformers import AutoTokenizer, BertConfig, BertModel, T5Config, T5ForConditionalGeneration

from conftest import MINILM_MISSING, MINILM_MODULE, minilm_path
from hlcli.checkpoint import load_model, save_model
from hlcli.data.example import Example
from hlcli.errors import HLError, UsageError
from hlcli.methods import build_model, known_methods, method_config
from hlcli.methods.base import TaskSpec

METHODS = ["full-finetune", "hyperdecoder", "hyperformer", "hyperloader", "lora-only", "static", "unipelt"]
TASKS = [TaskSpec("atis", ["city", "date"]), TaskSpec("snips", ["artist"])]
EXAMPLES = [
    Example("atis", ("fly", "to", "boston", "tomorrow"), ("O", "O", "B-city", "B-date")),
    Example("atis", ("new", "york", "please"), ("B-city", "I-city", "O")),
]
SENTENCES = [["fly", "to", "denver"], ["hello"], ["from", "new", "york", "on", "monday", "morning"]]

# What each method trains, as name patterns over ``named_parameters`` (every trainable name must
# match one, and every pattern must match some trainable name).
T5_LN = r"backbone\.(encoder|decoder)\.(block\.\d+\.layer\.\d+\.layer_norm|final_layer_norm)\.weight"
BERT_LN = r"backbone\.(embeddings|encoder\.layer\.\d+\.(attention\.output|output))\.LayerNorm\.(weight|bias)"
HEADS = r"heads\.\d+\.(weight|bias)"
TRAINABLE = {
    ("hyperloader", "t5"): [r"source\.task_embeddings\.weight", r"source\.hypernetworks\.(encoder|decoder)\..+", T5_LN],
    ("hyperformer", "t5"): [r"source\.task_embeddings\.weight", r"source\.hypernetworks\.(encoder|decoder)\..+", T5_LN],
    ("lora-only", "t5"): [
        r"source\.task_embeddings\.weight",
        r"source\.hypernetworks\.(encoder|decoder)\.(layer_embeddings|position_embeddings|projector\.\d+|lora_A|lora_B)\.\w+",
        T5_LN,
    ],
    ("static", "t5"): [
        r"source\.stacks\.(encoder|decoder)\.(adapter_down|adapter_down_bias|adapter_up|adapter_up_bias|ln_weight|ln_bias|lora_A|lora_B)",
        T5_LN,
    ],
    ("unipelt", "t5"): [
        r"source\.stacks\.(encoder|decoder)\.(adapter_down|adapter_down_bias|adapter_up|adapter_up_bias|lora_A|lora_B)",
        T5_LN,
    ],
    ("hyperdecoder", "t5"): [
        r"encoder_adapters\.\d+\.(down|up)\.(weight|bias)",
        r"generator\.(mlp\.[02]|layer_embeddings|hidden\.0|down|down_bias|up|up_bias)\.\w+",
    ],
    ("full-finetune", "t5"): [r"backbone\..+"],
    ("hyperloader", "bert"): [r"task_embeddings", r"hypernetwork\..+", BERT_LN, HEADS],
    ("hyperformer", "bert"): [r"task_embeddings", r"hypernetwork\..+", BERT_LN, HEADS],
    ("lora-only", "bert"): [
        r"task_embeddings",
        r"hypernetwork\.(layer_embeddings|position_embeddings|projector\.\d+|lora_A|lora_B)\.\w+",
        BERT_LN,
        HEADS,
    ],
    ("static", "bert"): [r"hypernetwork\.source\.stacks\.encoder\.\w+", BERT_LN, HEADS],
    ("unipelt", "bert"): [
        r"backbone\.encoder\.layer\.\d+\.attention\.self\.(query|value)\.(lora_A|lora_B|gate\.weight|gate\.bias)",
        r"backbone\.encoder\.layer\.\d+\.attention\.self\.gate\.(weight|bias)",
        r"backbone\.encoder\.layer\.\d+\.output\.(adapter_down|adapter_up|gate)\.(weight|bias)",
        r"prefix_encoder\.(embedding|mlp\.[02])\.\w+",
        HEADS,
    ],
    ("full-finetune", "bert"): [r"backbone\..+", HEADS],
}
COMBOS = sorted(TRAINABLE)


class _Backbones(dict):
    """kind -> saved backbone folder; asking for a missing one (BERT without MiniLM) skips the test."""

    def __getitem__(self, kind: str) -> str:
        if super().__getitem__(kind) is None:
            pytest.skip(MINILM_MISSING)
        return super().__getitem__(kind)


@pytest.fixture(scope="module")
def backbones(tmp_path_factory, t5_tokenizer_path):
    root = tmp_path_factory.mktemp("backbones")
    torch.manual_seed(0)
    t5_tokenizer = AutoTokenizer.from_pretrained(t5_tokenizer_path)
    t5 = T5ForConditionalGeneration(
        T5Config(vocab_size=len(t5_tokenizer), d_model=32, d_ff=64, num_layers=2, num_heads=2, d_kv=16,
                 decoder_start_token_id=0, pad_token_id=0, eos_token_id=1)
    )
    t5.save_pretrained(root / "t5")
    t5_tokenizer.save_pretrained(root / "t5")
    if importlib.util.find_spec(MINILM_MODULE) is None:  # the T5 cases still run; the BERT ones skip
        return _Backbones(t5=str(root / "t5"), bert=None)
    minilm = AutoTokenizer.from_pretrained(minilm_path())
    bert = BertModel(BertConfig(vocab_size=minilm.vocab_size, hidden_size=32, num_hidden_layers=2,
                                num_attention_heads=2, intermediate_size=64))
    bert.save_pretrained(root / "bert")
    minilm.save_pretrained(root / "bert")
    return _Backbones(t5=str(root / "t5"), bert=str(root / "bert"))


def _tasks(method: str) -> list[TaskSpec]:
    return TASKS[:1] if method == "unipelt" else TASKS


def _scores(model, batch) -> torch.Tensor:
    """Deterministic outputs of a batch (eval mode, no autograd)."""
    model.eval()
    with torch.no_grad():
        return model.loss("atis", batch)


@pytest.mark.parametrize("method, kind", COMBOS)
def test_method_trains_predicts_and_round_trips(backbones, tmp_path, method, kind):
    torch.manual_seed(1)
    model = build_model(method, backbone=backbones[kind], tasks=_tasks(method))
    assert model.method == method

    # The trainable set is exactly what the method says.
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    patterns = [re.compile(p) for p in TRAINABLE[method, kind]]
    assert all(any(p.fullmatch(n) for p in patterns) for n in trainable), [
        n for n in trainable if not any(p.fullmatch(n) for p in patterns)
    ]
    assert all(any(p.fullmatch(n) for n in trainable) for p in patterns)
    total, n_trainable = model.parameter_counts()
    assert 0 < n_trainable <= total

    # One training step: finite loss, a gradient for every trainable tensor this task uses.
    model.train()
    batch = model.collate("atis", EXAMPLES)
    loss = model.loss("atis", batch)
    assert math.isfinite(loss.item())
    loss.backward()
    other_heads = re.compile(r"heads\.[1-9]\d*\..+")
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None and not other_heads.fullmatch(n)]
    assert not missing
    with torch.no_grad():
        for p in model.parameters():
            if p.grad is not None:
                p.add_(torch.randn_like(p) * 0.05)  # move off the identity initialisation
    model.invalidate_cache()

    # predict: one BIO tag of the task per word.
    tags = model.predict("atis", SENTENCES, batch_size=2)
    allowed = {"O", "B-city", "I-city", "B-date", "I-date"}
    assert [len(t) for t in tags] == [len(s) for s in SENTENCES]
    assert all(tag in allowed for sentence in tags for tag in sentence)

    # save → load gives identical outputs.
    before = _scores(model, batch)
    save_model(model, tmp_path / "ckpt")
    loaded = load_model(tmp_path / "ckpt")
    assert loaded.method == method
    assert torch.equal(_scores(loaded, batch), before)
    assert loaded.predict("atis", SENTENCES, batch_size=2) == tags


def test_registry_lists_all_methods_and_rejects_unknown():
    assert known_methods() == METHODS
    with pytest.raises(HLError) as error:
        method_config("hyperdecodr")
    for name in METHODS:
        assert name in str(error.value)


def test_hyperdecoder_needs_t5(backbones):
    with pytest.raises(UsageError, match="hyperdecoder needs an encoder-decoder \\(T5\\) backbone"):
        build_model("hyperdecoder", backbone=backbones["bert"], tasks=TASKS)


@pytest.mark.parametrize("kind", ["t5", "bert"])
def test_unipelt_is_single_task(backbones, kind):
    with pytest.raises(UsageError, match="single-task"):
        build_model("unipelt", backbone=backbones[kind], tasks=TASKS)


def test_hyperdecoder_prefixes_task_and_generates_per_example(backbones):
    model = build_model("hyperdecoder", backbone=backbones["t5"], tasks=TASKS)
    batch = model.collate("atis", EXAMPLES)
    texts = model.tokenizer.batch_decode(batch["input_ids"], skip_special_tokens=False)
    assert all(re.match(r"atis: ?<extra_id_0>", t) for t in texts)
    encoded = model.backbone.encoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
    adapters = model.generator(encoded, batch["attention_mask"])
    n_layers, d = len(model.backbone.decoder.block), model.backbone.config.d_model
    assert adapters.down.shape == (n_layers, 2, 64, d) and adapters.up.shape == (n_layers, 2, d, 64)
    assert not torch.equal(adapters.down[:, 0], adapters.down[:, 1])  # one adapter per example


def test_unipelt_encoder_output_ignores_batch_padding(backbones):
    # Gates average over real tokens and the prefix is visible to every real token: a sentence's
    # logits must not depend on the longer sentence it is batched with.
    model = build_model("unipelt", backbone=backbones["bert"], tasks=TASKS[:1]).eval()
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p) * 0.1)
        alone = model.collate("atis", EXAMPLES[1:])
        both = model.collate("atis", [EXAMPLES[1], EXAMPLES[0]])
        n = alone["input_ids"].shape[1]
        logits_alone = model("atis", alone["input_ids"], alone["attention_mask"])[0]
        logits_both = model("atis", both["input_ids"], both["attention_mask"])[0, :n]
    assert torch.allclose(logits_alone, logits_both, atol=1e-5)


@pytest.mark.parametrize(
    "method, overrides",
    [
        ("lora-only", {"use_adapters": True}),
        ("unipelt", {"use_lora": False}),
        ("hyperdecoder", {"encoder_adapter_dim": 0}),
        ("hyperdecoder", {"adapter_norm_input": "yes"}),
        ("full-finetune", {"max_words": 0}),
        ("unipelt", {"prefix_length": -1}),
    ],
)
def test_config_validation(method, overrides):
    with pytest.raises(UsageError):
        method_config(method, overrides)


@pytest.mark.parametrize("method", ["hyperloader", "hyperformer", "lora-only", "static", "full-finetune", "unipelt"])
def test_an_unsupported_backbone_family_is_refused_with_the_known_ones(method):
    from types import SimpleNamespace

    from hlcli.methods import method_config, method_entry

    backbone = SimpleNamespace(name="gpt", config=SimpleNamespace(model_type="gpt2"), model=None, tokenizer=None)
    with pytest.raises(UsageError, match=r"model_type 'gpt2', which .* does not support \(expected one of t5, mt5, bert"):
        method_entry(method).build(method_config(method), backbone, [TaskSpec("atis", ["x"])])
