"""Constrained SentT' decoding: always exactly one valid label per word, consistent with the model."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoTokenizer, T5Config, T5ForConditionalGeneration

from hlcli import sentt
from hlcli.decoding import LabelTrie, sentinel_ids
from hlcli.methods import build_model
from hlcli.methods.base import TaskSpec

TASKS = [TaskSpec("ner", ["LOC", "PER"]), TaskSpec("slots", ["I_X", "MUSIC_ITEM", "TRACK"])]


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def model(tmp_path_factory, t5_tokenizer_path):
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny-t5")
    config = T5Config(d_model=32, d_ff=64, num_layers=2, num_heads=2, d_kv=16, vocab_size=32128, decoder_start_token_id=0)
    T5ForConditionalGeneration(config).save_pretrained(folder)
    AutoTokenizer.from_pretrained(t5_tokenizer_path).save_pretrained(folder)
    model = build_model("hyperloader", backbone=str(folder), tasks=TASKS)
    with torch.no_grad():  # make the random model's choices vary between labels
        for name, p in model.source.named_parameters():
            if "lora_B" in name or "ln_" in name or "adapter_up" in name:
                p.normal_(0, 0.5)
    return model


def valid_bio(types: list[str]) -> set[str]:
    return {"O"} | {f"{p}-{t}" for t in types for p in "BI"}


def test_label_tokens_match_target_tokenization(model):
    tokenizer = model.tokenizer
    labels = sentt.label_vocabulary(TASKS[1].types)
    trie = LabelTrie(tokenizer, labels)
    ids = tokenizer(labels, add_special_tokens=False).input_ids
    sentinels = sentinel_ids(tokenizer)
    sequence = ["MUSIC_ITEM", "I", "O", "I_X", "TRACK", "I"]
    expected = [tok for i, label in enumerate(sequence) for tok in [sentinels[i], *ids[labels.index(label)]]]
    full = tokenizer(sentt.interleave(sequence)).input_ids
    assert full == expected + [sentinels[len(sequence)], tokenizer.eos_token_id]
    assert trie.label[0] is None and len(trie.children[0]) >= 2


@pytest.mark.parametrize("task", ["ner", "slots"])
def test_every_word_gets_one_valid_label(model, task):
    sentences = [[], ["a"], ["Play", "the", "song", "Little", "Robin"], ["x"] * 37, [f"w{i}" for i in range(250)], ["ü", "<extra_id_3>", "", "  "]]
    tags = model.predict(task, sentences, batch_size=3)
    allowed = valid_bio(model.tasks[model.task_index[task]].types)
    assert [len(t) for t in tags] == [len(s) for s in sentences]
    assert all(tag in allowed for sentence in tags for tag in sentence)
    assert all(not tag.startswith("I-") or prev[2:] == tag[2:] for s in tags for prev, tag in zip(["O", *s], s))
    assert len({tag for s in tags for tag in s}) > 1  # the model really chooses


def test_batching_and_order_do_not_change_predictions(model):
    sentences = [["a", "b"], [f"w{i}" for i in range(12)], ["c"] * 5]
    together = model.predict("slots", sentences, batch_size=8)
    alone = [model.predict("slots", [s], batch_size=1)[0] for s in sentences]
    assert together == alone


def test_choices_are_the_argmax_of_the_teacher_forced_model(model):
    """Incremental, chunked decoding picks what a full forward over the result would pick."""
    words = [f"w{i}" for i in range(9)]
    labels = sentt.bio_to_sbio(model.predict("slots", [words], batch_size=1)[0])
    # sbio_to_bio drops nothing for a well-formed output, so this is the decoded sBIO
    tokenizer = model.tokenizer
    target = tokenizer(sentt.interleave(labels)).input_ids[:-2]  # without the closing sentinel and </s>
    source = tokenizer([sentt.encode_input(words)], return_tensors="pt")
    batch = {**source, "labels": torch.tensor([target])}
    model.eval()
    with torch.no_grad():
        logits = model("slots", batch, use_cache=False)[0]
    trie = LabelTrie(tokenizer, sentt.label_vocabulary(TASKS[1].types))
    sentinels = sentinel_ids(tokenizer)
    node, word, decisions = 0, 0, 0
    for step, token in enumerate(target):
        if step == 0:
            continue  # the first sentinel is forced
        options = list(trie.children[node]) + ([sentinels[word + 1]] if trie.label[node] is not None else [])
        assert token in options
        if len(options) > 1:
            decisions += 1
            assert options[int(logits[step, options].argmax())] == token
        if trie.label[node] is not None and token == sentinels[word + 1]:
            node, word = 0, word + 1
        else:
            node = trie.children[node][token]
    assert decisions >= len(words) - 1


def test_unconstrained_reference_decoder_returns_one_tag_per_word(model):
    sentences = [["a", "b", "c"], []]
    tags = model.generate_unconstrained("ner", sentences, batch_size=2)
    assert [len(t) for t in tags] == [3, 0]
    assert all(tag in valid_bio(TASKS[0].types) for tag in tags[0])
