"""The ARPA back-off format, read and written, so KenLM, SRILM and others can use our models (and we theirs).

Layout::

    \\data\\
    ngram 1=<number of unigrams>
    ngram 2=<number of bigrams>
    ...

    \\1-grams:
    <log10 p>\\t<w1>\\t<log10 backoff>
    ...

    \\2-grams:
    <log10 p>\\t<w1> <w2>[\\t<log10 backoff>]
    ...

    \\end\\

The probability of a word after a history is read in back-off form::

    p(w | h) = p*(h w)                  if "h w" is listed
             = bow(h) · p(w | h')       otherwise (bow(h) = 1 where h is not listed)

A probability or weight of exactly 0 is written as ``-99`` (KenLM's and SRILM's convention for
``<s>``, which is never predicted) and every value ``<= -99`` is read back as 0 (log10 ``-inf``).
Values are written with 10 significant digits, so a model read back scores the same to ~1e-9 in
log10. An n-gram whose prefix (its first m-1 words) is not listed in the (m-1)-grams is refused:
we store n-grams through their prefix (see :mod:`~harness.models.ngram.counts`), and KenLM and
SRILM never write such files.
"""

from __future__ import annotations

import math
from collections import Counter
from itertools import repeat
from operator import methodcaller
from pathlib import Path

import numpy as np

from harness.errors import DataError, where
from harness.models.ngram.counts import lookup
from harness.models.ngram.smoothing import BackoffTables
from harness.models.ngram.vocab import SPECIALS

LOG_ZERO = -99.0


def _fmt(values: np.ndarray) -> list[str]:
    v = np.where(np.isneginf(values), LOG_ZERO, values)
    return [f"{x:.10g}" for x in v.tolist()]


