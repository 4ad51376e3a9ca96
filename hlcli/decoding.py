"""Decoding SentT' outputs of a T5 tagger.

:func:`constrained_decode` — what ``predict`` uses. The decoder may only write the SentT' target
shape: sentinel ``<extra_id_i>`` then one label of the task, for every word, so each output is
well-formed (exactly one label per word) by construction. It is also cheap:

* the encoder runs once per batch, the decoder incrementally with its KV cache;
* logits are computed only for the task's label tokens and the sentinels (a few dozen rows of
  the embedding matrix instead of 32k);
* whenever only one token is possible (sentinels, the tail of a label once its prefix is
  unique) it is *forced*: no logits, no argmax. Each row is fed its own number of queued
  tokens per decoder call (up to a width chosen per call to minimise work per decision, see
  :func:`_call_width`), so rows whose labels differ in length need not wait for each other. Rows
  are right-padded within a call; T5's relative position bias is then computed from each row's
  own token positions (padding slots are masked), so the result is what feeding each row alone
  would give.

:func:`greedy_generate` — the reference-style decoder of one batch: greedy over the full
vocabulary, the caller's ``scope`` regenerating the weights at every step (what
``benchmarks/bench_tag.py`` times against constrained decoding; its text is parsed by ``sentt.decode``).
Both take a ``scope`` (a context-manager factory) entered around every backbone call; the model
uses it to put the task's weights in place. ``prefix`` is prepended to every input text (methods
that name the task in the input, e.g. ``"atis: "``).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Callable, ContextManager, Sequence

import torch
from torch import Tensor, nn
from transformers import DynamicCache, EncoderDecoderCache

from hlcli import sentt
from hlcli.compat import (
    cache_keyword,
    t5_decoder_output_scale,
    t5_position_bias_override,
    t5_relative_attention,
    t5_relative_bias,
)

Scope = Callable[[], ContextManager]


class LabelTrie:
    """Token-id trie of a task's sBIO labels (tokenized alone, as they tokenize inside a target)."""

    def __init__(self, tokenizer, labels: Sequence[str]) -> None:
        self.children: list[dict[int, int]] = [{}]
        self.label: list[str | None] = [None]
        for label, ids in zip(labels, tokenizer(list(labels), add_special_tokens=False).input_ids):
            if not ids:
                raise ValueError(f"label {label!r} tokenizes to nothing")
            node = 0
            for token in ids:
                if token not in self.children[node]:
                    self.children[node][token] = len(self.children)
                    self.children.append({})
                    self.label.append(None)
                node = self.children[node][token]
            self.label[node] = label
        self.tokens = sorted({t for c in self.children for t in c})


@dataclass
class _Row:
    """Decoding state of one sequence: tokens still to feed, trie node, labels so far."""

    n_words: int
    queue: list[int]
    node: int = 0
    labels: list[str] = field(default_factory=list)
    done: bool = False

    def options(self, trie: LabelTrie, sentinels: list[int]) -> list[int]:
        options = list(trie.children[self.node])
        if trie.label[self.node] is not None:
            options.append(sentinels[len(self.labels) + 1])
        return options

    def advance(self, token: int, trie: LabelTrie, sentinels: list[int]) -> None:
        if trie.label[self.node] is not None and token == sentinels[len(self.labels) + 1]:
            self.labels.append(trie.label[self.node])
            self.node = 0
            if len(self.labels) == self.n_words:
                self.done = True  # the closing sentinel and </s> are implied: nothing left to decide
                return
        else:
            self.node = trie.children[self.node][token]
        self.queue.append(token)

    def force(self, trie: LabelTrie, sentinels: list[int]) -> None:
        while not self.done and len(options := self.options(trie, sentinels)) == 1:
            self.advance(options[0], trie, sentinels)


def sentinel_ids(tokenizer) -> list[int]:
    return tokenizer.convert_tokens_to_ids([sentt.sentinel(i) for i in range(sentt.SENTINELS)])


def _windows(sentences: Sequence[Sequence[str]], max_words: int) -> list[tuple[int, int, int]]:
    return [(i, s, e) for i, words in enumerate(sentences) for s, e in sentt.windows(len(words), max_words)]


def _batches(tokenizer, sentences, items, batch_size: int, prefix: str = ""):
    """Non-empty windows sorted by input length (longest first), batched and padded."""
    live = [item for item in items if item[2] > item[1]]
    texts = {item: prefix + sentt.encode_input(list(sentences[item[0]][item[1] : item[2]])) for item in live}
    lengths = {item: len(ids) for item, ids in zip(live, tokenizer([texts[i] for i in live]).input_ids)}
    live.sort(key=lambda item: -lengths[item])
    for start in range(0, len(live), batch_size):
        chunk = live[start : start + batch_size]
        yield chunk, tokenizer([texts[i] for i in chunk], padding=True, return_tensors="pt")


