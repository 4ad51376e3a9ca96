"""Every assumption hlcli/compat.py makes about transformers' and torch's internals, checked directly
against the installed libraries. A failure names the release and the compat.py entry to update
(pyproject.toml pins the versions these checks passed on)."""

from __future__ import annotations

import contextlib
import inspect
import warnings

import pytest
import torch
import transformers
from transformers import BertConfig, BertModel, T5Config, T5ForConditionalGeneration
from transformers.cache_utils import DynamicCache, EncoderDecoderCache

from hlcli import compat

pytestmark = pytest.mark.usefixtures("one_thread")


def changed(what: str, entry: str) -> str:
    return f"transformers {transformers.__version__} (torch {torch.__version__}) changed {what}: hlcli/compat.py {entry} needs updating"


@pytest.fixture(scope="module")
def t5():
    torch.manual_seed(0)
    model = T5ForConditionalGeneration(T5Config(d_model=32, d_ff=64, num_layers=2, num_heads=2, d_kv=16, vocab_size=64,
                                                decoder_start_token_id=0)).eval()  # fmt: skip
    with torch.no_grad():  # distances must matter, or a wrong position bias would go unnoticed
        for stack in (model.encoder, model.decoder):
            stack.block[0].layer[0].SelfAttention.relative_attention_bias.weight.normal_(0, 3)
    return model


def _inputs(batch: int = 2, tokens: int = 5) -> torch.Tensor:
    return torch.randint(2, 64, (batch, tokens), generator=torch.Generator().manual_seed(1))


def test_cache_keyword_is_the_one_forward_takes(t5):
    for module_type in (type(t5), type(t5.decoder)):
        keyword = compat.cache_keyword(module_type)
        assert keyword in inspect.signature(module_type.forward).parameters, changed(f"{module_type.__name__}.forward's KV-cache keyword", "cache_keyword")
    encoded = t5.encoder(input_ids=_inputs()).last_hidden_state
    cache = EncoderDecoderCache(DynamicCache(config=t5.config), DynamicCache(config=t5.config))
    with warnings.catch_warnings(record=True) as caught, torch.no_grad():
        warnings.simplefilter("always")
        t5.decoder(input_ids=torch.zeros(2, 1, dtype=torch.long), encoder_hidden_states=encoded, use_cache=True,
                   **{compat.cache_keyword(type(t5.decoder)): cache})  # fmt: skip
    assert cache.get_seq_length() == 1, changed("how the decoder fills a cache passed by keyword", "cache_keyword")
    assert not [w for w in caught if issubclass(w.category, FutureWarning)], changed("the KV-cache keyword (deprecated)", "cache_keyword")


def test_t5_sublayer_kinds_and_the_modules_they_hold(t5):
    for stack, kinds in ((t5.encoder, ["self_attention", "feed_forward"]),
                         (t5.decoder, ["self_attention", "cross_attention", "feed_forward"])):  # fmt: skip
        for block in stack.block:
            assert [compat.t5_sublayer_kind(sub) for sub in block.layer] == kinds, changed("T5Block's sub-layer classes", "t5_sublayer_kind")
            for sub in block.layer:
                kind = compat.t5_sublayer_kind(sub)
                attention = {"self_attention": "SelfAttention", "cross_attention": "EncDecAttention"}.get(kind)
                if attention is None:
                    assert isinstance(sub.DenseReluDense, torch.nn.Module) and hasattr(sub, "layer_norm"), changed("T5LayerFF", "t5_sublayer_kind")
                else:
                    for name in ("q", "v"):
                        assert isinstance(getattr(getattr(sub, attention), name), torch.nn.Linear), changed(f"T5 {attention}.{name}", "t5_sublayer_kind")
    assert compat.t5_sublayer_kind(torch.nn.Linear(2, 2)) is None


