"""Constrained SentT' decoding: always exactly one valid label per word, consistent with the model."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor
from transformers import T5Config, T5ForConditionalGeneration

from conftest import save_tiny_t5
from hlcli import sentt
from hlcli.decoding import LabelTrie, constrained_decode, greedy_generate, sentinel_ids
from hlcli.methods import build_model
from hlcli.methods.base import TaskSpec

TASKS = [TaskSpec("ner", ["LOC", "PER"]), TaskSpec("slots", ["I_X", "MUSIC_ITEM", "TRACK"])]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def model(tmp_path_factory, t5_tokenizer_path):
    folder = save_tiny_t5(tmp_path_factory.mktemp("tiny-t5"), t5_tokenizer_path)
    model = build_model("hyperloader", backbone=folder, tasks=TASKS)
    with torch.no_grad():  # make the random model's choices vary between labels
        for name, p in model.source.named_parameters():
            if "lora_B" in name or "ln_" in name or "adapter_up" in name:
                p.normal_(0, 0.5)
        # ... and depend strongly on token distances (so a wrong position bias changes predictions)
        model.backbone.decoder.block[0].layer[0].SelfAttention.relative_attention_bias.weight.normal_(0, 3)
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


def test_batching_and_order_do_not_change_predictions(model, monkeypatch):
    """Rows of a batch are fed different numbers of forced tokens per call (right-padded, with
    per-row position bias); each must decode exactly as it does alone."""
    import hlcli.decoding

    widths: list[list[int]] = []
    real_call = hlcli.decoding._RowSlots.call

    def recording_call(self, lengths):
        widths.append(list(lengths))
        return real_call(self, lengths)

    monkeypatch.setattr(hlcli.decoding._RowSlots, "call", recording_call)
    sentences = [["a", "b"], [f"w{i}" for i in range(12)], ["c"] * 5, ["Play", "Little", "Robin", "now"], [f"v{i}" for i in range(7)]]
    together = model.predict("slots", sentences, batch_size=8)
    assert any(len(set(call)) > 1 for call in widths)  # the rows really were out of step
    alone = [model.predict("slots", [s], batch_size=1)[0] for s in sentences]
    assert together == alone


def test_right_padded_rows_get_the_hidden_states_of_rows_fed_alone(t5_tokenizer_path):
    """What per-row feeding rests on: with ``_RowSlots`` (mask + per-row relative positions), the
    decoder's state at every real token is the one a single unpadded pass over that row gives."""
    from transformers.cache_utils import DynamicCache, EncoderDecoderCache

    from hlcli.compat import cache_keyword as _cache_keyword
    from hlcli.decoding import _RowSlots

    torch.manual_seed(1)
    config = T5Config(d_model=32, d_ff=64, num_layers=2, num_heads=2, d_kv=16, vocab_size=64, decoder_start_token_id=0,
                      relative_attention_num_buckets=32, relative_attention_max_distance=128)  # fmt: skip
    backbone = T5ForConditionalGeneration(config).eval()
    with torch.no_grad():  # distances must matter a lot, or a wrong bias would go unnoticed
        backbone.decoder.block[0].layer[0].SelfAttention.relative_attention_bias.weight.normal_(0, 3)
    encoded = backbone.encoder(input_ids=torch.randint(2, 64, (2, 5))).last_hidden_state
    rows = [[0, 7, 8, 9, 10, 11, 12], [0, 20, 21, 22, 23, 24, 25]]
    calls = [[3, 1], [1, 4], [3, 2]]  # tokens fed per row in each call
    slots = _RowSlots(backbone.decoder, 2, encoded.device)
    cache = EncoderDecoderCache(DynamicCache(config=config), DynamicCache(config=config))
    got: list[list[Tensor]] = [[], []]
    fed = [0, 0]
    with torch.no_grad():
        for lengths in calls:
            width = max(lengths)
            ids = [rows[r][fed[r] : fed[r] + n] + [0] * (width - n) for r, n in enumerate(lengths)]
            with slots.call(lengths) as mask:
                hidden = backbone.decoder(input_ids=torch.tensor(ids), attention_mask=mask, encoder_hidden_states=encoded,
                                          use_cache=True, **{_cache_keyword(type(backbone.decoder)): cache}).last_hidden_state  # fmt: skip
            for r, n in enumerate(lengths):
                got[r] += list(hidden[r, :n])
                fed[r] += n
        for r in range(2):
            alone = backbone.decoder(input_ids=torch.tensor([rows[r]]), encoder_hidden_states=encoded[r : r + 1]).last_hidden_state[0]
            assert torch.allclose(torch.stack(got[r]), alone, atol=1e-5), r
    assert "compute_bias" not in vars(backbone.decoder.block[0].layer[0].SelfAttention)  # the class's own is back