def _stitch(sentences, items, per_window: dict) -> list[list[str]]:
    spans_of: dict[int, list[tuple[int, int]]] = {}  # one pass over the windows: linear in the input
    for i, s, e in items:
        spans_of.setdefault(i, []).append((s, e))
    out = []
    for i, words in enumerate(sentences):
        spans = spans_of.get(i, [])
        out.append(sentt.stitch([per_window.get((i, s, e), []) for s, e in spans], spans, len(words)))
    return out


@torch.inference_mode()
def constrained_decode(
    backbone: nn.Module,
    tokenizer,
    sentences: Sequence[Sequence[str]],
    labels: Sequence[str],
    *,
    batch_size: int,
    max_words: int = sentt.MAX_WORDS,
    scope: Scope,
    prefix: str = "",
) -> list[list[str]]:
    """sBIO labels (one per word) of every sentence, windows stitched back."""
    trie = LabelTrie(tokenizer, labels)
    sentinels = sentinel_ids(tokenizer)
    items = _windows(sentences, max_words)
    device = backbone.lm_head.weight.device
    per_window: dict[tuple[int, int, int], list[str]] = {}
    for chunk, enc in _batches(tokenizer, sentences, items, batch_size, prefix):
        n_words = [e - s for _, s, e in chunk]
        input_ids, attention_mask = enc.input_ids.to(device), enc.attention_mask.to(device)
        decoded = _decode_batch(backbone, input_ids, attention_mask, n_words, trie, sentinels, scope)
        per_window.update(zip(chunk, decoded))
    return _stitch(sentences, items, per_window)


def _decode_batch(
    backbone, input_ids: Tensor, attention_mask: Tensor, n_words: list[int], trie: LabelTrie, sentinels: list[int],
    scope: Scope,
) -> list[list[str]]:
    config = backbone.config
    device = input_ids.device
    with scope():
        encoded = backbone.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    # Only these tokens can ever be chosen: label tokens and the sentinels of this batch.
    candidates = sorted(set(trie.tokens) | set(sentinels[: max(n_words) + 1]))
    column = {token: j for j, token in enumerate(candidates)}
    candidate_weight = backbone.lm_head.weight[torch.tensor(candidates, device=device)]
    scale = t5_decoder_output_scale(config)
    rows = [_Row(n, [config.decoder_start_token_id, sentinels[0]], done=n == 0) for n in n_words]
    for row in rows:
        row.force(trie, sentinels)
    cache = EncoderDecoderCache(DynamicCache(config=config), DynamicCache(config=config))
    slots = _RowSlots(backbone.decoder, len(rows), device)
    call_cost = CALL_COST.get(device.type, CALL_COST["cpu"]) if slots.per_row else 0.0
    active = list(range(len(rows)))  # rows still decoding, in the order of the cache's batch axis
    while active:
        if any(rows[i].done for i in active):
            # Finished rows leave the batch (cache and encoder states too) instead of being fed padding.
            keep = [k for k, i in enumerate(active) if not rows[i].done]
            active = [active[k] for k in keep]
            if not active:
                break
            index = torch.tensor(keep, device=device)
            cache.batch_select_indices(index)
            encoded, attention_mask = encoded[index], attention_mask[index]
            slots.select(index)
        queued = [len(rows[i].queue) for i in active]
        width = _call_width(queued, call_cost) if slots.per_row else min(queued)
        feed = [rows[i].queue[:width] for i in active]  # right-padded to the longest below
        lengths = [len(tokens) for tokens in feed]
        width = max(lengths)
        with scope(), slots.call(lengths) as decoder_mask:
            hidden = backbone.decoder(
                input_ids=torch.tensor([t + [config.pad_token_id] * (width - len(t)) for t in feed], device=device),
                attention_mask=decoder_mask,
                encoder_hidden_states=encoded,
                encoder_attention_mask=attention_mask,
                use_cache=True,
                **{cache_keyword(type(backbone.decoder)): cache},
            ).last_hidden_state
        for i, n in zip(active, lengths):
            del rows[i].queue[:n]
        deciding = [k for k, i in enumerate(active) if not rows[i].queue]
        last = torch.tensor([lengths[k] - 1 for k in deciding], device=device)
        scores = (hidden[deciding, last] * scale) @ candidate_weight.T
        for j, k in enumerate(deciding):
            row = rows[active[k]]
            options = row.options(trie, sentinels)
            cols = torch.tensor([column[t] for t in options], device=scores.device)
            row.advance(options[int(scores[j, cols].argmax())], trie, sentinels)
            row.force(trie, sentinels)
    return [row.labels for row in rows]


