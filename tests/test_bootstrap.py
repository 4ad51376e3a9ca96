"""The bootstrap of micro-F1 against cases computed exactly, and against seqeval itself."""

from __future__ import annotations

import numpy as np
import pytest
from seqeval.metrics import f1_score

from hlcli.compare import bootstrap

GOLD = [["B-a", "I-a", "O"], ["O", "B-b"], ["B-a", "O", "B-b"], ["O", "O"], ["I-a", "I-a", "B-a"]]
PRED = [["B-a", "I-a", "O"], ["O", "O"], ["B-a", "O", "B-a"], ["B-b", "O"], ["I-a", "O", "B-a"]]
TOKENS = [[f"w{i}"] * len(tags) for i, tags in enumerate(GOLD)]


def test_counts_give_seqeval_micro_f1_on_the_full_set():
    counts = bootstrap.entity_counts(GOLD, PRED)
    assert counts.tolist() == [[1, 1, 1], [0, 0, 1], [1, 2, 2], [0, 1, 0], [1, 2, 2]]
    assert float(bootstrap.micro_f1(counts.sum(axis=0))) == pytest.approx(f1_score(GOLD, PRED))


def test_counts_agree_with_seqeval_on_a_real_corpus(data_dir):
    from hlcli.data.tasks import load_split

    examples = load_split("atis", "test", data_dir=data_dir)
    gold = [list(e.tags) for e in examples]
    rng = np.random.default_rng(0)
    # A corrupted copy: every tag replaced with probability 0.1 by another tag of the corpus.
    tags = sorted({t for s in gold for t in s})
    pred = [[tags[rng.integers(len(tags))] if rng.random() < 0.1 else t for t in s] for s in gold]
    counts = bootstrap.entity_counts(gold, pred)
    assert float(bootstrap.micro_f1(counts.sum(axis=0))) == pytest.approx(f1_score(gold, pred), abs=1e-12)
    # And per resample: a resample's F1 is seqeval's F1 of the sentences it drew.
    weights = bootstrap.resample_weights(len(gold), bootstrap.fingerprint([e.tokens for e in examples], gold), resamples=3)
    for row in weights:
        drawn = [i for i, k in enumerate(row.astype(int)) for _ in range(k)]
        expected = f1_score([gold[i] for i in drawn], [pred[i] for i in drawn])
        assert bootstrap.resampled_f1(counts, row[None, :])[0] == pytest.approx(expected, abs=1e-12)


def test_identical_predictions_give_a_zero_width_difference_and_p_one():
    counts = bootstrap.entity_counts(GOLD, PRED)
    weights = bootstrap.resample_weights(len(counts), bootstrap.fingerprint(TOKENS, GOLD))
    a, b = bootstrap.resampled_f1(counts, weights), bootstrap.resampled_f1(counts.copy(), weights)
    assert bootstrap.interval(a - b) == (0.0, 0.0)
    assert bootstrap.paired_p_value(a, b) == 1.0


def test_a_perfect_system_against_an_empty_one_gives_p_zero():
    perfect = bootstrap.entity_counts(GOLD, GOLD)
    empty = bootstrap.entity_counts(GOLD, [["O"] * len(s) for s in GOLD])
    weights = bootstrap.resample_weights(len(GOLD), bootstrap.fingerprint(TOKENS, GOLD))
    good, bad = bootstrap.resampled_f1(perfect, weights), bootstrap.resampled_f1(empty, weights)
    # Every resample with a gold chunk scores 1 vs 0; one drawing only chunk-less sentences ties at 0.
    chunkless = np.all(weights[:, [0, 1, 2, 4]] == 0, axis=1)
    assert bootstrap.paired_p_value(good, bad) == pytest.approx(chunkless.mean())
    assert bootstrap.paired_p_value(good, bad) < 0.05


def test_a_degenerate_corpus_has_a_point_interval():
    # Every sentence the same: every resample is the same corpus, so the interval is the F1 itself.
    gold, pred = [["B-a", "O"]] * 50, [["B-a", "B-a"]] * 50
    counts = bootstrap.entity_counts(gold, pred)
    weights = bootstrap.resample_weights(50, bootstrap.fingerprint([["x", "y"]] * 50, gold))
    low, high = bootstrap.interval(bootstrap.resampled_f1(counts, weights))
    assert low == high == pytest.approx(f1_score(gold, pred)) == pytest.approx(2 / 3)
    # Nothing to find and nothing predicted: F1 0 (seqeval's zero_division=0), not NaN.
    assert bootstrap.micro_f1(bootstrap.entity_counts([["O"]] * 3, [["O"]] * 3).sum(axis=0)) == 0.0


def test_resamples_are_seeded_by_the_sentences_and_draw_n_each():
    key = bootstrap.fingerprint(TOKENS, GOLD)
    first, again = bootstrap.resample_weights(5, key), bootstrap.resample_weights(5, key)
    assert np.array_equal(first, again) and first.shape == (bootstrap.RESAMPLES, 5)
    assert (first.sum(axis=1) == 5).all()
    other = bootstrap.resample_weights(5, bootstrap.fingerprint(TOKENS, PRED))
    assert not np.array_equal(first, other)


def test_seeds_are_resampled_too_so_the_spread_between_seeds_widens_the_interval():
    resamples = bootstrap.RESAMPLES
    # One seed: its resampled F1s unchanged.
    alone = np.linspace(0.5, 0.7, resamples)
    assert np.array_equal(bootstrap.over_seeds(alone[None, :]), alone)
    # Two seeds that score 0.6 and 0.8 on every resample of the sentences: averaging them (the
    # mean, 0.7, on every resample) hid the seeds; drawing 2 of 2 with replacement gives 0.6,
    # 0.7 or 0.8 with probabilities 1/4, 1/2, 1/4.
    two = np.stack([np.full(resamples, 0.6), np.full(resamples, 0.8)])
    values = bootstrap.over_seeds(two)
    assert set(np.round(values, 12)) == {0.6, 0.7, 0.8}
    shares = [np.mean(np.isclose(values, v)) for v in (0.6, 0.7, 0.8)]
    assert shares == pytest.approx([0.25, 0.5, 0.25], abs=0.05)  # 1,000 draws: within ~3.5 standard errors
    assert bootstrap.interval(values) == pytest.approx((0.6, 0.8))
    # The draws depend only on the number of seeds: every cell of a table (and the Average row) pairs
    # the same seeds in each resample; three seeds draw other indices than two.
    assert np.array_equal(bootstrap.seed_draws(2), bootstrap.seed_draws(2))
    assert bootstrap.seed_draws(3).shape == (resamples, 3) and set(np.unique(bootstrap.seed_draws(3))) == {0, 1, 2}
    # Identical methods stay identical under the paired test (p = 1), seeds drawn or not.
    assert bootstrap.paired_p_value(bootstrap.over_seeds(two), bootstrap.over_seeds(two.copy())) == 1.0


def test_interval_covers_the_full_set_f1_on_a_real_sized_corpus():
    rng = np.random.default_rng(1)
    gold = [["B-a", "O", "B-b"] for _ in range(2000)]
    pred = [[("B-a" if rng.random() < 0.8 else "O"), "O", ("B-b" if rng.random() < 0.6 else "B-a")] for _ in range(2000)]
    low, high = bootstrap.f1_interval([["x"] * 3] * 2000, gold, pred)
    point = f1_score(gold, pred)
    assert low < point < high and 0.005 < high - low < 0.06
