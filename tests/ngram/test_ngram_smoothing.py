"""n-gram smoothing: every distribution sums to one, and the vectorised model equals a brute-force
reference written here from the formulas with Python dicts (orders 1-4, every smoothing)."""

from __future__ import annotations

import math
import random
import warnings
from collections import Counter

import numpy as np
import pytest

from harness.models.ngram import SMOOTHING, NgramLM, NgramWarning
from harness.models.ngram import smoothing as sm

TINY = ["a b c", "a b d", "b c a", "c a b d", "d", "a a a b"]


def random_corpus(seed: int, n: int = 120, words: int = 12) -> list[list[str]]:
    """Zipf-like sentences of 0-8 words over ``w0 … w{words-1}``."""
    rng = random.Random(seed)
    vocab = [f"w{i}" for i in range(words)]
    weights = [1.0 / (i + 1) for i in range(words)]
    return [rng.choices(vocab, weights, k=rng.randint(0, 8)) for _ in range(n)]


CORPORA = {"tiny": [s.split() for s in TINY], "random": random_corpus(0)}


def fit(corpus, order, smoothing, **kw) -> NgramLM:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NgramWarning)  # fallback discounts on tiny data
        return NgramLM(order, smoothing, **kw).fit(corpus)


def histories(corpus, order) -> set[tuple[str, ...]]:
    """Every history the model sees when scoring ``corpus``: up to order-1 tokens before each
    predicted token, starting at <s>."""
    out = set()
    for s in corpus:
        toks = ["<s>", *s, "</s>"]
        for i in range(1, len(toks)):
            out.add(tuple(toks[max(0, i - order + 1):i]))
    return out


# ------------------------------------------------------------------------ sums to one


@pytest.mark.parametrize("corpus", sorted(CORPORA))
@pytest.mark.parametrize("order", [1, 2, 3, 4])
@pytest.mark.parametrize("smoothing", SMOOTHING)
def test_every_seen_history_sums_to_one(corpus, order, smoothing):
    sents = CORPORA[corpus]
    lm = fit(sents, order, smoothing, k=0.3)
    words = [w for w in lm.vocab.words if w != "<s>"]  # </s> and <unk> included
    hs = sorted(histories(sents, order))
    assert hs
    # the stream scorer, all (history, word) pairs at once
    pairs_h = [list(h) for h in hs for _ in words]
    pairs_w = words * len(hs)
    p = 10.0 ** lm.next_log10(pairs_h, pairs_w).reshape(len(hs), len(words))
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=0, atol=1e-9)
    # the dense distribution (used for sampling) agrees word by word
    for h, row in zip(hs, p):
        d = lm.distribution(list(h))
        assert d[lm.vocab.index["<s>"]] == 0.0
        assert abs(d.sum() - 1.0) < 1e-9
        np.testing.assert_allclose(d[[lm.vocab.index[w] for w in words]], row, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("smoothing", ["laplace", "add_k", "kneser_ney", "modified_kneser_ney"])
def test_unseen_histories_sum_to_one_and_unk_threshold(smoothing):
    sents = CORPORA["random"]
    lm = fit(sents, 3, smoothing, k=0.5, unk_threshold=25)
    assert len(lm.vocab) < len({w for s in sents for w in s}) + 3  # rare words became <unk>
    for h in (["w1", "w2"], ["never", "seen"], ["<s>", "zzz"], ["<unk>"]):
        assert abs(lm.distribution(h).sum() - 1.0) < 1e-9


# ------------------------------------------------------------------------ brute-force reference


def ref_counts(sents, N):
    c = [Counter() for _ in range(N + 1)]
    for s in sents:
        toks = ["<s>", *s, "</s>"]
        for m in range(1, N + 1):
            for i in range(len(toks) - m + 1):
                g = tuple(toks[i:i + m])
                if g != ("<s>",):
                    c[m][g] += 1
    return c


def ref_adjusted(c, N):
    """a = c for order N and n-grams starting with <s>, else N1+(• g)."""
    a = [Counter() for _ in range(N + 1)]
    a[N] = Counter(c[N])
    for m in range(1, N):
        for g in c[m]:
            a[m][g] = c[m][g] if g[0] == "<s>" else len({x[0] for x in c[m + 1] if x[1:] == g})
    return a


def ref_kn(w, h, a, D, V):
    """Interpolated (modified) KN, recursively from the formula; V: predicted vocabulary."""
    def disc(m, x):
        return 0.0 if x == 0 else D[m - 1][min(x, 3) - 1]

    if not h:
        tot = sum(a[1][(v,)] for v in V)
        gamma = sum(disc(1, a[1][(v,)]) for v in V) / tot
        x = a[1][(w,)]
        return (x - disc(1, x)) / tot + gamma / len(V)
    m = len(h) + 1
    cont = {g[-1]: x for g, x in a[m].items() if g[:-1] == h}
    if not cont:
        return ref_kn(w, h[1:], a, D, V)
    tot = sum(cont.values())
    gamma = sum(disc(m, x) for x in cont.values()) / tot
    x = cont.get(w, 0)
    return (x - disc(m, x)) / tot + gamma * ref_kn(w, h[1:], a, D, V)


def ref_mle(w, h, c):
    m = len(h) + 1
    cont = {g[-1]: x for g, x in c[m].items() if g[:-1] == h}
    if not cont:
        return ref_mle(w, h[1:], c)
    return cont.get(w, 0) / sum(cont.values())


def ref_add_k(w, h, c, k, V):
    m = len(h) + 1
    cont = {g[-1]: x for g, x in c[m].items() if g[:-1] == h}
    return (cont.get(w, 0) + k) / (sum(cont.values()) + k * len(V))


@pytest.mark.filterwarnings("ignore::harness.models.ngram.smoothing.NgramWarning")  # MLE: p = 0
@pytest.mark.parametrize("order", [1, 2, 3, 4])
@pytest.mark.parametrize("smoothing", SMOOTHING)
def test_model_equals_brute_force_reference(order, smoothing):
    train = random_corpus(1, n=60)
    test = random_corpus(2, n=15, words=14) + [["zzz", "w1"], []]  # unseen words and histories
    lm = fit(train, order, smoothing, k=0.7)
    V = [w for w in lm.vocab.words if w != "<s>"]
    c = ref_counts(train, order)
    a = ref_adjusted(c, order)
    got = lm.score(test).log10
    want = []
    for s in test:
        toks = ["<s>", *[w if w in lm.vocab else "<unk>" for w in s], "</s>"]
        for i in range(1, len(toks)):
            h, w = tuple(toks[max(0, i - order + 1):i]), toks[i]
            if smoothing in ("kneser_ney", "modified_kneser_ney"):
                p = ref_kn(w, h, a, lm.discounts, V)
            elif smoothing == "mle":
                p = ref_mle(w, h, c)
            else:
                p = ref_add_k(w, h, c, 1.0 if smoothing == "laplace" else 0.7, V)
            want.append(math.log10(p) if p > 0 else -math.inf)
    assert len(got) == len(want)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-9)


