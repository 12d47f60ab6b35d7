"""``harness/metrics/sacrebleu`` agrees with sacreBLEU's own command line; ``harness/metrics/rouge`` with
rouge-score's ``RougeScorer``; ROUGE-W (``harness.metrics.rouge_w``) with hand computations from Lin (2004) and a
brute-force search over all alignments."""

from __future__ import annotations

import json
import math
import os
import random
import re
import subprocess
import sys

# Set before ``evaluate`` is imported: its config reads the variable once, at import time.
os.environ["HF_EVALUATE_OFFLINE"] = "1"
os.environ["HF_HUB_OFFLINE"] = "1"

import pytest
from rouge_score import rouge_scorer
from rouge_score import tokenizers

from harness.metrics import available
from harness.metrics import load_metric
from harness.metrics.rouge_w import RougeWScorer
from harness.metrics.rouge_w import rouge_w
from harness.metrics.rouge_w import weighted_lcs

TOL = 1e-12

# ----------------------------------------------------------------------------------------------- data

HYPS = [
    "The cat is on the mat.",
    "There is a cat on the mat!",
    "Hello there, world.",
    "It's 3.5 km (about 2 miles) from the station.",
    "the quick brown fox jumped over the lazy dog",
    "I can't believe it's not butter",
    "Völker, hört die Signale",
    "",
]
REFS_A = [
    "The cat sat on the mat.",
    "There is a cat on the mat.",
    "Hello, world!",
    "It is 3.5 km (roughly 2 miles) from the station.",
    "The quick brown fox jumps over the lazy dog.",
    "I cannot believe it is not butter.",
    "Völker, hört die Signale!",
    "Nothing here.",
]
REFS_B = [
    "A cat sat on a mat.",
    "A cat is on the mat.",
    "Hello world",
    "The station is 3.5 kilometres away.",
    "A fast brown fox leaps over a lazy dog.",
    "Unbelievable: it is not butter.",
    "Peoples, hear the signals.",
    "Empty.",
]


@pytest.fixture(scope="module")
def bleu_metric():
    return load_metric("sacrebleu")


@pytest.fixture(scope="module")
def rouge_metric():
    return load_metric("rouge")


def test_both_load_offline(bleu_metric, rouge_metric):
    assert {"sacrebleu", "rouge"} <= set(available())


# ---------------------------------------------------------------------------------------- sacrebleu


def sacrebleu_cli(tmp_path, hyps, ref_streams, *options):
    """sacreBLEU's command line on files: {"BLEU": {...}, "chrF2": {...}} from its JSON output, 10 decimals."""
    hyp_file = tmp_path / "hyp.txt"
    hyp_file.write_text("\n".join(hyps) + "\n", encoding="utf-8")
    ref_files = []
    for k, stream in enumerate(ref_streams):
        path = tmp_path / f"ref{k}.txt"
        path.write_text("\n".join(stream) + "\n", encoding="utf-8")
        ref_files.append(str(path))
    cmd = [sys.executable, "-m", "sacrebleu", *ref_files, "-i", str(hyp_file), "-m", "bleu", "chrf",
           "--format", "json", "-w", "10", *options]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return {entry["name"]: entry for entry in json.loads(done.stdout)}


def assert_same_as_cli(got, cli, nrefs_in_signature=None):
    bleu, chrf = cli["BLEU"], cli["chrF2"]
    assert abs(got["bleu"] - bleu["score"]) <= 1e-9, (got["bleu"], bleu["score"])
    assert abs(got["chrf"] - chrf["score"]) <= 1e-9, (got["chrf"], chrf["score"])
    want_bleu_sig, want_chrf_sig = bleu["signature"], chrf["signature"]
    if nrefs_in_signature is not None:
        want_bleu_sig = re.sub(r"nrefs:\d+", f"nrefs:{nrefs_in_signature}", want_bleu_sig)
        want_chrf_sig = re.sub(r"nrefs:\d+", f"nrefs:{nrefs_in_signature}", want_chrf_sig)
    assert got["bleu_signature"] == want_bleu_sig
    assert got["chrf_signature"] == want_chrf_sig
    # "72.7/55.6/28.6/20.0 (BP = 1.000 ratio = 1.100 hyp_len = 11 ref_len = 10)"
    m = re.fullmatch(r"([\d.]+)/([\d.]+)/([\d.]+)/([\d.]+) \(BP = ([\d.]+) ratio = [\d.]+ hyp_len = (\d+) "
                     r"ref_len = (\d+)\)", bleu["verbose_score"])
    assert m, bleu["verbose_score"]
    for n in range(1, 5):
        assert f"{got[f'bleu_precision_{n}']:.1f}" == m.group(n)
    assert f"{got['bleu_bp']:.3f}" == m.group(5)
    assert got["bleu_sys_len"] == float(m.group(6)) and got["bleu_ref_len"] == float(m.group(7))
    for key, value in got.items():
        assert type(value) is (str if key.endswith("_signature") else float), key