# What one decoder call costs beyond its tokens, in tokens per row. Fit on the t5-small shape (32 ATIS
# sentences, 1 CPU thread, docs/PERFORMANCE.md §2): a call of 32 rows costs about as much as feeding
# each row one more token. On a GPU a call is mostly kernel-launch latency, so feeding everything queued is cheapest.
CALL_COST = {"cpu": 1.0, "cuda": 1e9, "mps": 1e9}


def _call_width(queued: list[int], call_cost: float) -> int:
    """Tokens fed per row in the next call: the width that makes the most rows reach their next
    decision per unit of work, work = (call_cost + width) per row (padding included)."""
    best, best_cost = min(queued), float("inf")
    for width in sorted(set(queued)):
        deciding = sum(n <= width for n in queued)
        cost = (call_cost + width) * len(queued) / deciding
        if cost < best_cost:
            best, best_cost = width, cost
    return best


class _RowSlots:
    """Cache slots of a right-padded incremental decode: which are real, and each one's position.

    T5's decoder computes its relative position bias once, in block 0's self-attention, from the
    cache length, i.e. as if every row's tokens sat in consecutive slots. With rows fed different
    numbers of tokens per call that is wrong for every row behind the longest, so while a call
    runs, that ``compute_bias`` is replaced by one that measures distances between each row's own
    token positions. ``per_row`` is False for a decoder without that layout (then every call feeds
    the same number of tokens per row and no padding exists).
    """

    def __init__(self, decoder: nn.Module, batch: int, device: torch.device) -> None:
        self.attention = t5_relative_attention(decoder)
        self.per_row = self.attention is not None
        self.real = torch.zeros(batch, 0, dtype=torch.long, device=device)  # 1 = a real token, 0 = padding
        self.position = torch.zeros(batch, 0, dtype=torch.long, device=device)  # its position in its row

    def select(self, index: Tensor) -> None:
        self.real, self.position = self.real[index], self.position[index]

    @contextlib.contextmanager
    def call(self, lengths: list[int]):
        """Record this call's slots; yield the decoder attention mask (None without per-row positions)."""
        width = max(lengths)
        offsets = torch.arange(width, device=self.real.device)
        real = (offsets[None, :] < torch.tensor(lengths, device=self.real.device)[:, None]).long()
        start = self.real.sum(1, keepdim=True)  # tokens each row has fed so far
        self.real = torch.cat([self.real, real], dim=1)
        self.position = torch.cat([self.position, start + offsets[None, :]], dim=1)
        if not self.per_row:
            yield None
            return
        with t5_position_bias_override(self.attention, self._bias):
            yield self.real

    def _bias(self, query_length: int, key_length: int) -> Tensor:
        """(batch, heads, query, key): distances between each row's own token positions (decoder: causal)."""
        memory = self.position[:, :key_length]
        context = self.position[:, key_length - query_length : key_length]
        return t5_relative_bias(self.attention, memory[:, None, :] - context[:, :, None], bidirectional=False)


@torch.no_grad()
def greedy_generate(
    backbone: nn.Module, input_ids: Tensor, attention_mask: Tensor, *, scope: Scope, max_new_tokens: int
) -> list[list[int]]:
    """Reference-style greedy generation of one batch: full-vocabulary argmax at every step with
    the KV cache, ``scope`` entered around every backbone call (the caller regenerates its
    weights there), stopping when every row has written ``</s>``. Token ids per row (start
    token left out; rows that finished early are padded)."""
    config = backbone.config
    with scope():
        encoded = backbone.encoder(input_ids=input_ids, attention_mask=attention_mask)
    generated = torch.full((input_ids.shape[0], 1), config.decoder_start_token_id, device=input_ids.device)
    finished = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
    cache = EncoderDecoderCache(DynamicCache(config=config), DynamicCache(config=config))
    for _ in range(max_new_tokens):
        with scope():
            logits = backbone(
                encoder_outputs=encoded,
                attention_mask=attention_mask,
                decoder_input_ids=generated[:, -1:],
                use_cache=True,
                **{cache_keyword(type(backbone)): cache},
            ).logits[:, -1]
        token = logits.argmax(-1).masked_fill(finished, config.pad_token_id)
        generated = torch.cat([generated, token[:, None]], dim=1)
        finished |= token == config.eos_token_id
        if bool(finished.all()):
            break
    return generated[:, 1:].tolist()

