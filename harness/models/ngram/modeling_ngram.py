"""The n-gram language model: fit on sentences, score, sample, export to / load from ARPA.

Sentences are ``<s> w1 … wm </s>``: one ``<s>`` (histories never reach before it), ``</s>`` predicted
like a word (drop it with ``eos=False``). Words outside the training vocabulary — and, with
``unk_threshold > 1``, training words seen fewer times — are read as ``<unk>``, which every smoothed
model gives probability mass, so perplexity is finite on any text. Only MLE can give 0 (an n-gram
unseen after a seen history, or ``<unk>`` when training had none); its perplexity is then ``inf``
and :meth:`NgramLM.score` warns. See :mod:`~harness.models.ngram.smoothing` for the formulas.

Perplexity is over every predicted token — words, OOV words scored as ``<unk>``, and one ``</s>`` per
sentence — ``PPL = 10 ** (−Σ log10 p / #tokens)``, as KenLM reports it ("including OOVs") and as
Mikolov's PTB numbers count ``<eos>``.
"""

from __future__ import annotations

import json
import math
import warnings
from collections import Counter
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from harness.errors import DataError, HarnessError
from harness.models.ngram import smoothing as sm
from harness.models.ngram.arpa import read_arpa, write_arpa
from harness.models.ngram.counts import NgramCounts, context_indices, lookup, stream_indices
from harness.models.ngram.smoothing import BackoffTables, NgramWarning
from harness.models.ngram.vocab import BOS, BOS_ID, EOS, EOS_ID, UNK_ID, Encoded, Vocabulary, as_tokens

SMOOTHING = ("mle", "laplace", "add_k", "kneser_ney", "modified_kneser_ney")
ADDITIVE = ("laplace", "add_k")
LN10 = math.log(10.0)


@dataclass
class Scores:
    """Per-token log10 probabilities of scored sentences (flat; sentence i is
    ``log10[offsets[i]:offsets[i+1]]``) and which tokens were out of the vocabulary."""

    log10: np.ndarray
    offsets: np.ndarray
    oov: np.ndarray

    @property
    def num_tokens(self) -> int:
        return len(self.log10)

    @property
    def num_sentences(self) -> int:
        return len(self.offsets) - 1

    @property
    def total_log10(self) -> float:
        return float(self.log10.sum())

    @property
    def perplexity(self) -> float:
        """``10 ** (−Σ log10 p / #tokens)``; ``inf`` when a token has probability 0."""
        if not self.num_tokens:
            return math.nan
        return float(10.0 ** (-self.total_log10 / self.num_tokens))

    @property
    def cross_entropy_bits(self) -> float:
        """``−Σ log2 p / #tokens`` = log2(perplexity)."""
        if not self.num_tokens:
            return math.nan
        return float(-self.total_log10 * math.log2(10.0) / self.num_tokens)

    @property
    def oov_rate(self) -> float:
        return float(self.oov.mean()) if self.num_tokens else 0.0

    def sentence(self, i: int) -> np.ndarray:
        return self.log10[self.offsets[i]:self.offsets[i + 1]]