def test_sacrebleu_single_reference_equals_command_line(bleu_metric, tmp_path):
    got = bleu_metric.compute(predictions=HYPS, references=REFS_A)
    assert_same_as_cli(got, sacrebleu_cli(tmp_path, HYPS, [REFS_A]))
    assert got["bleu_signature"].startswith("nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:")
    assert 0.0 < got["bleu"] < 100.0 and 0.0 < got["chrf"] < 100.0
    # one string per row and one-element lists are the same input
    assert bleu_metric.compute(predictions=HYPS, references=[[r] for r in REFS_A]) == got


def test_sacrebleu_two_references_equal_command_line(bleu_metric, tmp_path):
    refs = [[a, b] for a, b in zip(REFS_A, REFS_B)]
    got = bleu_metric.compute(predictions=HYPS, references=refs)
    assert_same_as_cli(got, sacrebleu_cli(tmp_path, HYPS, [REFS_A, REFS_B]))
    assert got["bleu_signature"].startswith("nrefs:2|")
    single = bleu_metric.compute(predictions=HYPS, references=REFS_A)
    assert got["bleu"] > single["bleu"]  # the second reference adds matches


@pytest.mark.parametrize("tokenize,lowercase,flags", [
    ("intl", True, ["-tok", "intl", "-lc", "--chrf-lowercase"]),
    ("char", False, ["-tok", "char"]),
    ("none", True, ["-tok", "none", "-lc", "--chrf-lowercase"]),
])
def test_sacrebleu_options_equal_command_line(bleu_metric, tmp_path, tokenize, lowercase, flags):
    refs = [[a, b] for a, b in zip(REFS_A, REFS_B)]
    got = bleu_metric.compute(predictions=HYPS, references=refs, tokenize=tokenize, lowercase=lowercase)
    assert_same_as_cli(got, sacrebleu_cli(tmp_path, HYPS, [REFS_A, REFS_B], *flags))
    assert f"tok:{tokenize}" in got["bleu_signature"]
    assert ("case:lc" if lowercase else "case:mixed") in got["chrf_signature"]


def test_sacrebleu_ragged_references(bleu_metric, tmp_path):
    """Rows with 1, 2 or 3 references. A repeated reference changes neither BLEU (max n-gram counts, closest
    length) nor chrF (best reference), so the command line, which needs the same count on every row, gets the
    short rows filled up with their first reference."""
    refs = [[a] if i % 3 == 0 else [a, b] if i % 3 == 1 else [a, b, a.lower()]
            for i, (a, b) in enumerate(zip(REFS_A, REFS_B))]
    got = bleu_metric.compute(predictions=HYPS, references=refs)
    filled = [row + [row[0]] * (3 - len(row)) for row in refs]
    streams = [[row[k] for row in filled] for k in range(3)]
    assert_same_as_cli(got, sacrebleu_cli(tmp_path, HYPS, streams), nrefs_in_signature="var")
    # mixed rows: a bare string is one reference
    mixed = [row[0] if len(row) == 1 else row for row in refs]
    assert bleu_metric.compute(predictions=HYPS, references=mixed) == got


def test_sacrebleu_metrics_option_and_incremental_adds(bleu_metric):
    only_bleu = bleu_metric.compute(predictions=HYPS, references=REFS_A, metrics=["bleu"])
    assert not any(k.startswith("chrf") for k in only_bleu)
    only_chrf = bleu_metric.compute(predictions=HYPS, references=REFS_A, metrics="chrf")
    assert set(only_chrf) == {"chrf", "chrf_signature"}
    full = bleu_metric.compute(predictions=HYPS, references=REFS_A)
    assert only_bleu["bleu"] == full["bleu"] and only_chrf["chrf"] == full["chrf"]
    bleu_metric.add_batch(predictions=HYPS[:3], references=REFS_A[:3])
    for hyp, ref in zip(HYPS[3:], REFS_A[3:]):
        bleu_metric.add(prediction=hyp, reference=ref)
    assert bleu_metric.compute() == full