def test_per_row_feeding_takes_fewer_calls_and_decodes_the_same(model, monkeypatch):
    import hlcli.decoding

    def decode(per_row: bool) -> tuple[list[list[str]], int]:
        calls = [0]
        real_init, real_call = hlcli.decoding._RowSlots.__init__, hlcli.decoding._RowSlots.call

        def init(self, *args):
            real_init(self, *args)
            self.per_row = self.per_row and per_row

        def call(self, lengths):
            calls[0] += 1
            return real_call(self, lengths)

        with monkeypatch.context() as patch:
            patch.setattr(hlcli.decoding._RowSlots, "__init__", init)
            patch.setattr(hlcli.decoding._RowSlots, "call", call)
            tags = model.predict("slots", sentences, batch_size=16)
        return tags, calls[0]

    sentences = [[f"w{i}" for i in range(n)] for n in (3, 9, 4, 12, 6, 6, 1, 10)]
    (per_row, per_row_calls), (lockstep, lockstep_calls) = decode(True), decode(False)
    assert per_row == lockstep
    assert per_row_calls < lockstep_calls


def test_choices_are_the_argmax_of_the_teacher_forced_model(model):
    """Incremental, chunked decoding picks what a full forward over the result would pick."""
    words = [f"w{i}" for i in range(9)]
    # The decoder's own sBIO labels, not predict()'s BIO round-tripped back: a stray "I" (after "O")
    # is a valid choice of the decoder that sbio_to_bio turns into "O", so a round trip would
    # teacher-force another target than the one decoded and compare logits of another context.
    with torch.no_grad(), model.evaluating():
        labels = constrained_decode(
            model.backbone, model.tokenizer, [words], model._labels["slots"], batch_size=1,
            max_words=model.method_config.max_words, scope=lambda: model.using_task("slots", use_cache=True),
            prefix=model.input_prefix("slots"),
        )[0]  # fmt: skip
    assert sentt.sbio_to_bio(labels) == model.predict("slots", [words], batch_size=1)[0]
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


def reference_tags(model, task: str, sentences: list[list[str]]) -> list[list[str]]:
    """The unconstrained reference decoding as benchmarks/bench_tag.py runs it: ``greedy_generate``
    (full vocabulary, weights regenerated at every step), its text parsed by ``sentt.decode``."""
    types = model._labels[task][:-2]
    longest_label = max(len(ids) for ids in model.tokenizer(model._labels[task], add_special_tokens=False).input_ids)
    texts = [model.input_prefix(task) + sentt.encode_input(words) for words in sentences]
    enc = model.tokenizer(texts, padding=True, return_tensors="pt")
    with model.evaluating():
        generated = greedy_generate(model.backbone, enc.input_ids, enc.attention_mask,
                                    scope=lambda: model.using_task(task, use_cache=False),
                                    max_new_tokens=(longest_label + 1) * (max(map(len, sentences)) + 1) + 2)  # fmt: skip
    return [sentt.sbio_to_bio(sentt.decode(model.tokenizer.decode(ids, skip_special_tokens=False), len(words), types=types))
            for words, ids in zip(sentences, generated)]  # fmt: skip


def test_unconstrained_reference_decoder_returns_one_tag_per_word(model):
    sentences = [["a", "b", "c"], []]
    tags = reference_tags(model, "ner", sentences)
    assert [len(t) for t in tags] == [3, 0]
    assert all(tag in valid_bio(TASKS[0].types) for tag in tags[0])


def test_decoding_emits_no_future_warning(model):
    """``hl evaluate`` and ``hl tag`` decode through ``predict``; transformers' deprecation of
    ``past_key_values`` (removed in 5.40) must not reach the user (issue 11)."""
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.predict("ner", [["a", "b", "c"], ["d"]], batch_size=2)
        reference_tags(model, "ner", [["a", "b"]])
    assert [str(w.message) for w in caught if issubclass(w.category, FutureWarning)] == []