class NgramLM:
    """An n-gram language model of any order.

    Args:
        order: N ≥ 1 (histories of up to N-1 words).
        smoothing: ``mle``, ``laplace`` (add-one), ``add_k``, ``kneser_ney`` (interpolated, one
            discount per order) or ``modified_kneser_ney`` (interpolated, D1/D2/D3+ per order).
        k: the pseudo-count of ``add_k`` (``laplace`` is k = 1).
        discount: fixed discounts instead of the count-of-counts estimates: for ``kneser_ney`` one
            number (every order) or one per order, each in (0, 1]; for ``modified_kneser_ney``
            ``[D1, D2, D3+]`` (every order) with 0 < Dk ≤ k.
        unk_threshold: training words seen fewer times than this are read as ``<unk>``
            (1: keep every word, KenLM's behaviour; ``<unk>`` then only gets smoothing mass).
    """

    def __init__(self, order: int = 3, smoothing: str = "kneser_ney", k: float = 1.0,
                 discount: float | Sequence[float] | None = None, unk_threshold: int = 1):
        if isinstance(order, bool) or not isinstance(order, int) or order < 1:
            raise HarnessError(f"n-gram order must be an integer >= 1, got {order!r}")
        if smoothing not in SMOOTHING:
            import difflib

            close = difflib.get_close_matches(str(smoothing), SMOOTHING, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise HarnessError(f"unknown smoothing {smoothing!r}{hint}; choose one of {', '.join(SMOOTHING)}")
        if smoothing == "laplace":
            k = 1.0
        if smoothing == "add_k" and not (isinstance(k, (int, float)) and k > 0):
            raise HarnessError(f"add_k smoothing needs k > 0, got {k!r}")
        if isinstance(unk_threshold, bool) or not isinstance(unk_threshold, int) or unk_threshold < 1:
            raise HarnessError(f"unk_threshold must be an integer >= 1, got {unk_threshold!r}")
        self.order = order
        self.smoothing = smoothing
        self.k = float(k)
        self.fixed_discounts = self._check_discount(discount, smoothing, order)
        self.unk_threshold = unk_threshold
        self.eos = True
        self.vocab: Vocabulary | None = None
        self.tables: BackoffTables | None = None  # every smoothing but add-k
        self.discounts: list[tuple[float, float, float]] | None = None  # KN: the ones used, per order
        self._counts: NgramCounts | None = None  # add-k: raw counts
        self._totals: list[np.ndarray] | None = None  # add-k: c(h •) per history row
        self.train_tokens = 0

    @staticmethod
    def _check_discount(discount, smoothing: str, order: int) -> list[tuple[float, float, float]] | None:
        if discount is None:
            return None
        if smoothing == "kneser_ney":
            values = [discount] * order if isinstance(discount, (int, float)) else list(discount)
            if len(values) != order or not all(isinstance(d, (int, float)) and 0 < d <= 1 for d in values):
                raise HarnessError(f"kneser_ney discount must be one number in (0, 1] or {order} of them "
                                   f"(one per order), got {discount!r}")
            return [(float(d),) * 3 for d in values]
        if smoothing == "modified_kneser_ney":
            values = [discount] if isinstance(discount, (int, float)) else list(discount)
            if len(values) != 3 or not all(isinstance(d, (int, float)) and 0 < d <= i + 1 for i, d in enumerate(values)):
                raise HarnessError(f"modified_kneser_ney discount must be [D1, D2, D3+] with 0 < Dk <= k, got {discount!r}")
            return [tuple(float(d) for d in values)] * order  # type: ignore[list-item]
        raise HarnessError(f"discount applies to kneser_ney and modified_kneser_ney, not {smoothing}")

    # ------------------------------------------------------------------------------------- fit

    @property
    def fitted(self) -> bool:
        return self.vocab is not None

    def _require_fitted(self) -> None:
        if not self.fitted:
            raise HarnessError("the n-gram model is not fitted: call fit(sentences) or load one (from_arpa / load)")

    def fit(self, sentences: Iterable, eos: bool = True) -> "NgramLM":
        """Count and estimate from sentences (token lists, or strings split on whitespace)."""
        sents = [as_tokens(s) for s in sentences]
        word_counts = Counter(chain.from_iterable(sents))
        if not word_counts:
            raise DataError(f"cannot fit an n-gram model on an empty corpus ({len(sents)} sentences, no words)")
        vocab = Vocabulary.from_counts(word_counts, self.unk_threshold)
        enc = vocab.encode_sentences(sents, eos=bool(eos), what="training sentence")
        counts = NgramCounts.from_stream(enc.ids, enc.pos, self.order, len(vocab))
        tables, totals, discounts, adjusted = None, None, None, None
        if self.smoothing in ADDITIVE:
            totals = sm.history_totals(counts)
        elif self.smoothing == "mle":
            tables = sm.maximum_likelihood(counts)
        else:
            if self.fixed_discounts is not None:
                discounts = list(self.fixed_discounts)
            else:
                discounts = []
                adjusted = sm.adjusted_counts(counts)
                for m, a in enumerate(adjusted, start=1):
                    n = sm.count_of_counts(a)  # n[k]: m-grams with adjusted count k
                    if self.smoothing == "kneser_ney":
                        discounts.append((sm.kn_discount(n, m),) * 3)
                    else:
                        discounts.append(sm.modified_kn_discounts(n, m))
            tables = sm.interpolated_kneser_ney(counts, discounts, adjusted)
        # the model changes only once everything succeeded
        self.vocab, self.eos, self.discounts, self.tables = vocab, bool(eos), discounts, tables
        self._counts, self._totals = (counts, totals) if totals is not None else (None, None)
        self.train_tokens = int(enc.predicted.sum())
        return self

    # ------------------------------------------------------------------------------------- sizes

    @property
    def num_ngrams(self) -> list[int]:
        """Number of n-grams stored per order (order 1: the vocabulary, ``<s>`` and ``<unk>`` included)."""
        self._require_fitted()
        keys = self.tables.keys if self.tables is not None else self._counts.keys
        return [len(k) for k in keys]

    @property
    def vocab_size(self) -> int:
        self._require_fitted()
        return len(self.vocab)

    # ------------------------------------------------------------------------------------- score

    def _log10_stream(self, ids: np.ndarray, pos: np.ndarray, predicted: np.ndarray) -> np.ndarray:
        """(T,) log10 p(token t | its history) where ``predicted``; NaN elsewhere."""
        V = len(self.vocab)
        if self.tables is not None:
            tb = self.tables
            idx = stream_indices(tb.keys, V, ids, pos)  # idx[m-1][t]: m-gram ending at t
            ctx = context_indices(idx, pos)  # ctx[j-1][t]: history of length j before t
            out = np.zeros(len(ids))
            done = ~predicted
            for m in range(tb.order, 0, -1):
                row = idx[m - 1]
                hit = ~done & (row >= 0)
                out[hit] += tb.log10p[m - 1][row[hit]]
                done |= hit
                if m > 1:  # not listed at order m: back off through the history of length m-1
                    h = ctx[m - 2]
                    use = ~done & (h >= 0)
                    out[use] += tb.log10bow[m - 2][h[use]]
        else:
            c, totals, k = self._counts, self._totals, self.k
            idx = stream_indices(c.keys, V, ids, pos)
            ctx = context_indices(idx, pos)
            L = np.minimum(pos, self.order - 1)  # (T,) history length used
            out = np.zeros(len(ids))
            for m in range(1, self.order + 1):
                sel = predicted & (L == m - 1)
                row = idx[m - 1][sel]
                c_hw = np.where(row >= 0, c.counts[m - 1][np.maximum(row, 0)], 0).astype(np.float64)
                if m == 1:
                    c_h = np.full(len(row), totals[0][0])
                else:
                    h = ctx[m - 2][sel]
                    c_h = np.where(h >= 0, totals[m - 1][np.maximum(h, 0)], 0.0)
                out[sel] = np.log10((c_hw + k) / (c_h + k * (V - 1)))
        out[~predicted] = np.nan
        return out

    def score(self, sentences: Iterable, eos: bool | None = None) -> Scores:
        """log10 p of every predicted token of every sentence (``</s>`` included unless ``eos=False``;
        default: as trained)."""
        self._require_fitted()
        enc = self.vocab.encode_sentences(sentences, eos=self.eos if eos is None else eos)
        return self._score_encoded(enc)

    def _score_encoded(self, enc: Encoded) -> Scores:
        predicted = enc.predicted
        lp = self._log10_stream(enc.ids, enc.pos, predicted)
        keep = np.flatnonzero(predicted)
        # sentence s owns tokens offsets[s]+1 … offsets[s+1]-1 (all but its <s>)
        offsets = enc.offsets - np.arange(len(enc.offsets))
        scores = Scores(log10=lp[keep], offsets=offsets, oov=enc.oov[keep])
        zeros = int(np.isneginf(scores.log10).sum())
        if zeros:
            what = "the MLE model" if self.smoothing == "mle" else f"this {self.smoothing} model"
            warnings.warn(f"{zeros} of {scores.num_tokens} tokens have probability 0 under {what}, so perplexity "
                          f"is inf (unseen n-grams; use laplace, add_k, kneser_ney or modified_kneser_ney)",
                          NgramWarning, stacklevel=3)
        return scores

    def perplexity(self, sentences: Iterable, eos: bool | None = None) -> float:
        return self.score(sentences, eos).perplexity

    def logprobs(self, sentence, eos: bool | None = None) -> np.ndarray:
        """Natural-log probability of each predicted token of one sentence (its words, then ``</s>``)."""
        return self.score([sentence], eos).log10 * LN10

    def _history_ids(self, history: Sequence[str]) -> list[int]:
        """The last N-1 ids of a history; ``<s>`` may only start it."""
        ids = [self.vocab.id(w) for w in history]
        if BOS_ID in ids[1:] or EOS_ID in ids:
            raise DataError(f"history {list(history)!r}: <s> may only start a history and </s> cannot be in one")
        return ids[max(0, len(ids) - (self.order - 1)):] if self.order > 1 else []

    def next_log10(self, histories: Sequence[Sequence[str]], words: Sequence[str]) -> np.ndarray:
        """log10 p(words[i] | histories[i]) for every pair, vectorised (a history is a word list,
        optionally starting with ``<s>``; only its last N-1 words matter)."""
        self._require_fitted()
        if len(histories) != len(words):
            raise ValueError(f"expected as many histories as words, got {len(histories)} and {len(words)}")
        rows = [self._history_ids(h) + [self.vocab.id(w)] for h, w in zip(histories, words)]
        sizes = np.array([len(r) for r in rows], dtype=np.int64)
        ids = np.fromiter(chain.from_iterable(rows), dtype=np.int64, count=int(sizes.sum()))
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        pos = np.arange(len(ids)) - np.repeat(starts, sizes)
        last = starts + sizes - 1
        predicted = np.zeros(len(ids), dtype=bool)
        predicted[last] = True
        if np.any(ids[last] == BOS_ID):
            raise DataError("<s> is never predicted: it has no probability")
        return self._log10_stream(ids, pos, predicted)[last]

    def log10_prob(self, word: str, history: Sequence[str] = ()) -> float:
        """log10 p(word | history)."""
        return float(self.next_log10([list(history)], [word])[0])

    def distribution(self, history: Sequence[str] = ()) -> np.ndarray:
        """(|vocab|,) p(w | history) for every word id (``<s>``: 0); sums to 1."""
        self._require_fitted()
        return self._distribution_ids(self._history_ids(history))

    def _history_rows(self, hist: list[int], keys: list[np.ndarray]) -> list[int]:
        """Row of the history suffix of length j in table j, for j = 1 … len(hist) (-1: not listed)."""
        V = len(self.vocab)
        rows = []
        for j in range(1, len(hist) + 1):
            row = hist[-j]
            for i in range(1, j):
                if row < 0:
                    break
                row = int(lookup(keys[i], np.array([row * V + hist[-j + i]]))[0])
            rows.append(row)
        return rows

    def _distribution_ids(self, hist: list[int]) -> np.ndarray:
        V = len(self.vocab)
        if self.tables is not None:
            tb = self.tables
            logd = tb.log10p[0].copy()  # (V,) d_0 = p(w)
            # d_j(w) = p*(h_j w) where listed, else bow(h_j) · d_{j-1}(w)
            for j, row in enumerate(self._history_rows(hist, tb.keys), start=1):
                if row < 0:
                    continue
                logd += tb.log10bow[j - 1][row]
                lo, hi = np.searchsorted(tb.keys[j], [row * V, (row + 1) * V])
                logd[tb.keys[j][lo:hi] % V] = tb.log10p[j][lo:hi]
            p = 10.0 ** logd
        else:
            c, totals, k = self._counts, self._totals, self.k
            L = len(hist)
            c_hw = np.zeros(V)
            if L == 0:
                c_hw[:] = c.counts[0]
                c_h = totals[0][0]
            else:
                row = self._history_rows(hist, c.keys)[-1]
                c_h = 0.0
                if row >= 0:
                    lo, hi = np.searchsorted(c.keys[L], [row * V, (row + 1) * V])
                    c_hw[c.keys[L][lo:hi] % V] = c.counts[L][lo:hi]
                    c_h = totals[L][row]
            p = (c_hw + k) / (c_h + k * (V - 1))
        p[BOS_ID] = 0.0
        return p

    # ------------------------------------------------------------------------------------- sample

    def sample(self, num_sentences: int = 1, seed: int = 0, max_length: int = 100,
               prefix: Sequence[str] = (), logits_processor=None, **sampling) -> list[list[str]]:
        """Sentences drawn word by word from ``p(w | history)`` with ``numpy.random.default_rng(seed)``.

        Each ends with ``</s>`` — unless it reaches ``max_length`` words first, where it is cut.
        ``prefix`` (words) is the start of every sentence; it is not repeated in the output.

        ``sampling``: ``temperature``, ``top_k``, ``top_p``, ``min_p``, ``typical_p``, ``epsilon_cutoff``,
        ``eta_cutoff`` — applied by ``transformers``' own warpers to ``log p`` as ``generate`` applies them
        (:func:`harness.generation.sampling.sampling_warpers`); ``logits_processor``: more processors in the
        ``transformers`` interface, after those (``input_ids``: ``<s>``, the prefix and the words so far, as
        vocabulary ids). Without either, the draw is from ``p`` itself.
        """
        self._require_fitted()
        processors = None
        if sampling or logits_processor:
            from harness.generation.sampling import sampling_warpers

            processors = sampling_warpers(sampling)
            processors.extend(logits_processor or [])
        rng = np.random.default_rng(seed)
        words = self.vocab.words
        out = []
        for _ in range(num_sentences):
            hist = [BOS_ID] + [self.vocab.id(w) for w in prefix]
            sent: list[str] = []
            while len(sent) < max_length:
                p = self._distribution_ids(hist[max(0, len(hist) - (self.order - 1)):] if self.order > 1 else [])
                if processors:
                    p = _warp(p, hist, processors)
                cdf = np.cumsum(p)
                w = int(np.searchsorted(cdf, rng.random() * cdf[-1], side="right"))
                w = min(w, len(cdf) - 1)
                sent.append(words[w])
                if w == EOS_ID:
                    break
                hist.append(w)
            out.append(sent)
        return out

    # ------------------------------------------------------------------------------------- ARPA

    def backoff_tables(self) -> BackoffTables:
        """The model in ARPA's backoff form (add-k: only for order 1, see :meth:`to_arpa`)."""
        self._require_fitted()
        if self.tables is not None:
            return self.tables
        if self.order > 1:
            raise HarnessError(
                f"{self.smoothing} with order {self.order} has no ARPA (backoff) form: after a seen history every "
                f"unseen word gets the same k/(c(h)+k|V|), which no backoff weight times a lower-order "
                f"distribution reproduces. Export kneser_ney, modified_kneser_ney, mle, or order 1")
        V = len(self.vocab)
        return BackoffTables(V, [np.arange(V, dtype=np.int64)], [sm.additive_unigrams(self._counts, self.k)], [np.zeros(V)])

    def to_arpa(self, path: str | Path) -> Path:
        """Write the model as an ARPA file (seen n-grams with their full interpolated probabilities,
        histories with their backoff weights γ(h))."""
        return write_arpa(path, self.vocab.words if self.vocab else [], self.backoff_tables())

    @classmethod
    def from_arpa(cls, path: str | Path, vocab: Iterable[str] | None = None) -> "NgramLM":
        """A model that scores like the one that wrote ``path``. With ``vocab`` (the words a task or
        tokenizer expects), a vocabulary that differs from the file's is a :class:`HarnessError`."""
        words, tables = read_arpa(path)
        if vocab is not None:
            check_vocabulary(words, vocab, f"ARPA file {path}")
        model = cls(order=tables.order, smoothing="kneser_ney")
        model.smoothing = "arpa"
        model.vocab = Vocabulary(words)
        model.tables = tables
        return model

    # ------------------------------------------------------------------------------------- save / load

    def save(self, directory: str | Path) -> Path:
        """``ngram.json`` (settings) + ``model.arpa`` (backoff-form models) or ``counts.npz`` (add-k)."""
        self._require_fitted()
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        if self.tables is not None or self.order == 1:
            self.to_arpa(directory / "model.arpa")
            fmt = "arpa"
        else:
            arrays = {"words": np.array(self.vocab.words)}
            for m, (kk, cc) in enumerate(zip(self._counts.keys, self._counts.counts), start=1):
                arrays[f"keys_{m}"], arrays[f"counts_{m}"] = kk, cc
            tmp = directory / ".tmp-counts.npz"
            np.savez_compressed(tmp, **arrays)
            tmp.replace(directory / "counts.npz")
            fmt = "npz"
        info = {"order": self.order, "smoothing": self.smoothing, "k": self.k, "discounts": self.discounts,
                "unk_threshold": self.unk_threshold, "eos": self.eos, "format": fmt,
                "vocab_size": len(self.vocab), "num_ngrams": self.num_ngrams, "train_tokens": self.train_tokens}
        (directory / "ngram.json").write_text(json.dumps(info, indent=2) + "\n")
        return directory

    @classmethod
    def load(cls, path: str | Path, vocab: Iterable[str] | None = None) -> "NgramLM":
        """A model saved with :meth:`save` (a folder), or any ARPA file."""
        path = Path(path)
        if path.is_file():
            return cls.from_arpa(path, vocab)
        info_path = path / "ngram.json"
        if not info_path.is_file():
            raise DataError(f"{path}: neither an ARPA file nor a saved n-gram model (no ngram.json)")
        info = json.loads(info_path.read_text())
        if info.get("format") == "arpa":
            model = cls.from_arpa(path / "model.arpa", vocab)
        else:
            data = np.load(path / "counts.npz", allow_pickle=False)
            words = [str(w) for w in data["words"]]
            if vocab is not None:
                check_vocabulary(words, vocab, f"saved model {path}")
            model = cls(order=int(info["order"]), smoothing=info["smoothing"], k=float(info["k"]))
            model.vocab = Vocabulary(words)
            N = int(info["order"])
            keys = [data[f"keys_{m}"] for m in range(1, N + 1)]
            counts = [data[f"counts_{m}"] for m in range(1, N + 1)]
            model._counts = NgramCounts(len(words), keys, counts, [None] * N, [None] * N)
            model._totals = sm.history_totals(model._counts)
        model.smoothing = info.get("smoothing", model.smoothing)
        model.eos = bool(info.get("eos", True))
        model.unk_threshold = int(info.get("unk_threshold", 1))
        model.train_tokens = int(info.get("train_tokens", 0))
        disc = info.get("discounts")
        model.discounts = [tuple(d) for d in disc] if disc else None
        return model

    def __repr__(self) -> str:
        state = f"{len(self.vocab)} words, n-grams {self.num_ngrams}" if self.fitted else "not fitted"
        return f"NgramLM(order={self.order}, smoothing={self.smoothing!r}, {state})"


def _warp(p: np.ndarray, history: list[int], processors) -> np.ndarray:
    """``p`` (V,) reshaped by logits processors: log p as the scores of a batch of one, softmax back."""
    import torch

    with np.errstate(divide="ignore"):
        scores = torch.from_numpy(np.log(p)).float().unsqueeze(0)  # (1, V); p = 0 (<s>) → −inf
    scores = processors(torch.tensor([history], dtype=torch.long), scores)
    return torch.softmax(scores, -1).squeeze(0).double().numpy()


def check_vocabulary(model_words: Sequence[str], expected: Iterable[str], what: str) -> None:
    """Raise :class:`HarnessError` when ``expected`` (a task's or tokenizer's words; the special
    symbols may be left out) and the model's vocabulary differ."""
    have, want = set(model_words), set(expected) | {"<unk>", BOS, EOS}
    if have != want:
        only_model = sorted(have - want)
        only_expected = sorted(want - have)
        raise HarnessError(
            f"vocabulary mismatch: {what} has {len(have)} words, the expected vocabulary {len(want)}; "
            f"{len(only_model)} only in the model (e.g. {only_model[:5]}), "
            f"{len(only_expected)} only in the expected vocabulary (e.g. {only_expected[:5]})"
        )