def test_sacrebleu_perfect_and_disjoint(bleu_metric):
    perfect = bleu_metric.compute(predictions=REFS_A[:3], references=REFS_A[:3])
    assert perfect["bleu"] == pytest.approx(100.0) and perfect["chrf"] == pytest.approx(100.0)
    none = bleu_metric.compute(predictions=["xyz qqq"], references=["abc def"])
    assert none["bleu"] == 0.0 and none["chrf"] == 0.0


@pytest.mark.parametrize("name", ["sacrebleu", "rouge"])
def test_input_errors(name, bleu_metric, rouge_metric):
    metric = bleu_metric if name == "sacrebleu" else rouge_metric
    with pytest.raises(ValueError, match=r"3 predictions but 2 references"):
        metric.compute(predictions=["a", "b", "c"], references=["a", "b"])
    with pytest.raises(ValueError, match=r"2 predictions but 3 references"):
        metric.compute(predictions=["a", "b"], references=[["a"], ["b"], ["c"]])
    with pytest.raises(ValueError, match=r"references\[1\] is an empty list"):
        metric.compute(predictions=["a", "b", "c"], references=[["a"], [], ["c", "d"]])
    with pytest.raises(ValueError, match="empty corpus"):
        metric.compute(predictions=[], references=[])
    with pytest.raises(ValueError, match=r"references\[0\] holds None"):
        metric.compute(predictions=["a"], references=[["a", None]])
    # nothing was stored or left locked: the next call scores just its own input
    key = "bleu" if name == "sacrebleu" else "rouge1"
    assert metric.compute(predictions=["a b c d"], references=["a b c d"])[key] == pytest.approx(
        100.0 if name == "sacrebleu" else 1.0)


def test_sacrebleu_option_errors(bleu_metric):
    with pytest.raises(ValueError, match="unknown tokenize 'moses'"):
        bleu_metric.compute(predictions=["a"], references=["a"], tokenize="moses")
    with pytest.raises(ValueError, match=r"unknown metrics \['ter'\]"):
        bleu_metric.compute(predictions=["a"], references=["a"], metrics=["bleu", "ter"])


# -------------------------------------------------------------------------------------------- rouge

TYPES = ("rouge1", "rouge2", "rougeL", "rougeLsum")
WORDS = ["the", "cat", "cats", "sat", "sitting", "on", "mat", "dog", "runs", "running", "quickly", "a", "Mat",
         "mat.", "(on)", "3"]


def random_text(rng, lo=0, hi=12):
    words = [rng.choice(WORDS) for _ in range(rng.randint(lo, hi))]
    # some sentence breaks, for ROUGE-Lsum
    return " ".join(w + ("\n" if rng.random() < 0.15 else "") for w in words).replace("\n ", "\n")


def corpus(seed, n=40, refs_per_row=1):
    rng = random.Random(seed)
    preds = [random_text(rng) for _ in range(n)]
    refs = [[random_text(rng, lo=1) for _ in range(refs_per_row)] for _ in range(n)]
    return preds, refs


def mean_by_hand(preds, refs, use_stemmer):
    """Average rouge-score's own per-example numbers; several references: the best F per type, picked here."""
    scorer = rouge_scorer.RougeScorer(list(TYPES), use_stemmer=use_stemmer)
    sums = {}
    for pred, row in zip(preds, refs):
        per_ref = [scorer.score(ref, pred) for ref in row]
        for t in TYPES:
            best = per_ref[0][t]
            for s in per_ref[1:]:
                if s[t].fmeasure > best.fmeasure:
                    best = s[t]
            for key, value in ((t, best.fmeasure), (f"{t}_precision", best.precision),
                               (f"{t}_recall", best.recall)):
                sums[key] = sums.get(key, 0.0) + value
    return {k: v / len(preds) for k, v in sums.items()}


def assert_close(got, expected):
    for key, value in expected.items():
        assert type(got[key]) is float, key
        assert abs(got[key] - value) <= TOL, f"{key}: got {got[key]!r}, expected {value!r}"


