"""Fine-tuning strategies side by side on GLUE (issue 17): strategies × tasks × seeds → dev metric mean ±
sample sd, trainable share, training time, tokens/s; and the forgetting probe.

    HARNESS_DATA_DIR=/work/shared/data python scripts/bench_finetune.py \
        --strategies full lora houlsby pfeiffer --tasks rte mrpc --seeds 42 --epochs rte=2 -- training.eval_steps=100000
    python scripts/bench_finetune.py --probe full lora houlsby -- data.max_train_samples=2000   # forgetting probe
    python scripts/bench_finetune.py --collect-only --strategies full lora houlsby pfeiffer --tasks rte

Each run is ``harness train RECIPE data.task=T seed=S output_dir=RUNS/<strategy>/<T>_seed<S>`` (recipes:
:data:`RECIPES`) plus ``--epochs`` and the overrides after ``--``; a run whose ``metrics.json`` exists is not
trained again. The metric is the task's main dev metric as ``metrics.json`` records it, from the final model
(every run gets ``evaluation.load_best_at_end=false``, as the HF Trainer anchor).

The forgetting probe: all-MiniLM-L6-v2 was trained for sentence embeddings, so how much of that survives a
strategy's SST-2 run is the STS benchmark test Spearman (×100) of the cosine similarity of mean-pooled
embeddings from the run's encoder (82.03 as shipped), on ``$HARNESS_DATA_DIR/glue/STS-B/original/sts-test.tsv``
(1,379 pairs with gold scores). The encoder is the one the task runs: LoRA / DoRA / IA3 and bottleneck
adapters active (with them removed an adapter run's encoder is the shipped one, 82.03, by construction).
``--probe`` trains each strategy's SST-2 run (``RUNS/<strategy>/sst2_probe_seed<S>``) and probes it;
``--probe-base`` probes the shipped encoder.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FT = REPO / "recipes" / "finetune"
RECIPES = {
    "full": REPO / "recipes" / "glue_full.yaml",
    "lora": REPO / "recipes" / "glue_lora.yaml",
    "dora": FT / "dora.yaml",
    "qlora": FT / "qlora.yaml",
    "ia3": FT / "ia3.yaml",
    "houlsby": FT / "houlsby.yaml",
    "pfeiffer": FT / "pfeiffer.yaml",
    "gradual_unfreezing": FT / "gradual_unfreezing.yaml",
    "discriminative": FT / "discriminative.yaml",
    "ulmfit": FT / "ulmfit.yaml",
    "fusion": FT / "fusion_rte.yaml",
}
#: task -> (metrics.json key, the issue's goal for the best strategy, in points)
MAIN = {
    "sst2": ("validation/accuracy", 91), "mrpc": ("validation/f1", 88), "stsb": ("validation/pearson", 87),
    "rte": ("validation/accuracy", 62), "cola": ("validation/matthews_correlation", 35),
}
#: measured before (docs/benchmarks.md, 2026-11-24: 5 epochs, 2 seeds; SST-2 1 epoch): full FT / LoRA
BEFORE = {"sst2": (89.1, 87.3), "mrpc": (86.0, 85.8), "stsb": (84.5, 84.7), "rte": (57.4, 53.2), "cola": (31.0, 24.6)}
#: the HF Trainer on the same checkpoint (the issue's anchor), full fine-tuning
TRAINER = {"cola": 24.5, "sst2": 88.8, "mrpc": 84.5, "stsb": 85.1, "rte": 54.5}
SHIPPED_STS = 82.03
CHECKPOINT = "sentence-transformers/all-MiniLM-L6-v2"


def run_dir(runs: Path, strategy: str, task: str, seed: int, probe: bool = False) -> Path:
    return runs / strategy / f"{task}{'_probe' if probe else ''}_seed{seed}"


def train(strategy: str, task: str, seed: int, out: Path, overrides: list[str]) -> None:
    if (out / "metrics.json").is_file():
        return
    cmd = [sys.executable, "-m", "harness", "train", str(RECIPES[strategy]), f"data.task={task}", f"seed={seed}",
           f"output_dir={out}", "training.overwrite=true", "evaluation.load_best_at_end=false",
           "evaluation.predict_splits=[]", "tracking.report_to=[]", *overrides]
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, cwd=REPO, env={**os.environ, "HF_HUB_OFFLINE": "1", "HF_EVALUATE_OFFLINE": "1"})


# ------------------------------------------------------------------------------------------ the probe


def sts_test(data_dir: Path) -> tuple[list[str], list[str], list[float]]:
    """The STS benchmark test pairs with gold scores (``genre filename year id score s1 s2 [...]``)."""
    a, b, gold = [], [], []
    with open(data_dir / "glue" / "STS-B" / "original" / "sts-test.tsv", encoding="utf-8") as f:
        for row in csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
            gold.append(float(row[4]))
            a.append(row[5])
            b.append(row[6])
    return a, b, gold


def encoder_of(model):
    """The transformer body a run's model runs its task with (PEFT layers / adapters active)."""
    hf = model.get_base_model() if hasattr(model, "get_base_model") else model
    return getattr(hf, hf.base_model_prefix)


