"""ROUGE-W: ROUGE with the weighted longest common subsequence (WLCS), after Lin (2004), section 3.2.

No maintained Python package computes ROUGE-W (``rouge-score`` has ROUGE-N and ROUGE-L only), so it is written
here, as a plain importable module: the ``rouge`` metric (``harness/metrics/rouge``) uses it, and so can other code
(MBR decoding, reranking) without going through ``evaluate``.

Definition (Lin 2004, "ROUGE: A Package for Automatic Evaluation of Summaries", section 3.2). For a reference
``X`` of ``m`` tokens and a candidate ``Y`` of ``n`` tokens, a common subsequence is scored by its runs of
consecutive matches (consecutive in both ``X`` and ``Y``): a run of ``k`` tokens weighs ``f(k) = k ** alpha``
(``alpha > 1`` rewards consecutive matches; ``alpha = 1`` gives plain LCS length). Then::

    R_wlcs = f^-1(WLCS(X, Y) / f(m))      P_wlcs = f^-1(WLCS(X, Y) / f(n))
    F_wlcs = (1 + beta^2) R P / (R + beta^2 P)

with ``f^-1(x) = x ** (1 / alpha)``. ``beta = 1`` (the default) is the harmonic mean, the F that ``rouge-score``
reports for ROUGE-L; an identical candidate scores 1.0, an empty candidate or reference 0.0.

Two ways to compute ``WLCS(X, Y)``:

* ``exact=False`` (default): the paper's dynamic program, as printed in section 3.2 and as in ``wlcs_inner`` of
  ROUGE-1.5.5.pl: tables ``c(i, j)`` (score) and ``w(i, j)`` (length of the run of consecutive matches ending at
  ``i, j``); on a match ``c(i, j) = c(i-1, j-1) + f(k+1) - f(k)`` with ``k = w(i-1, j-1)``, otherwise the larger of
  ``c(i-1, j)`` and ``c(i, j-1)`` with ``w(i, j) = 0``. This DP is greedy: a match always takes the diagonal, even
  when ``c(i-1, j)`` or ``c(i, j-1)`` is larger, so it can miss the best-weighted common subsequence (reference
  ``a c b`` vs candidate ``c c c b a b``: the DP gives ``2 = f(1) + f(1)``, the run ``c b`` weighs
  ``f(2) = 2 ** 1.2``), and appending a token to the candidate can lower the score. It never overstates:
  its value is always the weight of some common subsequence.
* ``exact=True``: the maximum, over all common subsequences, of the sum of ``f`` over their runs — what the
  paper's DP sets out to find — by a DP that also tracks the run length (``O(m n r)``, ``r`` the longest run of
  equal tokens along a diagonal). Requires ``alpha >= 1`` (then splitting a run never pays).

Both agree on the paper's own example (reference ``A B C D E F G``; ``A B C D H I K`` outscores ``A H B K C I D``
although both have LCS 4). Scores from ROUGE-1.5.5.pl itself can differ from both: it re-weighs the backtracked
LCS by runs of consecutive *reference* positions only, takes unions over sentences and clips by unigram counts.

Text is tokenized as ``rouge-score`` tokenizes (``rouge_score.tokenizers.DefaultTokenizer``: lower-cased, every
run of characters outside ``[a-z0-9]`` a separator, optional Porter stemming of tokens longer than 3 characters),
so ROUGE-W sees the same tokens as ROUGE-L. The whole text is one sequence (newlines are plain separators).
"""

from __future__ import annotations

from typing import Sequence

from rouge_score import tokenizers
from rouge_score.scoring import Score

__all__ = ["weighted_lcs", "rouge_w", "RougeWScorer", "Score"]


def _check_alpha(alpha: float, exact: bool) -> float:
    alpha = float(alpha)
    if not alpha > 0:
        raise ValueError(f"ROUGE-W weight alpha must be positive, got {alpha}")
    if exact and alpha < 1:
        raise ValueError(f"exact ROUGE-W needs alpha >= 1 (f(k) = k ** alpha must reward longer runs), got {alpha}")
    return alpha


def _wlcs_lin2004(x: Sequence, y: Sequence, alpha: float) -> float:
    """The paper's DP. Each cell keeps ``closed`` (weight of the finished runs) and ``w`` (the open run), so that
    ``c(i, j) = closed + f(w)``: the same values as the paper's ``c(i-1, j-1) + f(k+1) - f(k)`` without adding
    and subtracting rounding errors (identical texts give exactly ``f(m)``)."""
    n = len(y)
    prev_closed = [0.0] * (n + 1)
    prev_w = [0] * (n + 1)
    for i in range(1, len(x) + 1):
        xi = x[i - 1]
        closed = [0.0] * (n + 1)
        w = [0] * (n + 1)
        for j in range(1, n + 1):
            if xi == y[j - 1]:
                closed[j] = prev_closed[j - 1]
                w[j] = prev_w[j - 1] + 1
            else:
                up = prev_closed[j] + (prev_w[j] ** alpha if prev_w[j] else 0.0)
                left = closed[j - 1] + (w[j - 1] ** alpha if w[j - 1] else 0.0)
                closed[j] = up if up > left else left  # w[j] stays 0: no match at (i, j)
        prev_closed, prev_w = closed, w
    return prev_closed[n] + (prev_w[n] ** alpha if prev_w[n] else 0.0)