@pytest.mark.parametrize("use_stemmer", [False, True])
@pytest.mark.parametrize("refs_per_row", [1, 3])
def test_rouge_equals_rouge_score(rouge_metric, use_stemmer, refs_per_row):
    preds, refs = corpus(seed=refs_per_row + 10 * use_stemmer, refs_per_row=refs_per_row)
    got = rouge_metric.compute(predictions=preds, references=refs, use_stemmer=use_stemmer)
    expected = mean_by_hand(preds, refs, use_stemmer)
    assert_close(got, expected)
    assert set(got) == set(expected) | {"rougeW", "rougeW_precision", "rougeW_recall"}
    if refs_per_row > 1:  # rouge-score's score_multi picks the same reference
        scorer = rouge_scorer.RougeScorer(list(TYPES), use_stemmer=use_stemmer)
        multi = [scorer.score_multi(row, p) for p, row in zip(preds, refs)]
        for t in TYPES:
            assert abs(got[t] - sum(s[t].fmeasure for s in multi) / len(multi)) <= TOL


def test_rouge_multi_reference_is_max(rouge_metric):
    pred = "the cat sat on the mat quickly"
    refs = ["mat quickly on cat the sat", "the dog runs", "the cat sat"]  # rouge1 prefers the 1st, the rest the 3rd
    both = rouge_metric.compute(predictions=[pred], references=[refs])
    singles = [rouge_metric.compute(predictions=[pred], references=[r]) for r in refs]
    for t in TYPES + ("rougeW",):
        best = max(range(len(refs)), key=lambda i: (singles[i][t], -i))
        assert both[t] == singles[best][t]
        assert both[f"{t}_precision"] == singles[best][f"{t}_precision"]  # the best reference's P and R
        assert both[f"{t}_recall"] == singles[best][f"{t}_recall"]
    assert len({max(range(3), key=lambda i: singles[i][t]) for t in TYPES + ("rougeW",)}) > 1  # not one winner


def test_rouge_stemming_and_lsum_newlines(rouge_metric):
    plain = rouge_metric.compute(predictions=["the cats running"], references=["a cat runs"])
    stemmed = rouge_metric.compute(predictions=["the cats running"], references=["a cat runs"], use_stemmer=True)
    assert plain["rouge1"] == 0.0 and stemmed["rouge1"] == pytest.approx(2 / 3)  # cat, run
    # Lsum: sentences are the lines; the union LCS of reference line "a b c" with lines "a b" and "c" is 3
    pred, ref = "c x\na b", "a b c\nd"
    got = rouge_metric.compute(predictions=[pred], references=[ref])
    assert got["rougeLsum_recall"] == pytest.approx(3 / 4) and got["rougeL_recall"] == pytest.approx(2 / 4)
    flat = rouge_metric.compute(predictions=[pred.replace("\n", " ")], references=[ref.replace("\n", " ")])
    assert flat["rougeLsum"] == flat["rougeL"] == got["rougeL"]


def test_rouge_types_option_and_errors(rouge_metric):
    got = rouge_metric.compute(predictions=["a b c"], references=["a b d"], rouge_types=["rougeW", "rouge3"])
    assert set(got) == {"rougeW", "rougeW_precision", "rougeW_recall", "rouge3", "rouge3_precision",
                        "rouge3_recall"}
    with pytest.raises(ValueError, match="unknown rouge_types"):
        rouge_metric.compute(predictions=["a"], references=["a"], rouge_types=["rougeS"])
    with pytest.raises(ValueError, match="alpha"):
        rouge_metric.compute(predictions=["a"], references=["a"], rouge_w_alpha=0.5, rouge_w_exact=True)


# ------------------------------------------------------------------------------------------ ROUGE-W


def f(k, alpha=1.2):
    return k ** alpha


def brute_force_wlcs(x, y, alpha=1.2):
    """Max over every alignment (increasing index pairs with equal tokens) of sum f(run), runs being maximal
    blocks consecutive in both x and y."""
    pairs = [(i, j) for i in range(len(x)) for j in range(len(y)) if x[i] == y[j]]
    best = 0.0

    def extend(chain, start):
        nonlocal best
        runs, length = [], 0
        for t, (i, j) in enumerate(chain):
            if t and (i, j) == (chain[t - 1][0] + 1, chain[t - 1][1] + 1):
                length += 1
            else:
                if length:
                    runs.append(length)
                length = 1
        if length:
            runs.append(length)
        best = max(best, sum(f(r, alpha) for r in runs))
        for idx in range(start, len(pairs)):
            i, j = pairs[idx]
            if not chain or (i > chain[-1][0] and j > chain[-1][1]):
                extend(chain + [(i, j)], idx + 1)

    extend([], 0)
    return best


