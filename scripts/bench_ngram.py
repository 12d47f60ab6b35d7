#!/usr/bin/env python
"""Benchmark our n-gram LMs against KenLM (``lmplz`` + its Python query module) and NLTK on PTB.

    HARNESS_DATA_DIR=/work/shared/data HF_HUB_OFFLINE=1 HF_EVALUATE_OFFLINE=1 \\
        .venv/bin/python scripts/bench_ngram.py [--order 5] [--repeats 3] [--nltk-sentences 3] [--no-nltk]

One run measures, side by side on Mikolov's PTB (929,589 training tokens, test 82,430 tokens with one
``</s>`` per sentence):

* **perplexity** — our interpolated modified Kneser-Ney N-gram vs ``lmplz -o N`` (KenLM's modified KN,
  interpolated, nothing pruned), and our plain KN; the per-token log10 difference to KenLM;
* **time** — build (text file → estimated model), ARPA export, scoring the test set; build + score as
  a ratio to KenLM (goal ≤ 3×). Ours and KenLM run interleaved (ours, lmplz, KenLM scoring, ours, …)
  and each time is the best of ``--repeats`` (as ``timeit`` reports), since the machine may be shared:
  the load average at start and end is printed, and CPU times beside wall times;
* **NLTK** — ``nltk.lm.KneserNeyInterpolated(N)`` fitted on the same text, scoring the first
  ``--nltk-sentences`` test sentences, against ours scoring the same sentences (goal ≥ 100× faster);
  and what each gives a sentence with a word never seen in training (NLTK: probability 0, perplexity inf).

Matching KenLM's options. lmplz refuses ``<unk>`` in its input (it is KenLM's own out-of-vocabulary
symbol), so PTB's literal ``<unk>`` is rewritten to the ordinary word ``PTB_UNK`` in temporary copies
of train and test, and *both* models are fitted and scored on those copies: the same vocabulary
(9,999 PTB types + ``</s>`` + ``<s>`` + an unseen ``<unk>``), the same sentence boundaries (one ``<s>``,
``</s>`` predicted), the same uniform floor 1/|V| (``<s>`` excluded). The recipe's own setting (PTB's
``<unk>`` *is* our ``<unk>``) is reported as well; it differs only in that one type.

KenLM is built here when missing: Debian's Boost/compression dev packages (``apt-get install``, as
root), the ``kenlm`` sdist from PyPI (``pip download``), ``cmake`` + ``make lmplz`` into
``--kenlm-dir`` (default ``~/.cache/harness/kenlm``, outside the repository). Scoring uses the
``kenlm`` Python module (``pip install kenlm``) when importable, else the ``query`` binary.
Nothing here runs in the test suite.

What the times cover
    * KenLM build: wall time of the ``lmplz`` process — reading the text, counting, estimating and
      writing the ARPA file (it has no in-memory result); it uses several threads.
    * KenLM score: ``kenlm.Model.score`` over the test sentences, model already loaded (loading the
      ARPA file is reported separately).
    * ours build: reading the text file, whitespace tokenization, counting and estimation, in this
      process, single-threaded numpy; ARPA export reported separately (and added in a second ratio).
    * ours score: ``NgramLM.score`` on the token lists of the test set (one batched call).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import gc
import json
import math
import os
import platform
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

KENLM_VERSION = "0.3.0"
APT_PACKAGES = ["libboost-program-options-dev", "libboost-system-dev", "libboost-thread-dev", "libboost-test-dev",
                "zlib1g-dev", "libbz2-dev", "liblzma-dev"]
PTB_UNK = "PTB_UNK"
OOV_SENTENCE = "the zyzzyva rose in new york"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), platform.machine())
    except OSError:
        return platform.machine()


# ---------------------------------------------------------------------------------------- KenLM


def run_logged(cmd: list[str], log_path: Path, **kw) -> subprocess.CompletedProcess:
    with open(log_path, "a") as f:
        f.write(f"$ {shlex.join(cmd)}\n")
        f.flush()
        return subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, **kw)


def ensure_apt_packages(log_path: Path) -> str | None:
    """Install the Debian packages lmplz needs; returns why not, or None."""
    if not shutil.which("dpkg"):
        return "no dpkg: install Boost (program_options, system, thread, test), zlib, bzip2 and lzma dev packages yourself"
    missing = [p for p in APT_PACKAGES if subprocess.run(["dpkg", "-s", p], capture_output=True).returncode != 0]
    if not missing:
        return None
    if os.geteuid() != 0:
        return f"missing Debian packages {' '.join(missing)} and not root: apt-get install -y {' '.join(missing)}"
    log(f"apt-get install -y {' '.join(missing)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if run_logged(["apt-get", "install", "-y", *missing], log_path, env=env).returncode != 0:
        run_logged(["apt-get", "update"], log_path, env=env)
        if run_logged(["apt-get", "install", "-y", *missing], log_path, env=env).returncode != 0:
            return f"apt-get install failed (see {log_path})"
    return None


def ensure_kenlm(kenlm_dir: Path) -> tuple[dict[str, str], dict]:
    """Paths of ``lmplz`` / ``query`` (building them if needed) and facts about the build."""
    info: dict = {}
    found = {name: shutil.which(name) for name in ("lmplz", "query")}
    src = kenlm_dir / f"kenlm-{KENLM_VERSION}"
    built = {name: src / "build" / "bin" / name for name in ("lmplz", "query")}
    if found["lmplz"]:
        info["lmplz"] = f"found on PATH: {found['lmplz']}"
        return {k: v for k, v in found.items() if v}, info
    if all(p.is_file() for p in built.values()):
        info["lmplz"] = f"built earlier in {src / 'build'}"
        return {k: str(v) for k, v in built.items()}, info
    kenlm_dir.mkdir(parents=True, exist_ok=True)
    log_path = kenlm_dir / "build.log"
    t0 = time.perf_counter()
    why = ensure_apt_packages(log_path)
    if why:
        info["lmplz"] = f"not built: {why}"
        return {}, info
    if not shutil.which("cmake") or not shutil.which("c++"):
        info["lmplz"] = "not built: needs cmake and a C++ compiler (apt-get install -y cmake g++)"
        return {}, info
    if not src.is_dir():
        log(f"pip download kenlm=={KENLM_VERSION} (sdist) into {kenlm_dir}")
        cmd = [sys.executable, "-m", "pip", "download", f"kenlm=={KENLM_VERSION}", "--no-deps", "--no-binary", ":all:",
               "-d", str(kenlm_dir)]
        # pip prepares the sdist's metadata: with this environment's setuptools when it has one (an
        # isolated build environment downloads setuptools again, which can take minutes)
        r = run_logged(cmd + ["--no-build-isolation"], log_path, timeout=900)
        if r.returncode != 0:
            r = run_logged(cmd, log_path, timeout=900)
        sdists = sorted(kenlm_dir.glob(f"kenlm-{KENLM_VERSION}.tar.gz"))
        if r.returncode != 0 or not sdists:
            info["lmplz"] = f"not built: pip download kenlm=={KENLM_VERSION} failed (see {log_path})"
            return {}, info
        with tarfile.open(sdists[0]) as tar:
            try:
                tar.extractall(kenlm_dir, filter="data")
            except TypeError:  # Python without extraction filters (< 3.10.12 / 3.11.4)
                tar.extractall(kenlm_dir)
    log(f"building lmplz and query with cmake in {src / 'build'} (a few minutes on 2 cores; log: {log_path})")
    jobs = str(os.cpu_count() or 2)
    if run_logged(["cmake", "-S", str(src), "-B", str(src / "build"), "-DCMAKE_BUILD_TYPE=Release"], log_path).returncode != 0 \
            or run_logged(["cmake", "--build", str(src / "build"), "--target", "lmplz", "query", "-j", jobs], log_path).returncode != 0:
        tail = log_path.read_text().splitlines()[-15:]
        info["lmplz"] = f"not built: cmake/make failed (see {log_path}):\n    " + "\n    ".join(tail)
        return {}, info
    info["lmplz"] = f"built from the kenlm {KENLM_VERSION} sdist in {time.perf_counter() - t0:.0f} s ({src / 'build'})"
    return {k: str(v) for k, v in built.items()}, info


def lmplz_build(lmplz: str, order: int, text: Path, arpa: Path, tmp: Path, memory: str | None) -> dict:
    """One ``lmplz`` run: wall seconds, CPU seconds (all its threads), the discounts it printed."""
    cmd = [lmplz, "-o", str(order), *(["-S", memory] if memory else []), "-T", str(tmp), "--text", str(text), "--arpa", str(arpa)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode != 0:
        raise SystemExit(f"lmplz failed ({shlex.join(cmd)}):\n{r.stderr[-3000:]}")
    discounts = [line.strip() for line in r.stderr.splitlines() if " D1=" in line]
    return {"seconds": seconds, "cpu_seconds": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
            "discounts": discounts, "command": shlex.join(cmd)}


class KenLMScorer:
    """The ``kenlm`` Python module when importable (model loaded once), else the ``query`` binary."""

    def __init__(self, arpa: Path, query: str | None):
        self.arpa, self.query = arpa, query
        try:
            import kenlm
            from importlib.metadata import version

            t0 = time.perf_counter()
            self.model = kenlm.Model(str(arpa))
            self.load_seconds = time.perf_counter() - t0
            self.via = f"kenlm {version('kenlm')} Python module (Model.score, bos=True, eos=True)"
        except ImportError:
            if query is None:
                raise SystemExit("neither the kenlm Python module (pip install kenlm) nor KenLM's query binary is available")
            self.model, self.load_seconds = None, None
            self.via = "KenLM query binary (load + score in one process)"

    def total_log10(self, sentences: list[str]) -> tuple[float, float]:
        """(Σ log10 p over every word and </s>, seconds)."""
        if self.model is not None:
            t0 = time.perf_counter()
            total = sum(self.model.score(s, bos=True, eos=True) for s in sentences)
            return total, time.perf_counter() - t0
        t0 = time.perf_counter()
        r = subprocess.run([self.query, "-v", "summary", str(self.arpa)], input="\n".join(sentences) + "\n",
                           capture_output=True, text=True)
        seconds = time.perf_counter() - t0
        ppl = next(float(l.split()[-1]) for l in r.stdout.splitlines() if l.startswith("Perplexity including OOVs"))
        return -math.log10(ppl) * sum(len(s.split()) + 1 for s in sentences), seconds

    def per_token(self, sentences: list[str]):
        if self.model is None:
            return None
        return [p for s in sentences for p, _, _ in self.model.full_scores(s, bos=True, eos=True)]


# ---------------------------------------------------------------------------------------- ours


def read_sentences(path: Path) -> list[list[str]]:
    with open(path, encoding="utf-8") as f:
        return [line.split() for line in f if line.strip()]


def ours_once(train: Path, test: Path, order: int, smoothing: str) -> dict:
    """Read + fit (build), then score the test set: wall and CPU seconds of each."""
    from harness.models.ngram import NgramLM

    gc.collect()
    c0, t0 = time.process_time(), time.perf_counter()
    sents = read_sentences(train)
    t1 = time.perf_counter()
    lm = NgramLM(order, smoothing).fit(sents)
    c2, t2 = time.process_time(), time.perf_counter()
    test_sents = read_sentences(test)
    c3, t3 = time.process_time(), time.perf_counter()
    scores = lm.score(test_sents)
    c4, t4 = time.process_time(), time.perf_counter()
    return {"lm": lm, "scores": scores, "read_seconds": t1 - t0, "fit_seconds": t2 - t1, "build_seconds": t2 - t0,
            "build_cpu_seconds": c2 - c0, "score_seconds": t4 - t3, "score_cpu_seconds": c4 - c3}


# ---------------------------------------------------------------------------------------- NLTK


def nltk_bench(train_sents: list[list[str]], test_sents: list[list[str]], order: int, lm_ours) -> dict:
    from nltk.lm import KneserNeyInterpolated
    from nltk.lm.preprocessing import pad_both_ends, padded_everygram_pipeline
    from nltk.util import ngrams

    import nltk

    t0 = time.perf_counter()
    model = KneserNeyInterpolated(order)
    grams, vocab = padded_everygram_pipeline(order, train_sents)
    model.fit(grams, vocab)
    fit_seconds = time.perf_counter() - t0
    per_sentence, tokens = [], 0
    for s in test_sents:
        g = list(ngrams(list(pad_both_ends(s, n=order)), order))
        t0 = time.perf_counter()
        for x in g:
            model.logscore(x[-1], x[:-1])
        per_sentence.append(time.perf_counter() - t0)
        tokens += len(g)
    # ours on the same sentences: one call per sentence (Python overhead included), best of 5
    ours_calls = []
    for _ in range(5):
        t0 = time.perf_counter()
        for s in test_sents:
            lm_ours.score([s])
        ours_calls.append((time.perf_counter() - t0) / len(test_sents))
    oov = OOV_SENTENCE.split()
    g = list(ngrams(list(pad_both_ends(oov, n=order)), order))
    return {"version": nltk.__version__, "fit_seconds": fit_seconds, "sentences": len(test_sents), "scored_ngrams": tokens,
            "seconds_per_sentence": statistics.mean(per_sentence), "ours_seconds_per_sentence_call": min(ours_calls),
            "nltk_oov_perplexity": model.perplexity(g), "ours_oov_perplexity": lm_ours.perplexity([oov])}


# ---------------------------------------------------------------------------------------- main


def fmt_s(x: float | None) -> str:
    if x is None:
        return "—"
    return f"{x * 1000:.1f} ms" if x < 1 else f"{x:.2f} s"


def arpa_counts(path: Path) -> list[int]:
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("ngram "):
                out.append(int(line.split("=")[1]))
            elif out and not line.strip():
                break
    return out


def main(argv: list[str] | None = None) -> int:
    import numpy as np

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--order", type=int, default=5)
    p.add_argument("--repeats", type=int, default=5, help="interleaved timed repeats (ours, lmplz, ours, ...): best of")
    p.add_argument("--nltk-sentences", type=int, default=3, help="test sentences NLTK scores (each takes seconds)")
    p.add_argument("--no-nltk", action="store_true")
    p.add_argument("--no-kenlm", action="store_true")
    p.add_argument("--lmplz-memory", default="1G",
                   help="lmplz -S (sort memory; the model does not depend on it). Its default, 80%% of RAM, costs seconds "
                        "of page faults on a large-memory machine; 1G is its fastest setting here. '' for lmplz's default")
    p.add_argument("--kenlm-dir", type=Path, default=Path.home() / ".cache" / "harness" / "kenlm")
    p.add_argument("--json", type=Path, help="also write the numbers here")
    args = p.parse_args(argv)

    data_dir = Path(os.environ.get("HARNESS_DATA_DIR", ROOT.parent / "shared" / "data")) / "ptb"
    files = {s: data_dir / f"ptb.{s}.txt" for s in ("train", "valid", "test")}
    missing = [str(f) for f in files.values() if not f.is_file()]
    if missing:
        raise SystemExit(f"PTB not found ({', '.join(missing)}); set HARNESS_DATA_DIR to the folder holding ptb/")
    command = (f"HARNESS_DATA_DIR={data_dir.parent} HF_HUB_OFFLINE=1 HF_EVALUATE_OFFLINE=1 "
               + shlex.join([".venv/bin/python", "scripts/bench_ngram.py", *(argv if argv is not None else sys.argv[1:])]))
    N = args.order
    res: dict = {"command": command, "date": _dt.datetime.now().isoformat(timespec="seconds"),
                 "cpu": f"{cpu_name()} ({os.cpu_count()} cores)", "python": platform.python_version(), "order": N,
                 "load_average_start": os.getloadavg()}

    bins: dict[str, str] = {}
    if not args.no_kenlm:
        bins, kinfo = ensure_kenlm(args.kenlm_dir.expanduser())
        res["kenlm_build"] = kinfo.get("lmplz")
        log(f"KenLM: {kinfo.get('lmplz')}")

    with tempfile.TemporaryDirectory(prefix="bench_ngram_") as tmp_name:
        tmp = Path(tmp_name)
        # PTB's <unk> → an ordinary word, for lmplz (which refuses <unk>) and for ours alike
        mapped = {}
        for split in ("train", "test"):
            mapped[split] = tmp / f"ptb.{split}.txt"
            mapped[split].write_text(files[split].read_text(encoding="utf-8").replace("<unk>", PTB_UNK), encoding="utf-8")
        test_lines = [" ".join(s) for s in read_sentences(mapped["test"])]

        # interleaved: ours (build, score), lmplz (build), KenLM (score), repeated; best of each
        runs: dict[str, list] = {"ours": [], "lmplz": [], "kenlm_score": []}
        scorer = None
        for r in range(args.repeats):
            log(f"repeat {r + 1}/{args.repeats}: ours ...")
            runs["ours"].append(ours_once(mapped["train"], mapped["test"], N, "modified_kneser_ney"))
            if "lmplz" in bins:
                log(f"repeat {r + 1}/{args.repeats}: lmplz -o {N} ...")
                runs["lmplz"].append(lmplz_build(bins["lmplz"], N, mapped["train"], tmp / "kenlm.arpa", tmp, args.lmplz_memory))
                if scorer is None:
                    scorer = KenLMScorer(tmp / "kenlm.arpa", bins.get("query"))
                runs["kenlm_score"].append(scorer.total_log10(test_lines))
        mkn = runs["ours"][-1]
        lm, scores = mkn["lm"], mkn["scores"]
        best = {k: min(run[k] for run in runs["ours"]) for k in
                ("read_seconds", "fit_seconds", "build_seconds", "build_cpu_seconds", "score_seconds", "score_cpu_seconds")}
        t0 = time.perf_counter()
        lm.to_arpa(tmp / "ours.arpa")
        best["arpa_seconds"] = time.perf_counter() - t0
        from harness.models.ngram import NgramLM

        t0 = time.perf_counter()
        NgramLM.from_arpa(tmp / "ours.arpa")
        best["arpa_read_seconds"] = time.perf_counter() - t0
        res["ours"] = {**best, "perplexity": scores.perplexity, "tokens": scores.num_tokens, "num_ngrams": lm.num_ngrams,
                       "discounts": lm.discounts, "arpa_bytes": (tmp / "ours.arpa").stat().st_size}

        log("ours: plain Kneser-Ney, and the recipe setting (PTB's <unk> as our <unk>) ...")
        res["ours_kneser_ney_perplexity"] = ours_once(mapped["train"], mapped["test"], N, "kneser_ney")["scores"].perplexity
        recipe_setting = ours_once(files["train"], files["test"], N, "modified_kneser_ney")
        res["ours_recipe_setting_perplexity"] = recipe_setting["scores"].perplexity

        ken = None
        if scorer is not None and args.lmplz_memory:
            log("lmplz once more with its default -S (80% of RAM), for reference ...")
            default_mem = lmplz_build(bins["lmplz"], N, mapped["train"], tmp / "kenlm_default.arpa", tmp, None)
        if scorer is not None:
            total = runs["kenlm_score"][-1][0]
            ken = {"perplexity": 10 ** (-total / scores.num_tokens), "via": scorer.via, "load_seconds": scorer.load_seconds,
                   "build_seconds": min(x["seconds"] for x in runs["lmplz"]),
                   "build_cpu_seconds": min(x["cpu_seconds"] for x in runs["lmplz"]),
                   "score_seconds": min(x[1] for x in runs["kenlm_score"]),
                   "discounts": runs["lmplz"][-1]["discounts"], "lmplz_command": runs["lmplz"][-1]["command"],
                   "num_ngrams": arpa_counts(tmp / "kenlm.arpa"), "arpa_bytes": (tmp / "kenlm.arpa").stat().st_size}
            if args.lmplz_memory:
                ken["build_seconds_default_memory"] = default_mem["seconds"]
                ken["build_cpu_seconds_default_memory"] = default_mem["cpu_seconds"]
            per_token = scorer.per_token(test_lines)
            if per_token is not None:
                d = np.abs(np.asarray(per_token) - scores.log10)
                ken["max_abs_log10_diff"], ken["mean_abs_log10_diff"] = float(d.max()), float(d.mean())
            ours_by_kenlm = KenLMScorer(tmp / "ours.arpa", bins.get("query"))
            ken["ours_arpa_perplexity"] = 10 ** (-ours_by_kenlm.total_log10(test_lines)[0] / scores.num_tokens)
            res["kenlm"] = ken

    nl = None
    if not args.no_nltk:
        log(f"NLTK: fitting KneserNeyInterpolated({N}) on PTB train (about 30 s) ...")
        nl = nltk_bench(read_sentences(files["train"]), read_sentences(files["test"])[: args.nltk_sentences], N,
                        recipe_setting["lm"])
        res["nltk"] = nl
    res["load_average_end"] = os.getloadavg()

    # ------------------------------------------------------------------ report (markdown on stdout)
    o = res["ours"]
    print(f"\n## n-gram LMs on PTB (order {N}): ours vs KenLM vs NLTK\n")
    print(f"`{command}`  \n{res['date']}, {res['cpu']}, Python {res['python']}; times: best of {args.repeats} "
          f"interleaved repeats; load average {res['load_average_start'][0]:.1f} at start, "
          f"{res['load_average_end'][0]:.1f} at end\n")
    print("| | ours | KenLM | ours / KenLM |\n|---|---:|---:|---:|")
    if ken:
        rel = o["perplexity"] / ken["perplexity"] - 1
        res["perplexity_relative_difference"] = rel
        print(f"| test perplexity, modified KN, interpolated, no pruning | {o['perplexity']:.4f} | {ken['perplexity']:.4f} | {rel:+.1e} |")
        if "max_abs_log10_diff" in ken:
            print(f"| per-token \\|Δ log10 p\\| over {o['tokens']:,} test tokens: max / mean | | | "
                  f"{ken['max_abs_log10_diff']:.1e} / {ken['mean_abs_log10_diff']:.1e} |")
        print(f"| our ARPA file, scored by KenLM: test perplexity | {o['perplexity']:.4f} | {ken['ours_arpa_perplexity']:.4f} | |")
        print(f"| n-grams per order | {', '.join(map(str, o['num_ngrams']))} | {', '.join(map(str, ken['num_ngrams']))} | |")
        b = o["build_seconds"] / ken["build_seconds"]
        print(f"| build: text file → model (ours: in memory; lmplz: → ARPA file) | {fmt_s(o['build_seconds'])} | {fmt_s(ken['build_seconds'])} | {b:.2f}× |")
        print(f"| … CPU time (lmplz: all threads) | {fmt_s(o['build_cpu_seconds'])} | {fmt_s(ken['build_cpu_seconds'])} | {o['build_cpu_seconds'] / ken['build_cpu_seconds']:.2f}× |")
        if "build_seconds_default_memory" in ken:
            print(f"| … lmplz with its default `-S 80%` (one run; wall / CPU) | | {fmt_s(ken['build_seconds_default_memory'])} / "
                  f"{fmt_s(ken['build_cpu_seconds_default_memory'])} | |")
        print(f"| … of which reading + tokenizing the text (ours) | {fmt_s(o['read_seconds'])} | | |")
        s_ratio = o["score_seconds"] / ken["score_seconds"]
        print(f"| score the test set ({o['tokens']:,} tokens; model in memory) | {fmt_s(o['score_seconds'])} | {fmt_s(ken['score_seconds'])} | {s_ratio:.2f}× |")
        total_o, total_k = o["build_seconds"] + o["score_seconds"], ken["build_seconds"] + ken["score_seconds"]
        res["build_plus_score_ratio"] = total_o / total_k
        print(f"| **build + score** (goal ≤ 3×) | {fmt_s(total_o)} | {fmt_s(total_k)} | **{total_o / total_k:.2f}×** |")
        total_oa = total_o + o["arpa_seconds"]
        res["build_arpa_plus_score_ratio"] = total_oa / total_k
        print(f"| build + write ARPA + score (both then have the ARPA file) | {fmt_s(total_oa)} | {fmt_s(total_k)} | {total_oa / total_k:.2f}× |")
        print(f"| write ARPA ({o['arpa_bytes'] / 2**20:.0f} MiB ours, {ken['arpa_bytes'] / 2**20:.0f} MiB KenLM) | {fmt_s(o['arpa_seconds'])} | (in build) | |")
        print(f"| load ARPA for querying | {fmt_s(o['arpa_read_seconds'])} | {fmt_s(ken['load_seconds'])} | |")
    else:
        print(f"| test perplexity, modified KN | {o['perplexity']:.4f} | {res.get('kenlm_build', 'skipped')} | |")
        print(f"| build / score | {fmt_s(o['build_seconds'])} / {fmt_s(o['score_seconds'])} | | |")
    print(f"| test perplexity, plain interpolated KN (one D per order) | {res['ours_kneser_ney_perplexity']:.4f} | | |")
    print(f"| test perplexity, recipe setting (PTB's `<unk>` is our `<unk>`) | {res['ours_recipe_setting_perplexity']:.4f} | | |")
    print("\nDiscounts D1, D2, D3+ — ours: "
          + "; ".join(f"{m}: " + ", ".join(f"{d:.5g}" for d in ds) for m, ds in enumerate(o["discounts"], 1)))
    if ken:
        print("— lmplz: " + "; ".join(ken["discounts"]))
        print(f"\nKenLM: {res.get('kenlm_build')}; `{ken['lmplz_command']}`; scoring via {ken['via']}.")
    if nl:
        speedup = nl["seconds_per_sentence"] / nl["ours_seconds_per_sentence_call"]
        batched = o["score_seconds"] / len(test_lines)
        res["nltk_speedup_per_call"], res["nltk_speedup_batched"] = speedup, nl["seconds_per_sentence"] / batched
        print(f"\n| NLTK {nl['version']} `KneserNeyInterpolated({N})`, same PTB train | NLTK | ours | NLTK / ours |\n|---|---:|---:|---:|")
        print(f"| fit | {fmt_s(nl['fit_seconds'])} | {fmt_s(o['fit_seconds'])} | {nl['fit_seconds'] / o['fit_seconds']:.0f}× |")
        print(f"| score one sentence (first {nl['sentences']} test sentences; ours: one `score` call each) "
              f"| {fmt_s(nl['seconds_per_sentence'])} | {nl['ours_seconds_per_sentence_call'] * 1e6:.0f} µs | **{speedup:,.0f}×** |")
        print(f"| score one sentence, ours batched over the test set | | {batched * 1e6:.1f} µs | {nl['seconds_per_sentence'] / batched:,.0f}× |")
        print(f"| perplexity of \"{OOV_SENTENCE}\" (\"zyzzyva\" unseen in training) | {nl['nltk_oov_perplexity']} | {nl['ours_oov_perplexity']:.1f} | |")
        print(f"\n(NLTK pads with {N - 1} `<s>` and {N - 1} `</s>`, so it scores {nl['scored_ngrams']} n-grams for these "
              f"{nl['sentences']} sentences: its perplexity is not comparable, its speed is.)")
    if args.json:
        args.json.write_text(json.dumps(res, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