def _wlcs_exact(x: Sequence, y: Sequence, alpha: float) -> float:
    """Maximum over common subsequences of the sum of ``f(run length)``. ``best[j]`` (row ``i``): the best score
    within ``x[:i], y[:j]``; ``runs[j]``: for alignments whose last match is ``(i, j)``, run length ``k`` → the
    largest weight of the runs before it (its score is that plus ``f(k)``). Starting a new run right after a match
    undercounts (``f(a) + f(1) <= f(a + 1)`` for ``alpha >= 1``), so the maximum is never overstated."""
    n = len(y)
    prev_best = [0.0] * (n + 1)
    prev_runs: list[dict[int, float] | None] = [None] * (n + 1)
    for i in range(1, len(x) + 1):
        xi = x[i - 1]
        best = [0.0] * (n + 1)
        runs: list[dict[int, float] | None] = [None] * (n + 1)
        for j in range(1, n + 1):
            b = prev_best[j] if prev_best[j] > best[j - 1] else best[j - 1]
            if xi == y[j - 1]:
                here = {1: prev_best[j - 1]}
                for k, closed in (prev_runs[j - 1] or {}).items():
                    if closed > here.get(k + 1, -1.0):
                        here[k + 1] = closed
                runs[j] = here
                for k, closed in here.items():
                    score = closed + k ** alpha
                    if score > b:
                        b = score
            best[j] = b
        prev_best, prev_runs = best, runs
    return prev_best[n]


def weighted_lcs(x: Sequence, y: Sequence, alpha: float = 1.2, exact: bool = False) -> float:
    """``WLCS(X, Y)`` for two token sequences with ``f(k) = k ** alpha``: the paper's DP (``exact=False``) or the
    true maximum over common subsequences (``exact=True``); see the module docstring."""
    alpha = _check_alpha(alpha, exact)
    if not x or not y:
        return 0.0
    return _wlcs_exact(x, y, alpha) if exact else _wlcs_lin2004(x, y, alpha)


def rouge_w(reference: Sequence, candidate: Sequence, alpha: float = 1.2, beta: float = 1.0,
            exact: bool = False) -> Score:
    """ROUGE-W of a candidate token sequence against one reference token sequence, as
    ``Score(precision, recall, fmeasure)`` (Python floats, 0-1)."""
    alpha = _check_alpha(alpha, exact)
    if beta < 0:
        raise ValueError(f"ROUGE-W beta must be >= 0, got {beta}")
    m, n = len(reference), len(candidate)
    if m == 0 or n == 0:
        return Score(precision=0.0, recall=0.0, fmeasure=0.0)
    wlcs = weighted_lcs(reference, candidate, alpha=alpha, exact=exact)
    if wlcs <= 0.0:
        return Score(precision=0.0, recall=0.0, fmeasure=0.0)
    recall = (wlcs / m ** alpha) ** (1.0 / alpha)
    precision = (wlcs / n ** alpha) ** (1.0 / alpha)
    b2 = beta * beta
    fmeasure = (1.0 + b2) * recall * precision / (recall + b2 * precision)
    return Score(precision=float(precision), recall=float(recall), fmeasure=float(fmeasure))


class RougeWScorer:
    """ROUGE-W on raw text, shaped like ``rouge_score.rouge_scorer.RougeScorer``: ``score(target, prediction)``
    and ``score_multi(targets, prediction)`` (the target with the highest F-measure; the first on ties).

    ``tokenizer``: any object with ``tokenize(text) -> list[str]``; default rouge-score's ``DefaultTokenizer``
    (with ``use_stemmer``), the tokens ROUGE-L sees.
    """

    def __init__(self, alpha: float = 1.2, beta: float = 1.0, use_stemmer: bool = False, exact: bool = False,
                 tokenizer=None):
        self.alpha = _check_alpha(alpha, exact)
        self.beta = float(beta)
        self.exact = bool(exact)
        self._tokenizer = tokenizer if tokenizer is not None else tokenizers.DefaultTokenizer(use_stemmer)

    def tokenize(self, text: str) -> list[str]:
        return self._tokenizer.tokenize(text)

    def score_tokens(self, target_tokens: Sequence, prediction_tokens: Sequence) -> Score:
        return rouge_w(target_tokens, prediction_tokens, alpha=self.alpha, beta=self.beta, exact=self.exact)

    def score(self, target: str, prediction: str) -> Score:
        return self.score_tokens(self.tokenize(target), self.tokenize(prediction))

    def score_multi(self, targets: Sequence[str], prediction: str) -> Score:
        if isinstance(targets, str) or not targets:
            raise ValueError("score_multi needs a non-empty list of target texts")
        prediction_tokens = self.tokenize(prediction)
        scores = [self.score_tokens(self.tokenize(t), prediction_tokens) for t in targets]
        best = 0
        for i, s in enumerate(scores):
            if s.fmeasure > scores[best].fmeasure:
                best = i
        return scores[best]
