"""Estimators: raw / adjusted counts → probabilities, all orders at once with numpy.

Notation: ``h`` a history, ``w`` a predicted word, ``h'`` the history without its first word,
``V`` the predicted vocabulary (every word but ``<s>``: ``</s>`` and ``<unk>`` included), ``c`` raw
counts, ``a`` Kneser-Ney adjusted counts. Histories never reach before ``<s>``: a sentence is
``<s> w1 … wm </s>`` with one ``<s>``, as in KenLM and SRILM (not NLTK's N-1 pads), so near the
start of a sentence the longest history is shorter than N-1 and the n-gram of that length is used.

MLE
    ``p(w | h) = c(h w) / c(h •)`` for the longest suffix of ``h`` that was seen as a history; an
    unseen ``h w`` after a seen ``h`` has probability 0 (perplexity ``inf``).
Add-k (Laplace is k = 1)
    ``p(w | h) = (c(h w) + k) / (c(h •) + k |V|)``; an unseen history gives the uniform ``1/|V|``.
Interpolated Kneser-Ney (Kneser & Ney 1995; Chen & Goodman 1998, eq. 26)
    ``p(w | h) = max(a(h w) − D(a(h w)), 0) / Σ_v a(h v)  +  γ(h) · p(w | h')``
    ``γ(h) = (D1 N1(h •) + D2 N2(h •) + D3+ N3+(h •)) / Σ_v a(h v)``
    where ``N_k(h •)`` counts the words v with ``a(h v) = k`` (``N3+``: ≥ 3). The recursion ends at
    the unigrams, interpolated with the uniform distribution over V (as KenLM does)::

        p(w) = (a(w) − D(a(w))) / Σ_v a(v)  +  γ(ε) / |V|

    so ``<unk>`` — and any word the training text never had — keeps γ(ε)/|V| > 0. A history never
    seen gets γ = 1: ``p(w | h) = p(w | h')``.

    Adjusted counts: ``a = c`` for the highest order and for n-grams that start with ``<s>`` (nothing
    precedes ``<s>``); otherwise the continuation count ``a(w1 … wm) = N1+(• w1 … wm)``, the number
    of distinct words seen before it (``<s>`` included).

    Discounts per order m, from the count-of-counts ``n_k`` (n-grams of order m with ``a = k``):
    ``Y = n1 / (n1 + 2 n2)``. Plain KN uses one ``D = Y``. Modified KN uses three:

        D1 = 1 − 2 Y n2 / n1,    D2 = 2 − 3 Y n3 / n2,    D3+ = 3 − 4 Y n4 / n3.

    Where the estimate is undefined or out of range (small or artificial data: ``n_k = 0``), the
    order falls back to KenLM's ``--discount_fallback`` values (0.5, 1, 1.5) — 0.75 for plain KN —
    with a warning.

Every estimator except add-k is returned in ARPA's backoff form (:class:`BackoffTables`): for
interpolated KN the stored probability of a seen n-gram is the *full* interpolated probability and
the backoff weight of a history is exactly γ(h), since for an unseen ``h w`` the first term is 0:
``p(w | h) = γ(h) · p(w | h')``, and ``Σ_w p(w | h) = (1 − γ(h)) + γ(h) = 1``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from harness.models.ngram.counts import NgramCounts
from harness.models.ngram.vocab import BOS_ID

#: KenLM's ``--discount_fallback`` defaults (adjusted counts 1, 2, 3+)
FALLBACK_MODIFIED = (0.5, 1.0, 1.5)
FALLBACK_KN = 0.75


class NgramWarning(UserWarning):
    """A number the model reports may not mean what it usually does (fallback discount, inf perplexity)."""


@dataclass
class BackoffTables:
    """A model in ARPA's backoff form, per order m (list index m-1): the sorted ``keys`` of
    :mod:`~harness.models.ngram.counts`, ``log10p`` of each n-gram and ``log10bow`` (backoff weight
    of the n-gram as a history; 0 where it is none and for the highest order). ``-inf`` is a
    probability or weight of exactly 0 (written as -99 in ARPA files)."""

    vocab_size: int
    keys: list[np.ndarray]
    log10p: list[np.ndarray]
    log10bow: list[np.ndarray]

    @property
    def order(self) -> int:
        return len(self.keys)


def _log10(x: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.log10(x)


def count_of_counts(a: np.ndarray, kmax: int = 4) -> np.ndarray:
    """``n[k]`` = number of entries with count exactly k, k = 0 … kmax."""
    return np.bincount(np.minimum(a, kmax + 1), minlength=kmax + 2)[: kmax + 1]


def kn_discount(n: np.ndarray, order: int) -> float:
    """Ney's estimate ``D = n1 / (n1 + 2 n2)`` (fallback 0.75 when n1 = 0)."""
    if n[1] == 0:
        warnings.warn(f"{order}-grams: no singletons, so Kneser-Ney's D = n1/(n1+2n2) is undefined; "
                      f"using D = {FALLBACK_KN}", NgramWarning, stacklevel=3)
        return FALLBACK_KN
    return float(n[1] / (n[1] + 2.0 * n[2]))


