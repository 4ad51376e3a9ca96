"""Bootstrap confidence intervals and paired tests of seqeval micro-F1 over test sentences.

Micro-F1 only depends on three sums over sentences: true-positive chunks, predicted chunks and
gold chunks (F1 = 2·TP / (predicted + gold), which equals seqeval's 2PR/(P+R)). So each sentence
is reduced once to its ``(tp, predicted, gold)`` counts with seqeval's own ``get_entities`` (the
same lenient conlleval chunking :data:`hlcli.scoring.SEQEVAL_MODE` scores with), and a
resample of sentences is a vector of how often each sentence was drawn: its F1 comes from one
matrix product. 1,000 resamples of mTOD's 8,621 test sentences take well under a second, where
re-running seqeval per resample takes minutes. See docs/bootstrap.md.
"""

from __future__ import annotations

import hashlib
from typing import Sequence

import numpy as np
from seqeval.metrics.sequence_labeling import get_entities

RESAMPLES = 1000
CONFIDENCE = 0.95
ALPHA = 0.05  # a method is "tied" with the row's best unless the paired test rejects at this level
SEED = 20240701  # base seed of every resample draw (combined with the sentences' fingerprint)


def entity_counts(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> np.ndarray:
    """Per sentence ``[true positives, predicted chunks, gold chunks]`` (shape ``(n, 3)``)."""
    counts = np.zeros((len(gold), 3), dtype=np.int64)
    for row, (g, p) in enumerate(zip(gold, pred, strict=True)):
        gold_chunks, pred_chunks = set(get_entities(list(g))), set(get_entities(list(p)))
        counts[row] = (len(gold_chunks & pred_chunks), len(pred_chunks), len(gold_chunks))
    return counts


def micro_f1(totals: np.ndarray) -> np.ndarray:
    """F1 from summed counts (``[..., 3]``); 0 where nothing was predicted or gold (seqeval's zero_division=0)."""
    tp, predicted, gold = totals[..., 0], totals[..., 1], totals[..., 2]
    denominator = predicted + gold
    return np.where(denominator > 0, 2.0 * tp / np.maximum(denominator, 1), 0.0)


def fingerprint(tokens: Sequence[Sequence[str]], gold: Sequence[Sequence[str]]) -> str:
    """Identifies a list of sentences: runs scored on the same sentences share their resamples."""
    digest = hashlib.sha1()
    for words, tags in zip(tokens, gold, strict=True):
        digest.update(("\x1f".join(words) + "\x1e" + "\x1f".join(tags) + "\x1d").encode("utf-8"))
    return digest.hexdigest()


def resample_weights(n: int, key: str, *, resamples: int = RESAMPLES, seed: int = SEED) -> np.ndarray:
    """``(resamples, n)`` draw counts: row b says how often each of the n sentences is in resample b.

    Seeded by ``seed`` and ``key`` (a :func:`fingerprint`), so every method scored on the same
    sentences gets the same resamples (the pairing of the paired test) on every call.
    """
    rng = np.random.default_rng([seed, int(key[:15], 16)])
    drawn = rng.integers(0, n, size=(resamples, n)) if n else np.zeros((resamples, 0), dtype=np.int64)
    flat = (drawn + n * np.arange(resamples)[:, None]).ravel()
    # float32 holds every count exactly (sums stay far below 2**24) at half the memory of float64.
    return np.bincount(flat, minlength=resamples * n).reshape(resamples, n).astype(np.float32)


def resampled_f1(counts: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Micro-F1 of each resample (``(resamples,)``)."""
    return micro_f1((weights @ counts.astype(weights.dtype)).astype(np.float64))


def seed_draws(seeds: int, *, resamples: int = RESAMPLES, seed: int = SEED) -> np.ndarray:
    """``(resamples, seeds)`` indices of the training seeds each resample averages over, drawn with
    replacement. Depends only on the number of seeds, so every cell of a table gets the same
    draws: a paired test compares two methods on the same seeds (the i-th of each, in seed order)
    and the Average row's datasets share each resample's seeds."""
    return np.random.default_rng([seed, seeds]).integers(0, seeds, size=(resamples, seeds))


def over_seeds(per_seed: np.ndarray) -> np.ndarray:
    """``(seeds, resamples)`` resampled F1s → ``(resamples,)``: in each resample the mean over
    seeds drawn with replacement (:func:`seed_draws`), so the interval and the paired test carry
    the spread between training seeds as well as between test sentences (one seed: unchanged)."""
    seeds, resamples = per_seed.shape
    if seeds == 1:
        return per_seed[0]
    draws = seed_draws(seeds, resamples=resamples)
    return per_seed[draws, np.arange(resamples)[:, None]].mean(axis=1)


def interval(samples: np.ndarray, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Percentile interval of the bootstrap distribution."""
    tail = (1.0 - confidence) / 2.0 * 100.0
    low, high = np.percentile(samples, [tail, 100.0 - tail])
    return float(low), float(high)


def paired_p_value(best: np.ndarray, other: np.ndarray) -> float:
    """One-sided paired bootstrap p-value of "``other`` is worse than ``best``".

    The share of resamples (the same sentences for both) in which ``best`` is not ahead: 1 for
    identical predictions, near 0 when ``best`` wins on almost every resample.
    """
    return float(np.mean(best - other <= 0.0))


def f1_interval(
    tokens: Sequence[Sequence[str]], gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]
) -> tuple[float, float]:
    """95 % interval of one task's micro-F1 (what ``hl evaluate --ci`` prints)."""
    counts = entity_counts(gold, pred)
    return interval(resampled_f1(counts, resample_weights(len(counts), fingerprint(tokens, gold))))
