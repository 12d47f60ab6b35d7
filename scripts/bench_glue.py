"""LoRA vs full fine-tuning of one encoder on GLUE tasks, side by side over seeds: dev metric (mean ±
sample standard deviation), trainable parameters, training time and tokens/s, and the goals of the
GLUE issue (LoRA within 1.0 point of full fine-tuning with <= 0.5 % trainable; SST-2 accuracy >= 90,
MRPC F1 >= 88, STS-B Pearson >= 86) checked row by row.

    HARNESS_DATA_DIR=../shared/data python scripts/bench_glue.py --tasks sst2 mrpc stsb rte cola --seeds 42 43 44 \
        --epochs sst2=1 mrpc=5 stsb=5 rte=5 cola=5 -- evaluation.load_best_at_end=false
    python scripts/bench_glue.py --collect-only          # tabulate runs/glue_bench/<method>/<task>_seed<S>

Each run is ``harness train RECIPE data.task=T seed=S output_dir=RUNS/<method>/<T>_seed<S>`` with
``recipes/glue_lora.yaml`` (lora) or ``recipes/glue_full.yaml`` (full), plus ``--epochs`` and any
overrides given; a run whose ``metrics.json`` exists is not trained again. The metric is the task's
main dev metric, as ``metrics.json`` records it (``validation/<metric>``).
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
RECIPES = {"full": REPO / "recipes" / "glue_full.yaml", "lora": REPO / "recipes" / "glue_lora.yaml"}
#: task -> (metrics.json key, goal for the better of the two methods, or None)
MAIN = {
    "cola": ("validation/matthews_correlation", None),
    "sst2": ("validation/accuracy", 0.90),
    "mrpc": ("validation/f1", 0.88),
    "stsb": ("validation/pearson", 0.86),
    "rte": ("validation/accuracy", None),
    "qnli": ("validation/accuracy", None),
    "qqp": ("validation/f1", None),
    "wnli": ("validation/accuracy", None),
}
#: the HF Trainer on the same checkpoint (the issue's anchor): task -> (full, LoRA), in points
ANCHOR = {"cola": (24.5, 21.5), "sst2": (88.8, 86.1), "mrpc": (84.5, 86.5), "stsb": (85.1, 84.9), "rte": (54.5, 56.3)}


def run_dir(runs: Path, method: str, task: str, seed: int) -> Path:
    return runs / method / f"{task}_seed{seed}"


def train(method: str, task: str, seed: int, runs: Path, overrides: list[str]) -> None:
    out = run_dir(runs, method, task, seed)
    if (out / "metrics.json").is_file():
        return
    cmd = [sys.executable, "-m", "harness", "train", str(RECIPES[method]), f"data.task={task}", f"seed={seed}",
           f"output_dir={out}", "training.overwrite=true", *overrides]
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, cwd=REPO, env={**os.environ, "HF_HUB_OFFLINE": "1", "HF_EVALUATE_OFFLINE": "1"})


def _cell(values: list[float]) -> str:
    if not values:
        return "–"
    if len(values) == 1:
        return f"{100 * values[0]:.1f}"
    return f"{100 * statistics.mean(values):.1f} ± {100 * statistics.stdev(values):.1f}"


def table(tasks: list[str], seeds: list[int], runs: Path) -> str:
    head = ("| task | metric | full FT | LoRA | LoRA − full | LoRA trainable | goal | Trainer anchor (full / LoRA) | "
            "time / run (full / LoRA) | tokens/s (full / LoRA) |")
    rows = [head, "|" + "---|" * (head.count("|") - 1)]
    for task in tasks:
        key, goal = MAIN[task]
        found = {m: [json.loads(p.read_text()) for s in seeds if (p := run_dir(runs, m, task, s) / "metrics.json").is_file()]
                 for m in ("full", "lora")}
        if not found["full"] and not found["lora"]:
            rows.append(f"| {task} | {key.split('/')[1]} | missing | missing | | | | | | |")
            continue
        score = {m: [r[key] for r in found[m] if key in r] for m in found}
        diff = (f"{100 * (statistics.mean(score['lora']) - statistics.mean(score['full'])):+.1f}"
                if score["full"] and score["lora"] else "–")
        share = "–"
        if found["lora"]:
            r = found["lora"][0]
            share = f"{100 * r['train/trainable_parameters'] / r['train/total_parameters']:.2f} %"
        best = max((statistics.mean(v) for v in score.values() if v), default=None)
        goal_cell = "–" if goal is None else f"≥ {100 * goal:.0f} {'✓' if best is not None and best >= goal else '✗'}"
        anchor = ANCHOR.get(task)

        def mean_of(m, k, fmt):
            values = [r[k] for r in found[m] if k in r]
            return fmt(statistics.mean(values)) if values else "–"

        minutes = " / ".join(mean_of(m, "train/seconds", lambda v: f"{v / 60:.1f} min") for m in ("full", "lora"))
        speed = " / ".join(mean_of(m, "train/tokens_per_second", lambda v: f"{v:,.0f}") for m in ("full", "lora"))
        rows.append(
            f"| {task} | {key.split('/')[1]} | {_cell(score['full'])} | {_cell(score['lora'])} | {diff} | {share} | "
            f"{goal_cell} | {'–' if anchor is None else f'{anchor[0]} / {anchor[1]}'} | {minutes} | {speed} |"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", nargs="+", default=["sst2", "mrpc", "stsb", "rte", "cola"], choices=sorted(MAIN))
    p.add_argument("--seeds", nargs="+", type=int, default=[42])
    p.add_argument("--methods", nargs="+", default=["full", "lora"], choices=["full", "lora"])
    p.add_argument("--epochs", nargs="*", default=[], metavar="TASK=N", help="training.num_epochs per task")
    p.add_argument("--runs-dir", type=Path, default=REPO / "runs" / "glue_bench")
    p.add_argument("--collect-only", action="store_true", help="tabulate finished runs, train nothing")
    p.add_argument("overrides", nargs="*", help="recipe overrides for every run")
    args = p.parse_args(argv)
    epochs = dict(item.split("=", 1) for item in args.epochs)
    for task, n in epochs.items():  # "--epochs mrpc=10 training.lr=1e-3" would take the override as a task
        if task not in MAIN or not n.isdigit():
            p.error(f"--epochs {task}={n}: want TASK=N with TASK one of {', '.join(sorted(MAIN))}; "
                    "put recipe overrides after `--`")
    if not args.collect_only:
        for task in args.tasks:
            extra = [f"training.num_epochs={epochs[task]}"] if task in epochs else []
            for seed in args.seeds:
                for method in args.methods:
                    train(method, task, seed, args.runs_dir, extra + args.overrides)
    print(table(args.tasks, args.seeds, args.runs_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