def ngram_strings(words: list[str], tables: BackoffTables) -> list[np.ndarray]:
    """Per order, the space-joined words of every n-gram (object arrays in table order)."""
    V = tables.vocab_size
    w = np.array(words, dtype=object)
    out = [w]
    for m in range(2, tables.order + 1):
        keys = tables.keys[m - 1]
        out.append(out[-1][keys // V] + " " + w[keys % V])
    return out


def write_arpa(path: str | Path, words: list[str], tables: BackoffTables) -> Path:
    """Write ``tables`` (with the vocabulary ``words``, ids in order) as an ARPA file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    V, N = tables.vocab_size, tables.order
    strings = ngram_strings(words, tables)
    tmp = path.with_name(f".tmp-{path.name}")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("\\data\\\n")
        for m in range(1, N + 1):
            f.write(f"ngram {m}={len(tables.keys[m - 1])}\n")
        for m in range(1, N + 1):
            f.write(f"\n\\{m}-grams:\n")
            probs = _fmt(tables.log10p[m - 1])
            if m < N:
                # a backoff weight for every n-gram that is a history of some (m+1)-gram, or that
                # carries a weight other than 1
                bow = tables.log10bow[m - 1]
                is_history = np.bincount(tables.keys[m] // V, minlength=len(bow)) > 0
                show = is_history | (bow != 0)
                bows = _fmt(bow)
                lines = [f"{p}\t{s}\t{b}" if k else f"{p}\t{s}"
                         for p, s, b, k in zip(probs, strings[m - 1].tolist(), bows, show.tolist())]
            else:
                lines = [f"{p}\t{s}" for p, s in zip(probs, strings[m - 1].tolist())]
            if lines:
                f.write("\n".join(lines))
                f.write("\n")
        f.write("\n\\end\\\n")
    tmp.replace(path)
    return path


def _parse_section(block: list[str], m: int, n: int, path: Path, first_line: int):
    """(words, log10p, log10bow) of one ``\\m-grams:`` section of n lines; ``words`` is the
    (n·m,) flat list of the n-grams' words.

    Tab-separated lines (``p<TAB>w1 … wm[<TAB>bow]``, as KenLM and SRILM write them) are parsed in
    bulk — one split of the whole section, no per-line lists; anything else line by line.
    """
    tabs = np.fromiter(map(methodcaller("count", "\t"), block), dtype=np.int64, count=n)
    if n and tabs.min() >= 1 and tabs.max() <= 2:
        fields = "\t".join(block).split("\t")  # line j owns tabs[j] + 1 consecutive fields
        starts = np.zeros(n, dtype=np.int64)
        np.cumsum(tabs[:-1] + 1, out=starts[1:])
        prob_text = [fields[k] for k in starts.tolist()]
        words = " ".join([fields[k] for k in (starts + 1).tolist()]).split()
        has_bow = tabs == 2
        bow_text = [fields[k] for k in (starts[has_bow] + 2).tolist()]
        if len(words) != n * m:
            words = None  # some line has the wrong number of words: find it below
    else:
        words, has_bow = None, None
    if words is None:
        split = [line.split() for line in block]
        for j, f in enumerate(split):
            if len(f) not in (m + 1, m + 2):
                if not f or f[0].startswith("\\"):
                    raise DataError(f"{where(path, first_line + j)}: the {m}-grams section has {j} entries, "
                                    f"but the header says ngram {m}={n}")
                raise DataError(f"{where(path, first_line + j)}: expected log10 p, {m} word(s) and an optional "
                                f"backoff, got {len(f)} fields")
        prob_text = [f[0] for f in split]
        words = [w for f in split for w in f[1:m + 1]]
        has_bow = np.array([len(f) == m + 2 for f in split], dtype=bool)
        bow_text = [f[m + 1] for f in split if len(f) == m + 2]
    try:
        probs = np.array(prob_text, dtype=np.float64)
        bows = np.zeros(n)
        bows[has_bow] = np.array(bow_text, dtype=np.float64)
        if np.isnan(probs).any() or (probs > 1e-6).any() or np.isnan(bows).any():
            raise ValueError
    except ValueError:  # find the line
        for j, line in enumerate(block):
            f = line.split()
            _value(f[0], path, first_line + j, True)
            if len(f) == m + 2:
                _value(f[m + 1], path, first_line + j, False)
        raise
    probs = np.minimum(probs, 0.0)
    probs[probs <= LOG_ZERO] = -np.inf
    bows[bows <= LOG_ZERO] = -np.inf
    return words, probs, bows


def _value(text: str, path: Path, line: int, probability: bool) -> float:
    try:
        v = float(text)
    except ValueError:
        raise DataError(f"{where(path, line)}: expected a log10 number, got {text!r}") from None
    if math.isnan(v) or (probability and v > 1e-6):
        raise DataError(f"{where(path, line)}: log10 probability {text} is not <= 0")
    if v <= LOG_ZERO:
        return -math.inf
    return min(v, 0.0) if probability else v


def read_arpa(path: str | Path) -> tuple[list[str], BackoffTables]:
    """(vocabulary with ``<unk>``, ``<s>``, ``</s>`` first, tables) of an ARPA file.

    Every problem is a :class:`~harness.errors.DataError` naming ``file:line``: a missing header,
    section or ``\\end\\``, a section whose size differs from its ``ngram m=`` count, a line with the
    wrong number of fields, an n-gram with an unlisted word or prefix, a duplicate, a missing
    ``<s>`` / ``</s>`` / ``<unk>``.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"ARPA file not found: {path}")
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().split("\n")
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    i = 0
    while i < len(lines) and lines[i].strip() != "\\data\\":
        i += 1
    if i == len(lines):
        raise DataError(f"{path}: not an ARPA file (no \\data\\ line)")
    i += 1
    sizes: dict[int, int] = {}
    while i < len(lines) and lines[i].strip().startswith("ngram "):
        text = lines[i].strip()[len("ngram "):]
        try:
            m, n = (int(x) for x in text.split("="))
        except ValueError:
            raise DataError(f"{where(path, i + 1)}: expected 'ngram <order>=<count>', got {lines[i].strip()!r}") from None
        if m != len(sizes) + 1 or n < 0:
            raise DataError(f"{where(path, i + 1)}: expected the count of {len(sizes) + 1}-grams, got {lines[i].strip()!r}")
        sizes[m] = n
        i += 1
    if not sizes:
        raise DataError(f"{where(path, i + 1)}: no 'ngram 1=<count>' line after \\data\\")
    N = len(sizes)

    sections: list[tuple[list[str], np.ndarray, np.ndarray, int]] = []  # (flat words, log10p, log10bow, first line)
    for m in range(1, N + 1):
        while i < len(lines) and not lines[i].strip():
            i += 1
        header = f"\\{m}-grams:"
        if i == len(lines) or lines[i].strip() != header:
            got = lines[i].strip() if i < len(lines) else "end of file"
            raise DataError(f"{where(path, min(i + 1, len(lines)))}: expected {header}, got {got!r}")
        i += 1
        start = i
        n = sizes[m]
        block = lines[start:start + n]
        if len(block) < n:
            raise DataError(f"{where(path, start + len(block))}: the {m}-grams section has {len(block)} entries, "
                            f"but the header says ngram {m}={n}")
        words, probs, bows = _parse_section(block, m, n, path, start + 1)
        i = start + n
        if i < len(lines) and lines[i].strip() and not lines[i].strip().startswith("\\"):
            raise DataError(f"{where(path, i + 1)}: the {m}-grams section has more entries than ngram {m}={n}")
        sections.append((words, probs, bows, start + 1))
    while i < len(lines) and not lines[i].strip():
        i += 1
    if i == len(lines) or lines[i].strip() != "\\end\\":
        raise DataError(f"{where(path, min(i + 1, len(lines)))}: expected \\end\\ after the {N}-grams section")

    # vocabulary: the unigrams, specials first
    unigrams, p1, b1, line1 = sections[0]
    if len(set(unigrams)) != len(unigrams):
        dupe = next(w for w, c in Counter(unigrams).items() if c > 1)
        raise DataError(f"{where(path, line1 + unigrams.index(dupe))}: the 1-grams section lists {dupe!r} twice")
    missing = [w for w in SPECIALS if w not in set(unigrams)]
    if missing:
        raise DataError(f"{path}: the unigrams lack {', '.join(missing)}; a model must list <s>, </s> and <unk> "
                        f"(SRILM: train with -unk)")
    words = list(SPECIALS) + [w for w in unigrams if w not in SPECIALS]
    index = {w: k for k, w in enumerate(words)}
    V = len(words)
    order = np.array([index[w] for w in unigrams], dtype=np.int64)
    keys = [np.arange(V, dtype=np.int64)]
    log10p = [np.empty(V)]
    log10bow = [np.zeros(V)]
    log10p[0][order] = p1
    log10bow[0][order] = b1
    for m in range(2, N + 1):
        flat, probs, bows, first_line = sections[m - 1]
        n = len(probs)
        ids = np.fromiter(map(index.get, flat, repeat(-1)), dtype=np.int64, count=len(flat)).reshape(n, m)
        bad = np.flatnonzero((ids < 0).any(axis=1))
        if len(bad):
            j = int(bad[0])
            raise DataError(f"{where(path, first_line + j)}: {m}-gram {' '.join(flat[j * m:(j + 1) * m])!r} has a word that is not a unigram")
        row = ids[:, 0]
        for k in range(1, m - 1):  # the prefix w1 … w_{m-1}, one order at a time
            row = lookup(keys[k], row * V + ids[:, k])
        missing_prefix = np.flatnonzero(row < 0)
        if len(missing_prefix):
            j = int(missing_prefix[0])
            raise DataError(f"{where(path, first_line + j)}: {m}-gram {' '.join(flat[j * m:(j + 1) * m])!r}: its prefix is not listed "
                            f"in the {m - 1}-grams section")
        q = row * V + ids[:, m - 1]
        perm = np.argsort(q, kind="stable")
        q = q[perm]
        dup = np.flatnonzero(q[1:] == q[:-1])
        if len(dup):
            j = int(perm[dup[0] + 1])
            raise DataError(f"{where(path, first_line + j)}: {m}-gram {' '.join(flat[j * m:(j + 1) * m])!r} is listed twice")
        keys.append(q)
        log10p.append(probs[perm])
        log10bow.append(bows[perm])
    log10bow[-1] = np.zeros(len(keys[-1]))
    return words, BackoffTables(V, keys, log10p, log10bow)