def test_t5_relative_bias_is_what_compute_bias_computes(t5):
    assert compat.t5_relative_attention(t5.decoder) is t5.decoder.block[0].layer[0].SelfAttention
    assert compat.t5_relative_attention(t5.decoder.block[1:]) is None  # no relative bias there: not the layout
    parameters = list(inspect.signature(type(t5.decoder.block[0].layer[0].SelfAttention).compute_bias).parameters)
    assert parameters == ["self", "query_length", "key_length", "device", "past_seen_tokens"], changed("T5Attention.compute_bias's signature", "t5_position_bias_override")
    for stack in (t5.encoder, t5.decoder):
        attention = compat.t5_relative_attention(stack)
        for query_length, key_length, past in ((4, 4, 0), (1, 7, 6), (3, 9, 6)):
            context = torch.arange(query_length)[:, None] + past
            relative = (torch.arange(key_length)[None, :] - context)[None]
            with torch.no_grad():
                ours = compat.t5_relative_bias(attention, relative, bidirectional=not attention.is_decoder)
                theirs = attention.compute_bias(query_length, key_length, past_seen_tokens=past)
            assert torch.equal(ours, theirs), changed("T5Attention._relative_position_bucket or relative_attention_bias", "t5_relative_bias")


def test_t5_position_bias_override_is_used_and_removed(t5):
    attention = compat.t5_relative_attention(t5.decoder)
    encoded = t5.encoder(input_ids=_inputs()).last_hidden_state
    ids = _inputs(2, 4)
    calls = []

    def decode(bias=None):
        with torch.no_grad(), (compat.t5_position_bias_override(attention, bias) if bias else contextlib.nullcontext()):
            return t5.decoder(input_ids=ids, encoder_hidden_states=encoded).last_hidden_state

    plain = decode()
    same = decode(lambda q, k: (calls.append((q, k)), type(attention).compute_bias(attention, q, k))[1])
    assert calls == [(4, 4)], changed("when T5Attention.forward calls compute_bias", "t5_position_bias_override")
    assert torch.equal(same, plain), changed("how T5Attention uses compute_bias's result", "t5_position_bias_override")
    zero = decode(lambda q, k: torch.zeros(1, t5.config.num_heads, q, k))
    assert not torch.allclose(zero, plain), changed("T5Attention.forward (an instance's compute_bias is ignored)", "t5_position_bias_override")
    assert "compute_bias" not in vars(attention)


def test_t5_decoder_output_scale_is_what_the_lm_head_sees(t5):
    ids, labels = _inputs(), _inputs(2, 3)
    for config in (t5.config, T5Config(**{**t5.config.to_dict(), "tie_word_embeddings": False, "scale_decoder_outputs": False})):
        torch.manual_seed(0)
        model = T5ForConditionalGeneration(config).eval() if config is not t5.config else t5
        with torch.no_grad():
            out = model(input_ids=ids, labels=labels, output_hidden_states=True)
            expected = model.lm_head(out.decoder_hidden_states[-1] * compat.t5_decoder_output_scale(config))
        assert torch.equal(out.logits, expected), changed("how T5ForConditionalGeneration scales decoder outputs", "t5_decoder_output_scale")
    assert compat.t5_decoder_output_scale(t5.config) == 32**-0.5


def test_a_registered_attention_replaces_sdpa_with_its_masks(t5):
    assert compat.attention_implementation(t5.config) == "sdpa", changed("the default attention implementation / config._attn_implementation", "attention_implementation")
    sdpa = compat.attention_function("sdpa")
    calls = []

    def counting(module, query, key, value, mask, **kwargs):
        calls.append(kwargs.keys())
        return sdpa(module, query, key, value, mask, **kwargs)

    compat.register_attention("hlcli_test_counting", counting, masks_as="sdpa")
    ids = _inputs(2, 6)
    mask = torch.ones_like(ids)
    mask[1, 4:] = 0  # padding: the mask function registered with the name must hide it
    labels = _inputs(2, 3)
    with torch.no_grad():
        before = t5(input_ids=ids, attention_mask=mask, labels=labels).logits
        t5.set_attn_implementation("hlcli_test_counting")
        try:
            assert compat.attention_implementation(t5.config) == "hlcli_test_counting", changed("config._attn_implementation", "attention_implementation")
            after = t5(input_ids=ids, attention_mask=mask, labels=labels).logits
        finally:
            t5.set_attn_implementation("sdpa")
        alone = t5(input_ids=ids[1:, :4], labels=labels[1:]).logits
    assert len(calls) == 6 and all({"scaling", "position_bias"} <= set(k) for k in calls), changed("how T5Attention calls an attention function", "register_attention")
    assert torch.equal(after, before), changed("the 'sdpa' attention function", "attention_function")
    # The padded row against the row alone: identical here (measured 0.0 with AVX-512 kernels; 1e-5 leaves
    # room for kernels that group float32 sums by length); pad tokens left unmasked move them by 1.1.
    torch.testing.assert_close(after[1:], alone, rtol=0, atol=1e-5, msg=changed("the attention mask interface", "register_attention"))


