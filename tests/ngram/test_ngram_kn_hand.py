"""Interpolated Kneser-Ney bigrams against numbers worked out by hand with the textbook formula.

Corpus (3 sentences)::

    <s> a b </s>
    <s> a c </s>
    <s> b c </s>

Bigram counts c(v w):   <s> a: 2   <s> b: 1   a b: 1   a c: 1   b c: 1   b </s>: 1   c </s>: 2
History totals c(v •):  <s>: 3     a: 2       b: 2     c: 2
Distinct followers N1+(v •):  <s>: 2   a: 2   b: 2   c: 1
Continuation counts N1+(• w): a: 1 (<s>)   b: 2 (<s>, a)   c: 2 (a, b)   </s>: 2 (b, c)   <unk>: 0
                              N1+(• •) = 7
Predicted vocabulary V = {a, b, c, </s>, <unk>}: |V| = 5.

Textbook interpolated KN (Jurafsky & Martin, 3rd ed., eqs. 3.40-3.41; Chen & Goodman 1998)::

    P(w | v) = max(c(v w) − d, 0) / c(v •) + d · N1+(v •) / c(v •) · P(w)
    P(w)     = max(N1+(• w) − d, 0) / N1+(• •) + d · |{w : N1+(• w) > 0}| / N1+(• •) · 1 / |V|
"""

from __future__ import annotations

import math

import pytest

from harness.models.ngram import NgramLM

CORPUS = ["a b", "a c", "b c"]

BIGRAM = {("<s>", "a"): 2, ("<s>", "b"): 1, ("a", "b"): 1, ("a", "c"): 1, ("b", "c"): 1, ("b", "</s>"): 1,
          ("c", "</s>"): 2}
TOTAL = {"<s>": 3, "a": 2, "b": 2, "c": 2}
FOLLOWERS = {"<s>": 2, "a": 2, "b": 2, "c": 1}
CONTINUATION = {"a": 1, "b": 2, "c": 2, "</s>": 2, "<unk>": 0}
V = 5


def p_unigram(w: str, d: float) -> float:
    seen_types = sum(1 for x in CONTINUATION.values() if x > 0)  # 4
    total = sum(CONTINUATION.values())  # 7
    return max(CONTINUATION[w] - d, 0) / total + d * seen_types / total / V


def p_bigram(w: str, v: str, d1: float, d2: float) -> float:
    c = BIGRAM.get((v, w), 0)
    return max(c - d2, 0) / TOTAL[v] + d2 * FOLLOWERS[v] / TOTAL[v] * p_unigram(w, d1)


def test_hand_counts_are_the_corpus():
    lm = NgramLM(2, "kneser_ney", discount=0.5).fit(CORPUS)
    assert lm.num_ngrams == [6, len(BIGRAM)]  # <unk> <s> </s> a b c; the seven bigrams


def test_fixed_discount_matches_hand_computation():
    lm = NgramLM(2, "kneser_ney", discount=0.5).fit(CORPUS)
    # a few by hand: P(a) = 0.5/7 + 0.5·4/7/5 = 0.1285714..., P(b | a) = 0.5/2 + 0.5·2/2 · P(b) = 0.3857142...
    assert p_unigram("a", 0.5) == pytest.approx(0.5 / 7 + 2 / 35)
    assert p_bigram("b", "a", 0.5, 0.5) == pytest.approx(0.25 + 0.5 * (1.5 / 7 + 2 / 35))
    for v in TOTAL:
        for w in CONTINUATION:
            want = p_bigram(w, v, 0.5, 0.5)
            assert 10 ** lm.log10_prob(w, [v]) == pytest.approx(want, rel=1e-12), (v, w)
    # an unseen history backs off to P(w); an unseen word is <unk>
    assert 10 ** lm.log10_prob("b", ["zzz"]) == pytest.approx(p_unigram("b", 0.5), rel=1e-12)
    assert lm.log10_prob("zzz", ["a"]) == lm.log10_prob("<unk>", ["a"]) > -math.inf


def test_estimated_discounts_match_hand_computation():
    # bigram counts {2, 1, 1, 1, 1, 1, 2}: n1 = 5, n2 = 2, D = 5 / (5 + 2·2) = 5/9
    # unigram continuation counts {1, 2, 2, 2}: n1 = 1, n2 = 3, D = 1 / (1 + 2·3) = 1/7
    lm = NgramLM(2, "kneser_ney").fit(CORPUS)
    assert lm.discounts[0][0] == pytest.approx(1 / 7)
    assert lm.discounts[1][0] == pytest.approx(5 / 9)
    scores = lm.score(["a b c", "c a"])
    want = [p_bigram(w, v, 1 / 7, 5 / 9) for v, w in
            [("<s>", "a"), ("a", "b"), ("b", "c"), ("c", "</s>"), ("<s>", "c"), ("c", "a"), ("a", "</s>")]]
    assert list(10 ** scores.log10) == pytest.approx(want, rel=1e-12)
    ppl = math.prod(want) ** (-1 / len(want))
    assert scores.perplexity == pytest.approx(ppl, rel=1e-12)
