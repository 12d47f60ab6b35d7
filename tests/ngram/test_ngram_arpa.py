"""ARPA export and import: valid structure, backoff form equal to the interpolated model, round trips,
and one DataError naming file:line per malformed file."""

from __future__ import annotations

import math
import random
import re
import warnings

import numpy as np
import pytest

from harness.errors import DataError, HarnessError
from harness.models.ngram import NgramLM, NgramWarning, read_arpa

TRAIN = ["the cat sat on the mat", "the dog sat on the log", "a cat saw a dog", "the mat was red",
         "a dog sat", "the cat ran", "red red red"]
TEST = ["the cat sat on the log", "a zebra saw the mat", "dog", ""]


def fit(order, smoothing, corpus=TRAIN) -> NgramLM:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NgramWarning)
        return NgramLM(order, smoothing).fit(corpus)


def parse(path) -> tuple[dict[int, int], dict[int, dict[tuple, tuple[float, float | None]]]]:
    """An independent, strict reading of an ARPA file: header counts and, per order,
    {ngram: (log10 p, log10 backoff or None)}."""
    lines = path.read_text().split("\n")
    assert lines[0] == "\\data\\"
    counts, i = {}, 1
    while lines[i].startswith("ngram "):
        m, n = map(int, lines[i][6:].split("="))
        counts[m] = n
        i += 1
    assert list(counts) == list(range(1, len(counts) + 1))
    sections = {}
    for m in counts:
        assert lines[i] == "", f"blank line before section {m}"
        assert lines[i + 1] == f"\\{m}-grams:"
        i += 2
        entries = {}
        while lines[i]:
            fields = lines[i].split("\t")
            assert len(fields) in (2, 3), lines[i]
            words = tuple(fields[1].split(" "))
            assert len(words) == m, lines[i]
            assert words not in entries
            entries[words] = (float(fields[0]), float(fields[2]) if len(fields) == 3 else None)
            i += 1
        assert len(entries) == counts[m], f"section {m} has {len(entries)} entries, header says {counts[m]}"
        sections[m] = entries
    assert lines[i:] == ["", "\\end\\", ""]
    return counts, sections


def backoff_prob(sections, N, w, h) -> float:
    """p(w | h) by the ARPA back-off rule, from the parsed file alone."""
    h = tuple(h)[max(0, len(h) - (N - 1)):] if N > 1 else ()
    g = h + (w,)
    if g in sections[len(g)]:
        lp = sections[len(g)][g][0]
        return 0.0 if lp <= -99 else 10 ** lp
    bow = sections[len(h)].get(h, (0, None))[1] if h else None
    weight = 1.0 if bow is None else (0.0 if bow <= -99 else 10 ** bow)
    return weight * backoff_prob(sections, N, w, h[1:])


@pytest.mark.parametrize("order", [1, 2, 3, 4])
@pytest.mark.parametrize("smoothing", ["kneser_ney", "modified_kneser_ney", "mle"])
def test_arpa_structure_and_backoff_form(tmp_path, order, smoothing):
    lm = fit(order, smoothing)
    path = lm.to_arpa(tmp_path / "lm.arpa")
    counts, sections = parse(path)
    assert [counts[m] for m in sorted(counts)] == lm.num_ngrams
    assert sections[1][("<s>",)][0] == -99  # never predicted
    for m in range(2, order + 1):
        for g in sections[m]:
            assert g[:-1] in sections[m - 1] and g[1:] in sections[m - 1], g  # prefix and suffix listed
            assert sections[m - 1][g[:-1]][1] is not None, f"history {g[:-1]} has no backoff weight"
    assert all(p <= 0 for s in sections.values() for p, _ in s.values())
    # p(w | h) from the file alone, for every history the training text has: the model's numbers,
    # and they sum to one over the predicted vocabulary
    words = [w for w in lm.vocab.words if w != "<s>"]
    for s in TRAIN:
        toks = ["<s>", *s.split(), "</s>"]
        for i in range(1, len(toks)):
            h = toks[max(0, i - order + 1):i]
            p = np.array([backoff_prob(sections, order, w, h) for w in words])
            assert p.sum() == pytest.approx(1.0, abs=1e-8)
            with np.errstate(divide="ignore"):  # MLE: zeros
                np.testing.assert_allclose(np.log10(p), lm.next_log10([h] * len(words), words), atol=1e-8)


@pytest.mark.parametrize("order", [1, 2, 3, 5])
@pytest.mark.parametrize("smoothing", ["kneser_ney", "modified_kneser_ney", "mle"])
def test_round_trip_scores_identically(tmp_path, order, smoothing):
    rng = random.Random(order)
    corpus = TRAIN + [" ".join(rng.choices("abcdefgh", k=rng.randint(1, 9))) for _ in range(50)]
    lm = fit(order, smoothing, corpus)
    back = NgramLM.from_arpa(lm.to_arpa(tmp_path / "lm.arpa"))
    assert back.vocab == lm.vocab and back.num_ngrams == lm.num_ngrams
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NgramWarning)  # MLE: zeros on TEST, -99 in the file, 0 again
        a, b = lm.score(TEST + corpus[-10:]).log10, back.score(TEST + corpus[-10:]).log10
    assert np.array_equal(np.isinf(a), np.isinf(b))
    np.testing.assert_allclose(a[np.isfinite(a)], b[np.isfinite(b)], rtol=0, atol=1e-6)
    assert np.abs(a[np.isfinite(a)] - b[np.isfinite(b)]).max(initial=0) < 1e-8  # 10 significant digits
    assert back.sample(5, seed=3) == lm.sample(5, seed=3)