def paper_dp(x, y, alpha=1.2):
    """Lin (2004), section 3.2, transcribed line by line: c-table, w-table, c(i,j) = c(i-1,j-1) + f(k+1) - f(k)."""
    m, n = len(x), len(y)
    c = [[0.0] * (n + 1) for _ in range(m + 1)]
    w = [[0] * (n + 1) for _ in range(m + 1)]
    for i in range(1, m + 1):
        for j in range(1, n + 1):
            if x[i - 1] == y[j - 1]:
                k = w[i - 1][j - 1]
                c[i][j] = c[i - 1][j - 1] + f(k + 1, alpha) - f(k, alpha)
                w[i][j] = k + 1
            elif c[i - 1][j] > c[i][j - 1]:
                c[i][j] = c[i - 1][j]
                w[i][j] = 0
            else:
                c[i][j] = c[i][j - 1]
                w[i][j] = 0
    return c[m][n]


def test_rouge_w_paper_example(rouge_metric):
    """Lin (2004) 3.2: X = A B C D E F G; Y1 = A B C D H I K and Y2 = A H B K C I D share an LCS of 4, but Y1's
    is one run: WLCS(X, Y1) = f(4), WLCS(X, Y2) = 4 f(1); m = n = 7, so R = P = F."""
    alpha = 1.2
    x, y1, y2 = "A B C D E F G", "A B C D H I K", "A H B K C I D"
    r1 = (f(4) / f(7)) ** (1 / alpha)  # = 4/7
    r2 = (4 * f(1) / f(7)) ** (1 / alpha)
    assert r1 == pytest.approx(4 / 7) and r2 == pytest.approx(0.4535431577)
    for exact in (False, True):
        scorer = RougeWScorer(exact=exact)
        for y, r in ((y1, r1), (y2, r2)):
            s = scorer.score(x, y)
            for value in s:
                assert value == pytest.approx(r, abs=TOL)
    got = rouge_metric.compute(predictions=[y1, y2], references=[x, x])
    assert got["rougeW"] == pytest.approx((r1 + r2) / 2, abs=TOL)
    assert got["rougeL"] == pytest.approx(4 / 7, abs=TOL)  # ROUGE-L cannot tell them apart
    one = rouge_metric.compute(predictions=[y1], references=[x])
    two = rouge_metric.compute(predictions=[y2], references=[x])
    assert one["rougeL"] == two["rougeL"] and one["rougeW"] > two["rougeW"]


def test_rouge_w_unequal_lengths_and_beta():
    """Reference a b c d e (m = 5), candidate a b x c d e y (n = 7): runs "a b" and "c d e"."""
    alpha = 1.2
    wlcs = f(2) + f(3)
    recall = (wlcs / f(5)) ** (1 / alpha)
    precision = (wlcs / f(7)) ** (1 / alpha)
    x, y = "a b c d e".split(), "a b x c d e y".split()
    for exact in (False, True):
        assert weighted_lcs(x, y, exact=exact) == pytest.approx(wlcs, abs=TOL)
        s = rouge_w(x, y, exact=exact)
        assert s.recall == pytest.approx(recall, abs=TOL) and s.precision == pytest.approx(precision, abs=TOL)
        assert s.fmeasure == pytest.approx(2 * precision * recall / (precision + recall), abs=TOL)
        s2 = rouge_w(x, y, beta=2.0, exact=exact)
        assert s2.fmeasure == pytest.approx(5 * recall * precision / (recall + 4 * precision), abs=TOL)
    # alpha = 2: WLCS = 4 + 9 = 13
    assert rouge_w(x, y, alpha=2.0).recall == pytest.approx(math.sqrt(13 / 25), abs=TOL)