def test_discounts_follow_chen_goodman_from_brute_force_count_of_counts():
    train = random_corpus(3, n=300, words=300)  # n1 … n4 > 0 at every order: no fallback
    N = 3
    a = ref_adjusted(ref_counts(train, N), N)
    for smoothing in ("kneser_ney", "modified_kneser_ney"):
        lm = fit(train, N, smoothing)
        for m in range(1, N + 1):
            n = Counter(a[m].values())
            y = n[1] / (n[1] + 2 * n[2])
            if smoothing == "kneser_ney":
                want = (y, y, y)
            else:
                want = (1 - 2 * y * n[2] / n[1], 2 - 3 * y * n[3] / n[2], 3 - 4 * y * n[4] / n[3])
            np.testing.assert_allclose(lm.discounts[m - 1], want, rtol=1e-12)


def test_fallback_discounts_warn_on_tiny_data():
    with pytest.warns(NgramWarning, match="fallback"):
        lm = NgramLM(2, "modified_kneser_ney").fit(["a b", "a b"])
    assert lm.discounts[1] == sm.FALLBACK_MODIFIED


def test_fixed_discounts_are_used():
    lm = fit(CORPORA["random"], 3, "kneser_ney", discount=0.6)
    assert lm.discounts == [(0.6, 0.6, 0.6)] * 3
    lm = fit(CORPORA["random"], 3, "kneser_ney", discount=[0.5, 0.6, 0.7])
    assert [d[0] for d in lm.discounts] == [0.5, 0.6, 0.7]
    lm = fit(CORPORA["random"], 2, "modified_kneser_ney", discount=[0.4, 0.9, 1.3])
    assert lm.discounts == [(0.4, 0.9, 1.3)] * 2
