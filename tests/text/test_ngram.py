"""The Kneser–Ney n-gram baseline: proper distributions, hand-computed values, order choice, storage."""

from __future__ import annotations

import numpy as np
import pytest

from lstmkit.errors import ConfigError
from lstmkit.tasks.ngram import NGramLM

A, B = 4, 5  # two "characters"; ids 0–3 are the reserved ones, 2 (<bos>) pads the start


def test_hand_computed_bigram_values():
    """Train "a b a b" (V = 6, order 2). Unigram continuation counts: a 2 (after <bos> and b), b 1; D1 = 1/3.
    Bigram counts: <bos>a 1, ab 2, ba 1; D2 = n1/(n1 + 2 n2) = 2/4."""
    m = NGramLM(6, orders=(2,), pad_id=2).fit([A, B, A, B])
    p1 = {A: 16 / 27, B: 7 / 27}  # (c − D + D·types/V) / total, with total 3, types 2
    for w in (0, 1, 2, 3):
        p1[w] = 1 / 27
    assert m._levels[0].discount == pytest.approx(1 / 3) and m._levels[1].discount == pytest.approx(0.5)
    after_a = m.distribution([A])
    assert after_a[B] == pytest.approx((2 - 0.5 + 0.5 * 1 * p1[B]) / 2, rel=1e-12)
    assert after_a[A] == pytest.approx(0.5 * p1[A] / 2, rel=1e-12)
    after_b = m.distribution([B])
    assert after_b[A] == pytest.approx(0.5 + 0.5 * p1[A], rel=1e-12)
    unseen_context = m.distribution([3])
    np.testing.assert_allclose(unseen_context, [p1[w] for w in range(6)], rtol=1e-12)
    np.testing.assert_allclose(np.exp(m.log_probs([A, B])), [0.5 + 0.5 * p1[A], (1.5 + 0.5 * p1[B]) / 2], rtol=1e-12)


@pytest.mark.parametrize("order", [1, 2, 3, 5])
def test_probabilities_sum_to_one_over_the_vocabulary(order):
    rng = np.random.default_rng(order)
    text = rng.integers(4, 12, size=400)
    m = NGramLM(13, orders=(order,), pad_id=2).fit(text)  # id 12 and the specials never occur in training
    contexts = [[], [1], [12, 12, 12, 12], list(text[:7]), list(text[100:104]), [0, 3, 2, 1]]
    for ctx in contexts:
        d = m.distribution(ctx)
        assert d.shape == (13,) and (d > 0).all()
        assert abs(d.sum() - 1.0) < 1e-12, (ctx, d.sum())


def test_log_probs_agree_with_the_distribution_position_by_position():
    rng = np.random.default_rng(1)
    text = rng.integers(4, 9, size=300)
    m = NGramLM(9, orders=(4,), pad_id=2).fit(text)
    seq = rng.integers(1, 9, size=40)  # includes <unk> (1) and unseen contexts
    padded = [2, 2, 2, *seq]
    expected = [np.log(m.distribution(padded[: i + 3])[seq[i]]) for i in range(len(seq))]
    np.testing.assert_allclose(m.log_probs(seq), expected, rtol=1e-12)
    assert m.bits(seq) == pytest.approx(-np.sum(expected) / np.log(2))


def test_order_is_chosen_on_validation():
    text = np.tile([4, 5, 6, 4, 6, 5, 7], 60)  # period 7: the previous token does not settle the next one
    m = NGramLM(8, orders=(1, 2, 3), pad_id=2).fit(text, text[:70])
    assert set(m.order_scores_) == {1, 2, 3}
    assert m.order_ == 3 and m.order_scores_[3] < m.order_scores_[2] < m.order_scores_[1]
    assert m.order_scores_[3] < 0.2  # bits per token: nearly deterministic with two tokens of context


def test_state_round_trip_scores_the_same():
    rng = np.random.default_rng(2)
    text = rng.integers(4, 10, size=500)
    m = NGramLM(10, orders=(2, 3, 4), pad_id=2).fit(text, text[-50:])
    meta, arrays = m.to_state()
    m2 = NGramLM.from_state(meta, arrays)
    seq = rng.integers(1, 10, size=60)
    assert m2.order_ == m.order_
    np.testing.assert_array_equal(m2.log_probs(seq), m.log_probs(seq))


def test_order_too_high_for_int64_keys_is_refused():
    with pytest.raises(ConfigError, match="too high"):
        NGramLM(5000, orders=(3, 8))