def test_rouge_w_dp_against_brute_force():
    """200 random pairs of length <= 7 over {a, b, c}: the exact DP equals the best alignment found by brute force;
    the paper's DP equals a line-by-line transcription of its pseudo-code and never exceeds the best alignment."""
    rng = random.Random(2004)
    greedy_short = 0
    for _ in range(200):
        x = [rng.choice("abc") for _ in range(rng.randint(0, 7))]
        y = [rng.choice("abc") for _ in range(rng.randint(0, 7))]
        best = brute_force_wlcs(x, y)
        exact = weighted_lcs(x, y, exact=True)
        paper = weighted_lcs(x, y)
        assert exact == pytest.approx(best, abs=1e-9), (x, y)
        assert paper == pytest.approx(paper_dp(x, y), abs=1e-9), (x, y)
        assert paper <= best + 1e-9, (x, y)
        greedy_short += paper < best - 1e-9
        with_alpha_1 = brute_force_wlcs(x, y, alpha=1.0)  # plain LCS: both DPs are exact
        assert weighted_lcs(x, y, alpha=1.0) == weighted_lcs(x, y, alpha=1.0, exact=True) == with_alpha_1
    assert greedy_short > 0  # the paper's DP is greedy (see below); it shows up in 200 random pairs


def test_rouge_w_paper_dp_is_greedy():
    """Reference a c b, candidate c c c b a b: the run "c b" (x[1:3], y[2:4]) weighs f(2), but at the last cell
    the paper's DP extends the diagonal a-then-b path (f(1) + f(1) = 2) instead of keeping c(3, 5) = f(2)."""
    x, y = list("acb"), list("cccbab")
    assert brute_force_wlcs(x, y) == pytest.approx(f(2))
    assert weighted_lcs(x, y, exact=True) == pytest.approx(f(2), abs=TOL)
    assert weighted_lcs(x, y) == pytest.approx(2.0, abs=TOL) == paper_dp(x, y)
    assert weighted_lcs(x, y[:-1]) == pytest.approx(f(2), abs=TOL)  # one token shorter scores higher


def test_rouge_w_edge_cases(rouge_metric):
    for exact in (False, True):
        scorer = RougeWScorer(exact=exact)
        assert tuple(scorer.score("the cat sat", "")) == (0.0, 0.0, 0.0)
        assert tuple(scorer.score("", "the cat sat")) == (0.0, 0.0, 0.0)
        assert tuple(scorer.score("", "")) == (0.0, 0.0, 0.0)
        assert tuple(scorer.score("the cat", "--- !!!")) == (0.0, 0.0, 0.0)  # no [a-z0-9]: no tokens
        assert tuple(scorer.score("x y z", "a b c")) == (0.0, 0.0, 0.0)
        text = "The cat sat on the mat, and the cat sat on the mat again."
        assert tuple(scorer.score(text, text)) == (1.0, 1.0, 1.0)
        assert tuple(scorer.score(text, text.upper().replace(",", " ;"))) == (1.0, 1.0, 1.0)  # same tokens
    got = rouge_metric.compute(predictions=["", "same words here"], references=["a b", "Same words, here!"])
    assert got["rougeW"] == 0.5 and got["rougeW_precision"] == 0.5 and got["rougeW_recall"] == 0.5
    with pytest.raises(ValueError, match="alpha"):
        weighted_lcs("ab", "ab", alpha=0.5, exact=True)
    with pytest.raises(ValueError, match="alpha"):
        weighted_lcs("ab", "ab", alpha=0.0)


def test_rouge_w_uses_rouge_score_tokens(rouge_metric):
    """The tokens are rouge-score's (stemmed or not), and with alpha = 1 (f(k) = k) ROUGE-W is ROUGE-L."""
    text = "The Cats were RUNNING quickly -- 3.5 km, (roughly) on-line!"
    for stem in (False, True):
        assert RougeWScorer(use_stemmer=stem).tokenize(text) == tokenizers.DefaultTokenizer(stem).tokenize(text)
    preds, refs = corpus(seed=7, refs_per_row=2)
    for stem in (False, True):
        for exact in (False, True):
            got = rouge_metric.compute(predictions=preds, references=refs, use_stemmer=stem, rouge_w_alpha=1.0,
                                       rouge_w_exact=exact, rouge_types=["rougeL", "rougeW"])
            for suffix in ("", "_precision", "_recall"):
                assert got["rougeW" + suffix] == pytest.approx(got["rougeL" + suffix], abs=TOL)
    default = rouge_metric.compute(predictions=preds, references=refs)
    assert default["rougeW"] < default["rougeL"]  # alpha = 1.2 shrinks scores below ROUGE-L
    exact = rouge_metric.compute(predictions=preds, references=refs, rouge_w_exact=True)
    assert exact["rougeW"] >= default["rougeW"]