def modified_kn_discounts(n: np.ndarray, order: int) -> tuple[float, float, float]:
    """Chen & Goodman's ``D_k = k − (k+1) Y n_{k+1} / n_k`` (k = 1, 2, 3), ``Y = n1 / (n1 + 2 n2)``."""
    if n[1] > 0 and n[2] > 0 and n[3] > 0:
        y = n[1] / (n[1] + 2.0 * n[2])
        d = tuple(float(k - (k + 1) * y * n[k + 1] / n[k]) for k in (1, 2, 3))
        if all(0.0 < dk <= k for k, dk in zip((1, 2, 3), d)):
            return d  # type: ignore[return-value]
        why = f"the estimates {tuple(round(x, 4) for x in d)} are out of range (0, k]"
    else:
        why = f"count-of-counts n1..n3 = {tuple(int(x) for x in n[1:4])} include a zero"
    warnings.warn(f"{order}-grams: modified Kneser-Ney discounts cannot be estimated ({why}; small or "
                  f"artificial data?); using KenLM's fallback D1, D2, D3+ = {FALLBACK_MODIFIED}",
                  NgramWarning, stacklevel=3)
    return FALLBACK_MODIFIED


def apply_discount(d: tuple[float, float, float], a: np.ndarray) -> np.ndarray:
    """``D(a)`` per entry: D1 for a = 1, D2 for a = 2, D3+ for a ≥ 3, 0 for a = 0."""
    table = np.array([0.0, d[0], d[1], d[2]])
    return table[np.minimum(a, 3)]


def adjusted_counts(c: NgramCounts) -> list[np.ndarray]:
    """Kneser-Ney's counts: raw for the highest order and for n-grams starting with ``<s>``,
    otherwise ``N1+(• w1 … wm)`` (distinct left extensions among the (m+1)-grams)."""
    out = []
    for m in range(1, c.order + 1):
        if m == c.order:
            a = c.counts[m - 1].copy()
        else:
            continuation = np.bincount(c.suffix[m], minlength=len(c.keys[m - 1]))
            a = np.where(c.first[m - 1] == BOS_ID, c.counts[m - 1], continuation)
        if m == 1:
            a[BOS_ID] = 0  # never predicted
        out.append(a.astype(np.int64))
    return out


def interpolated_kneser_ney(c: NgramCounts, discounts: list[tuple[float, float, float]],
                            adjusted: list[np.ndarray] | None = None) -> BackoffTables:
    """Interpolated (modified) Kneser-Ney in backoff form; ``discounts[m-1]`` = (D1, D2, D3+) of
    order m (plain KN: three equal values); ``adjusted``: :func:`adjusted_counts`, if already made."""
    V = c.vocab_size
    adj = adjusted if adjusted is not None else adjusted_counts(c)
    # order 1: interpolate with the uniform distribution over the |V| - 1 predictable words
    a = adj[0].astype(np.float64)  # (V,)
    d = apply_discount(discounts[0], adj[0])
    den = a.sum()
    gamma0 = d.sum() / den
    p = (a - d) / den + gamma0 / (V - 1)
    p[BOS_ID] = 0.0
    probs = [p]
    bows: list[np.ndarray] = []
    for m in range(2, c.order + 1):
        a_int = adj[m - 1]
        a = a_int.astype(np.float64)  # (n_m,)
        d = apply_discount(discounts[m - 1], a_int)
        ctx = c.context(m)  # (n_m,) row of the history in table m-1
        n_ctx = len(c.keys[m - 2])
        den = np.bincount(ctx, weights=a, minlength=n_ctx)  # (n_{m-1},) Σ_v a(h v)
        gam = np.bincount(ctx, weights=d, minlength=n_ctx)  # Σ_v D(a(h v))
        gamma = np.ones(n_ctx)  # histories without continuations back off with weight 1
        np.divide(gam, den, out=gamma, where=den > 0)
        p = (a - d) / den[ctx] + gamma[ctx] * probs[-1][c.suffix[m - 1]]
        probs.append(p)
        bows.append(gamma)
    bows.append(np.ones(len(c.keys[-1])))
    return BackoffTables(V, list(c.keys), [_log10(p) for p in probs], [_log10(b) for b in bows])


def maximum_likelihood(c: NgramCounts) -> BackoffTables:
    """MLE in backoff form: a seen history has backoff weight 0, an unseen one weight 1 (the longest
    seen suffix is used)."""
    V = c.vocab_size
    n = c.counts[0].astype(np.float64)
    n[BOS_ID] = 0.0
    probs = [n / n.sum()]
    bows: list[np.ndarray] = []
    for m in range(2, c.order + 1):
        cnt = c.counts[m - 1].astype(np.float64)
        ctx = c.context(m)
        total = np.bincount(ctx, weights=cnt, minlength=len(c.keys[m - 2]))
        probs.append(cnt / total[ctx])
        bows.append(np.where(total > 0, 0.0, 1.0))
    bows.append(np.ones(len(c.keys[-1])))
    return BackoffTables(V, list(c.keys), [_log10(p) for p in probs], [_log10(b) for b in bows])


def history_totals(c: NgramCounts) -> list[np.ndarray]:
    """``totals[m-1][row]`` = c(h •) for the history h at ``row`` of table m-1 (m ≥ 2); ``totals[0]``
    holds the number of predicted tokens (the empty history)."""
    out = [np.array([c.counts[0].sum() - c.counts[0][BOS_ID]], dtype=np.float64)]
    for m in range(2, c.order + 1):
        out.append(np.bincount(c.context(m), weights=c.counts[m - 1].astype(np.float64),
                               minlength=len(c.keys[m - 2])))
    return out


def additive_unigrams(c: NgramCounts, k: float) -> np.ndarray:
    """log10 of add-k unigram probabilities ``(c(w) + k) / (N + k |V|)`` (``<s>``: -inf)."""
    n = c.counts[0].astype(np.float64)
    p = (n + k) / (n.sum() - n[BOS_ID] + k * (c.vocab_size - 1))
    p[BOS_ID] = 0.0
    return _log10(p)