def test_bert_layers_call_their_attention_and_outputs_as_assumed():
    torch.manual_seed(0)
    bert = BertModel(BertConfig(vocab_size=64, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                intermediate_size=64), add_pooling_layer=False).eval()  # fmt: skip
    layer = bert.encoder.layer[0]
    original, seen = layer.attention.self, []

    class StandIn(torch.nn.Module):
        def forward(self, hidden_states, attention_mask=None, **kwargs):
            seen.append(attention_mask)
            return compat.bert_attention_result(original(hidden_states, attention_mask=attention_mask, **kwargs)[0])

    ids, mask = _inputs(2, 6), torch.ones(2, 6, dtype=torch.long)
    mask[1, 4:] = 0
    with torch.no_grad():
        before = bert(input_ids=ids, attention_mask=mask).last_hidden_state
        layer.attention.self = StandIn()
        hooked = []
        for sub in (layer.attention.output, layer.output):  # where the adapters go: between dropout and the residual
            hooked.append(sub.dropout.register_forward_hook(lambda module, args, out: out * 2))
        try:
            doubled = bert(input_ids=ids, attention_mask=mask).last_hidden_state
            for handle in hooked:
                handle.remove()
            after = bert(input_ids=ids, attention_mask=mask).last_hidden_state
        finally:
            layer.attention.self = original
        h = bert.embeddings(input_ids=ids)
        attention = layer.attention.output
        a = attention.LayerNorm(2 * attention.dense(original(h, attention_mask=seen[0])[0]) + h)
        expected = layer.output.LayerNorm(2 * layer.output.dense(layer.intermediate(a)) + a)
    assert torch.equal(after, before), changed("how BertAttention calls and unpacks its self-attention", "bert_attention_result")
    m = seen[0]
    assert m is not None and m.dim() == 4 and m.shape[-1] == 6 and m.dtype in (torch.bool, torch.float32), changed("the attention mask BertSelfAttention receives", "bert_attention_result")
    assert torch.equal(doubled, expected), changed("BertSelfOutput / BertOutput (dense → dropout → LayerNorm(h + input))", "bert_attention_result")


def test_tensor_version_counts_in_place_changes():
    parameter = torch.nn.Parameter(torch.zeros(3))
    start = compat.parameter_versions([parameter])
    _ = parameter * 2
    assert compat.parameter_versions([parameter]) == start, changed("Tensor._version (bumped out of place)", "parameter_versions")
    with torch.no_grad():
        parameter.add_(1)
    after_add = compat.parameter_versions([parameter])
    assert after_add != start, changed("Tensor._version (not bumped in place)", "parameter_versions")
    parameter.grad = torch.ones(3)
    torch.optim.AdamW([parameter], lr=0.1).step()
    assert compat.parameter_versions([parameter]) != after_add, changed("Tensor._version (not bumped by an optimizer step)", "parameter_versions")


def test_dataset_fingerprint_is_a_content_hash(tmp_path):
    datasets = pytest.importorskip("datasets")

    def changed_datasets(what: str) -> str:
        return f"datasets {datasets.__version__} changed {what}: hlcli/compat.py dataset_fingerprint needs updating"

    rows = {"tokens": [["fly", "to", "boston"]], "ner_tags": [[0, 0, 1]]}
    one, same = datasets.Dataset.from_dict(rows), datasets.Dataset.from_dict(rows)
    other = datasets.Dataset.from_dict({**rows, "tokens": [["fly", "to", "denver"]]})
    assert isinstance(compat.dataset_fingerprint(one), str) and compat.dataset_fingerprint(one), changed_datasets("Dataset._fingerprint")
    assert compat.dataset_fingerprint(one) == compat.dataset_fingerprint(same), changed_datasets("the fingerprint of equal content")
    assert compat.dataset_fingerprint(one) != compat.dataset_fingerprint(other), changed_datasets("the fingerprint of other content")
    one.save_to_disk(tmp_path / "saved")
    loaded = [compat.dataset_fingerprint(datasets.load_from_disk(str(tmp_path / "saved"))) for _ in range(2)]
    assert loaded[0] == loaded[1], changed_datasets("the fingerprint of a dataset loaded from disk")