def sts_spearman(encoder, tokenizer, data_dir: Path, batch_size: int = 64) -> float:
    import torch
    from scipy.stats import spearmanr

    a, b, gold = sts_test(data_dir)
    encoder.eval()

    def embed(texts: list[str]) -> torch.Tensor:
        out = []
        with torch.inference_mode():
            for i in range(0, len(texts), batch_size):
                enc = tokenizer(texts[i:i + batch_size], padding=True, truncation=True, max_length=128,
                                return_tensors="pt")
                hidden = encoder(**enc).last_hidden_state
                mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                out.append((hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9))
        return torch.cat(out)

    cos = torch.nn.functional.cosine_similarity(embed(a), embed(b)).tolist()
    return 100 * spearmanr(cos, gold).statistic


def probe_run(out: Path, data_dir: Path) -> float:
    """The probe on a finished SST-2 run's saved model (reloaded as ``harness eval`` does)."""
    from harness import registry
    from harness.models.pretrained import load_saved

    task = registry.resolve("data", "glue")(task="sst2", max_train_samples=8)
    model, tokenizer = load_saved(out / "model", task)
    return sts_spearman(encoder_of(model), tokenizer, data_dir)


def probe_base(data_dir: Path) -> float:
    from transformers import AutoModel, AutoTokenizer

    from harness.models.pretrained import resolve_checkpoint

    path = resolve_checkpoint(CHECKPOINT)
    return sts_spearman(AutoModel.from_pretrained(path), AutoTokenizer.from_pretrained(path), data_dir)


# ------------------------------------------------------------------------------------------ the table


def _cell(values: list[float]) -> str:
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.1f}"
    return f"{statistics.mean(values):.1f} ± {statistics.stdev(values):.1f}"


def trainable_share(metrics: dict) -> str:
    """A run's trainable share of the parameters. Gradual unfreezing trains more as it goes: its mean over the
    optimizer steps and its share at the first step (``metrics.json``'s ``train/trainable_parameters_mean`` and
    ``..._first_step``), not the build-time count, which holds every parameter it will unfreeze."""
    total = metrics["train/total_parameters"]
    mean = metrics.get("train/trainable_parameters_mean")
    if mean is None:
        return f"{100 * metrics['train/trainable_parameters'] / total:.2f} %"
    first = metrics["train/trainable_parameters_first_step"]
    return f"{100 * mean / total:.2f} % (step mean; first step {100 * first / total:.2f} %)"