def test_additive_models_order_one_to_arpa_and_npz_otherwise(tmp_path):
    lm = fit(1, "laplace")
    back = NgramLM.from_arpa(lm.to_arpa(tmp_path / "uni.arpa"))
    np.testing.assert_allclose(back.score(TEST).log10, lm.score(TEST).log10, atol=1e-9)
    lm2 = fit(2, "add_k")
    with pytest.raises(HarnessError, match="no ARPA"):
        lm2.to_arpa(tmp_path / "bi.arpa")
    saved = lm2.save(tmp_path / "model")
    assert (saved / "counts.npz").is_file() and not (saved / "model.arpa").exists()
    again = NgramLM.load(saved)
    assert again.smoothing == "add_k" and again.k == lm2.k
    np.testing.assert_array_equal(again.score(TEST).log10, lm2.score(TEST).log10)


def test_save_and_load_a_kn_model_folder(tmp_path):
    lm = fit(3, "modified_kneser_ney")
    again = NgramLM.load(lm.save(tmp_path / "model"))
    assert again.discounts == lm.discounts and again.smoothing == "modified_kneser_ney"
    np.testing.assert_allclose(again.score(TEST).log10, lm.score(TEST).log10, atol=1e-8)


def test_vocabulary_mismatch_is_one_clear_error(tmp_path):
    lm = fit(2, "kneser_ney")
    path = lm.to_arpa(tmp_path / "lm.arpa")
    NgramLM.from_arpa(path, vocab=lm.vocab.words[3:])  # same words: fine (specials optional)
    with pytest.raises(HarnessError, match=r"vocabulary mismatch: .* 1 only in the model \(e\.g\. \['was'\]\), "
                                           r"1 only in the expected vocabulary \(e\.g\. \['zebra'\]\)"):
        NgramLM.from_arpa(path, vocab=[w for w in lm.vocab.words if w != "was"] + ["zebra"])


KENLM_STYLE = """\\data\\
ngram 1=5
ngram 2=3

\\1-grams:
-1.0 <unk> 0
0 <s> -0.30103
-0.5228787 </s> 0
-0.39794 a -0.1
-1.0 b

\\2-grams:
-0.30103 <s> a
-0.1249387 a </s>
-0.69897 a b

\\end\\
"""


def test_reads_space_separated_kenlm_style_files(tmp_path):
    path = tmp_path / "k.arpa"
    path.write_text(KENLM_STYLE)
    lm = NgramLM.from_arpa(path)
    assert lm.order == 2 and lm.num_ngrams == [5, 3]
    # p(a | <s>) listed; p(b | <s>) = bow(<s>) · p(b); p(zzz | a) = bow(a) · p(<unk>)
    assert lm.log10_prob("a", ["<s>"]) == pytest.approx(-0.30103)
    assert lm.log10_prob("b", ["<s>"]) == pytest.approx(-0.30103 - 1.0)
    assert lm.log10_prob("zzz", ["a"]) == pytest.approx(-0.1 - 1.0)
    assert lm.distribution(["<s>"])[1] == 0.0  # <s> is never predicted, whatever the file says


@pytest.mark.parametrize("edit, match", [
    (lambda t: t.replace("ngram 2=3", "ngram 2=4"), r"k\.arpa:\d+: the 2-grams section has 3 entries, but the header says ngram 2=4"),
    (lambda t: t.replace("ngram 2=3", "ngram 2=2"), r"k\.arpa:\d+: the 2-grams section has more entries"),
    (lambda t: t.replace("-1.0 <unk> 0\n", "").replace("ngram 1=5", "ngram 1=4"), "lack <unk>"),
    (lambda t: t.replace("ngram 2=3", "ngram 2=3\nngram 3=1").replace("\n\n\\end", "\n\n\\3-grams:\n-0.1 b a b\n\n\\end"),
     r"k\.arpa:19: 3-gram 'b a b': its prefix is not listed in the 2-grams section"),
    (lambda t: t.replace("-0.69897 a b", "-0.69897 a c"), r"k\.arpa:\d+: 2-gram 'a c' has a word that is not a unigram"),
    (lambda t: t.replace("-0.69897 a b", "0.5 a b"), r"k\.arpa:15: log10 probability 0.5 is not <= 0"),
    (lambda t: t.replace("-0.69897 a b", "-0.69897 a b c d"), r"k\.arpa:15: expected log10 p, 2 word\(s\) and an optional backoff, got 5 fields"),
    (lambda t: t.replace("\\end\\", ""), r"expected \\end\\"),
    (lambda t: t.replace("\\data\\", "data"), "not an ARPA file"),
    (lambda t: t.replace("-0.69897 a b", "-0.30103 <s> a"), r"2-gram '<s> a' is listed twice"),
])
def test_malformed_files_name_the_line(tmp_path, edit, match):
    path = tmp_path / "k.arpa"
    path.write_text(edit(KENLM_STYLE))
    with pytest.raises(DataError, match=match):
        read_arpa(path)


def test_missing_file():
    with pytest.raises(DataError, match="not found"):
        NgramLM.from_arpa("/nonexistent/lm.arpa")
    with pytest.raises(DataError, match="neither an ARPA file nor a saved n-gram model"):
        NgramLM.load("/tmp")
