"""CoNLL-2003 NER over seeds: train each recipe once per seed (or collect finished runs), then print a
markdown table of test / validation F1 (mean ± sample standard deviation), CPU time and tokens/s, and
the CRF-minus-softmax difference seed by seed.

    HARNESS_DATA_DIR=../shared/data OMP_NUM_THREADS=1 python scripts/bench_ner.py \
        --recipes bilstm_crf bilstm_softmax minilm --seeds 1 2 3
    python scripts/bench_ner.py --collect-only          # tabulate runs/ner/*_seed*/metrics.json

Run ``NAME`` with seed ``S`` is ``recipes/ner/NAME_conll2003.yaml seed=S output_dir=RUNS/NAME_seedS``;
a run whose ``metrics.json`` exists is not trained again.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def run(name: str, seed: int, runs: Path, overrides: list[str]) -> Path:
    out = runs / f"{name}_seed{seed}"
    if (out / "metrics.json").is_file():
        return out
    recipe = REPO / "recipes" / "ner" / f"{name}_conll2003.yaml"
    cmd = [sys.executable, "-m", "harness", "train", str(recipe), f"seed={seed}", f"output_dir={out}",
           "training.overwrite=true", *overrides]
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, cwd=REPO, env={**os.environ, "HF_HUB_OFFLINE": "1", "HF_EVALUATE_OFFLINE": "1"})
    return out


def summary(values: list[float]) -> str:
    if not values:
        return "–"
    if len(values) == 1:
        return f"{100 * values[0]:.2f}"
    return f"{100 * statistics.mean(values):.2f} ± {100 * statistics.stdev(values):.2f}"


def table(names: list[str], seeds: list[int], runs: Path) -> str:
    rows = ["| recipe | seeds | test F1 (seqeval strict) | test F1 (conlleval) | validation F1 | per-seed test F1 | "
            "train time / run | train tokens/s |", "|---|---|---|---|---|---|---|---|"]
    per_seed: dict[str, dict[int, float]] = {}
    lenient: dict[str, dict[int, float]] = {}
    for name in names:
        found = {}
        for seed in seeds:
            path = runs / f"{name}_seed{seed}" / "metrics.json"
            if path.is_file():
                found[seed] = json.loads(path.read_text())
        if not found:
            rows.append(f"| {name} | – | missing | | | | | |")
            continue
        test = [m["test/overall_f1"] for m in found.values()]
        per_seed[name] = {s: m["test/overall_f1"] for s, m in found.items()}
        lenient[name] = {s: m.get("test/lenient_f1", m["test/overall_f1"]) for s, m in found.items()}
        minutes = statistics.mean(m["train/seconds"] for m in found.values()) / 60
        speed = statistics.mean(m["train/tokens_per_second"] for m in found.values())
        rows.append(
            f"| {name} | {', '.join(map(str, found))} | {summary(test)} | "
            f"{summary([m.get('test/lenient_f1', m['test/overall_f1']) for m in found.values()])} | "
            f"{summary([m['validation/overall_f1'] for m in found.values()])} | "
            f"{' / '.join(f'{100 * v:.2f}' for v in test)} | {minutes:.1f} min | {speed:,.0f} |"
        )
    lines = rows
    for label, scores in (("strict", per_seed), ("conlleval", lenient)):
        crf, soft = scores.get("bilstm_crf"), scores.get("bilstm_softmax")
        common = sorted(set(crf or {}) & set(soft or {}))
        if common:
            diffs = [crf[s] - soft[s] for s in common]
            lines += ["", f"CRF minus softmax, test F1 points ({label}), seed by seed: "
                      + ", ".join(f"seed {s}: {100 * d:+.2f}" for s, d in zip(common, diffs))
                      + f" (mean {100 * statistics.mean(diffs):+.2f})"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--recipes", nargs="+", default=["bilstm_crf", "bilstm_softmax", "minilm"])
    p.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    p.add_argument("--runs-dir", type=Path, default=REPO / "runs" / "ner")
    p.add_argument("--collect-only", action="store_true", help="tabulate finished runs, train nothing")
    p.add_argument("overrides", nargs="*", help="recipe overrides for every run, e.g. tracking.report_to=[]")
    args = p.parse_args(argv)
    if not args.collect_only:
        for name in args.recipes:
            for seed in args.seeds:
                run(name, seed, args.runs_dir, args.overrides)
    print(table(args.recipes, args.seeds, args.runs_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
