"""Vectorised n-gram counting and lookup over sorted int64 keys.

Every order m keeps one sorted array of keys. An n-gram ``w1 … wm`` is encoded through its prefix::

    key_1(w)          = id(w)                                  (the unigram table is the vocabulary)
    key_m(w1 … wm)    = index_{m-1}(w1 … w_{m-1}) · |V| + id(wm)

where ``index_{m-1}`` is the row of the prefix in the (sorted) order m-1 table. Keys stay below
``#(m-1)-grams · |V|`` — about 1e10 for PTB 5-grams, far from 2^63 — so any order fits in an int64
without hashing or collisions, and sorting the keys sorts the n-grams lexicographically by id. The
continuations of a context ``h`` (the row ``c`` of table m-1) are the contiguous rows of table m with
keys in ``[c·|V|, (c+1)·|V|)``.

Counting is one ``argsort`` per order over the token stream; lookup is one ``np.searchsorted``
per order over all queried positions at once (the m-gram ending at token t extends the (m-1)-gram
ending at t-1, so a whole stream needs N lookups, not N per token).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def unique_counts(q: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``np.unique(q, return_index, return_inverse, return_counts)`` with one unstable argsort.

    Returns (sorted unique keys, one position of each key in ``q``, inverse, counts).
    """
    perm = np.argsort(q)  # quicksort: any occurrence serves as the representative
    s = q[perm]
    new = np.empty(len(s), dtype=bool)
    new[:1] = True
    np.not_equal(s[1:], s[:-1], out=new[1:])
    starts = np.flatnonzero(new)
    inverse = np.empty(len(s), dtype=np.int64)
    inverse[perm] = np.cumsum(new) - 1
    counts = np.diff(np.append(starts, len(s)))
    return s[starts], perm[starts], inverse, counts


def lookup(keys: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Row of each query key in the sorted ``keys`` (-1 where absent; queries < 0 are absent)."""
    if len(keys) == 0:
        return np.full(len(q), -1, dtype=np.int64)
    at = np.searchsorted(keys, q)
    np.minimum(at, len(keys) - 1, out=at)
    found = (keys[at] == q) & (q >= 0)
    return np.where(found, at, -1)


def stream_indices(keys: list[np.ndarray], vocab_size: int, ids: np.ndarray, pos: np.ndarray) -> list[np.ndarray]:
    """``idx[m-1][t]``: row of the m-gram ending at token t in table m, or -1 (absent, or crossing
    the sentence start), for m = 1 … len(keys)."""
    idx = [ids.astype(np.int64, copy=True)]  # (T,) every id is a unigram row
    for m in range(2, len(keys) + 1):
        prev = np.full(len(ids), -1, dtype=np.int64)
        prev[1:] = idx[-1][:-1]  # (T,) the (m-1)-gram ending at t-1
        ok = (pos >= m - 1) & (prev >= 0)
        q = np.where(ok, prev * vocab_size + ids, -1)
        idx.append(lookup(keys[m - 1], q))
    return idx


def context_indices(idx: list[np.ndarray], pos: np.ndarray) -> list[np.ndarray]:
    """``ctx[j-1][t]``: row of the history of length j before token t (the j-gram ending at t-1),
    -1 where that history would reach before the start of t's sentence (``pos[t] < j``)."""
    out = []
    for j, a in enumerate(idx, start=1):
        c = np.full(len(a), -1, dtype=np.int64)
        c[1:] = a[:-1]
        c[pos < j] = -1
        out.append(c)
    return out


@dataclass
class NgramCounts:
    """Raw counts of every n-gram of orders 1 … N seen in a token stream.

    Per order m (list index m-1): ``keys`` (sorted, see the module docstring), ``counts`` (raw
    occurrence counts; for m = 1 indexed by word id, ``<s>`` counted 0 as it is never predicted),
    ``suffix`` (row in table m-1 of ``w2 … wm``; None for m = 1) and ``first`` (id of ``w1``).
    """

    vocab_size: int
    keys: list[np.ndarray]
    counts: list[np.ndarray]
    suffix: list[np.ndarray | None]
    first: list[np.ndarray]

    @property
    def order(self) -> int:
        return len(self.keys)

    def context(self, m: int) -> np.ndarray:
        """Row in table m-1 of the context ``w1 … w_{m-1}`` of every m-gram (m ≥ 2)."""
        return self.keys[m - 1] // self.vocab_size

    def last(self, m: int) -> np.ndarray:
        return self.keys[m - 1] % self.vocab_size

    @classmethod
    def from_stream(cls, ids: np.ndarray, pos: np.ndarray, order: int, vocab_size: int) -> "NgramCounts":
        V = vocab_size
        predicted = pos > 0
        keys = [np.arange(V, dtype=np.int64)]
        counts = [np.bincount(ids[predicted], minlength=V).astype(np.int64)]
        suffix: list[np.ndarray | None] = [None]
        first = [np.arange(V, dtype=np.int64)]
        idx_prev = ids.astype(np.int64)  # (T,) row of the 1-gram ending at t (every token, <s> too)
        for m in range(2, order + 1):
            t = np.flatnonzero(pos >= m - 1)  # positions where an m-gram ends inside its sentence
            q = idx_prev[t - 1] * V + ids[t]  # (n,) prefix row · V + last word
            uniq, rep, inverse, cnt = unique_counts(q)
            idx = np.full(len(ids), -1, dtype=np.int64)
            idx[t] = inverse
            keys.append(uniq)
            counts.append(cnt.astype(np.int64))
            suffix.append(idx_prev[t[rep]])  # the (m-1)-gram ending at the same token: w2 … wm
            first.append(first[-1][uniq // V])
            idx_prev = idx
        return cls(V, keys, counts, suffix, first)
