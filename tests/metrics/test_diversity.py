"""Decoding-report measures on hand-counted cases."""

from __future__ import annotations

import pytest

from harness.metrics.diversity import distinct_n, length_ratio, repetition_rate, self_bleu


def test_distinct_n_pools_ngrams_over_texts():
    texts = ["a b a", "a c"]  # unigrams a b a a c: 3 distinct of 5; bigrams ab ba ac: 3 of 3
    assert distinct_n(texts, 1) == pytest.approx(3 / 5)
    assert distinct_n(texts, 2) == 1.0
    assert distinct_n(["a"], 2) == 0.0 and distinct_n([], 1) == 0.0


def test_repetition_rate_is_within_each_text():
    assert repetition_rate(["a a a a"], 1) == pytest.approx(0.75)  # 1 unique of 4
    assert repetition_rate(["a b", "b a"], 1) == 0.0  # repeats across texts do not count
    assert repetition_rate(["a b a b a b", "x"], 2) == pytest.approx(1 - 2 / 5)  # "x" has no bigram: skipped


def test_self_bleu_is_100_for_identical_samples_and_lower_for_varied_ones():
    same = ["the cat sat on the mat"] * 3
    assert self_bleu([same]) == pytest.approx(100.0)
    varied = ["the cat sat on the mat", "a dog ran in the park", "birds fly over the old tree"]
    assert self_bleu([varied]) < 20
    assert self_bleu([same, ["lonely"]]) == pytest.approx(100.0)  # a one-sample group is skipped
    with pytest.raises(ValueError, match="two or more"):
        self_bleu([["one"]])


def test_length_ratio_and_errors():
    assert length_ratio(["a b", "a b c d"], ["a b c d", "a b"]) == pytest.approx((0.5 + 2.0) / 2)
    with pytest.raises(ValueError, match="2 hypotheses for 1 references"):
        length_ratio(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="n: expected an integer"):
        distinct_n(["a"], 0)