def table(strategies: list[str], tasks: list[str], seeds: list[int], runs: Path) -> str:
    head = ("| task | metric | strategy | dev (mean ± sd) | seeds | trainable | time / run | tokens/s | "
            "before: full / LoRA | Trainer (full) | goal (best strategy) |")
    rows = [head, "|" + "---|" * (head.count("|") - 1)]
    for task in tasks:
        key, goal = MAIN[task]
        for strategy in strategies:
            found = [json.loads(p.read_text()) for s in seeds
                     if (p := run_dir(runs, strategy, task, s) / "metrics.json").is_file()]
            if not found:
                continue
            score = [100 * r[key] for r in found if key in r]
            r0 = found[0]
            share = trainable_share(r0)
            minutes = statistics.mean(r["train/seconds"] for r in found) / 60
            speed = statistics.mean(r["train/tokens_per_second"] for r in found)
            before = BEFORE.get(task)
            rows.append(f"| {task} | {key.split('/')[1]} | {strategy} | {_cell(score)} | {len(score)} | {share} | "
                        f"{minutes:.1f} min | {speed:,.0f} | {'–' if not before else f'{before[0]} / {before[1]}'} | "
                        f"{TRAINER.get(task, '–')} | ≥ {goal} {'✓' if score and max(score) >= goal else '✗'} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--strategies", nargs="+", default=["full", "lora", "houlsby", "pfeiffer"], choices=sorted(RECIPES))
    p.add_argument("--tasks", nargs="*", default=[], choices=sorted(MAIN))
    p.add_argument("--seeds", nargs="+", type=int, default=[42])
    p.add_argument("--epochs", nargs="*", default=[], metavar="TASK=N", help="training.num_epochs per task")
    p.add_argument("--probe", nargs="*", default=None, choices=sorted(RECIPES), metavar="STRATEGY",
                   help="train these strategies' SST-2 runs (with the overrides) and run the forgetting probe")
    p.add_argument("--probe-base", action="store_true", help="probe the shipped encoder")
    p.add_argument("--runs-dir", type=Path, default=REPO / "runs" / "finetune_bench")
    p.add_argument("--collect-only", action="store_true", help="tabulate finished runs, train nothing")
    p.add_argument("overrides", nargs="*", help="recipe overrides for every run")
    args = p.parse_args(argv)
    data_dir = Path(os.environ.get("HARNESS_DATA_DIR", REPO / "data"))
    epochs = dict(item.split("=", 1) for item in args.epochs)
    for task, n in epochs.items():
        if task not in MAIN or not n.isdigit():
            p.error(f"--epochs {task}={n}: want TASK=N; put recipe overrides after `--`")
    if not args.collect_only:
        for task in args.tasks:
            extra = [f"training.num_epochs={epochs[task]}"] if task in epochs else []
            for seed in args.seeds:
                for strategy in args.strategies:
                    train(strategy, task, seed, run_dir(args.runs_dir, strategy, task, seed), extra + args.overrides)
    if args.tasks:
        print(table(args.strategies, args.tasks, args.seeds, args.runs_dir))
    probes = args.runs_dir / "probe.jsonl"
    if args.probe_base:
        t = time.perf_counter()
        value = probe_base(data_dir)
        print(f"forgetting probe, shipped encoder: STS-B test Spearman {value:.2f} (expected {SHIPPED_STS}; "
              f"{time.perf_counter() - t:.0f} s)", flush=True)
        with open(probes, "a") as f:
            f.write(json.dumps({"strategy": "shipped", "spearman": value}) + "\n")
    for strategy in args.probe or []:
        for seed in args.seeds:
            out = run_dir(args.runs_dir, strategy, "sst2", seed, probe=True)
            if not args.collect_only:
                train(strategy, "sst2", seed, out, args.overrides)
            if not (out / "metrics.json").is_file():
                continue
            value = probe_run(out, data_dir)
            dev = json.loads((out / "metrics.json").read_text()).get("validation/accuracy")
            print(f"forgetting probe, {strategy} after SST-2 (seed {seed}, dev acc {100 * dev:.1f}): "
                  f"STS-B test Spearman {value:.2f} ({value - SHIPPED_STS:+.2f} vs shipped)", flush=True)
            with open(probes, "a") as f:
                f.write(json.dumps({"strategy": strategy, "seed": seed, "spearman": value, "sst2_dev": dev,
                                    "run": str(out)}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
