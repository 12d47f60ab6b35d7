#!/usr/bin/env python
"""Siamese bi-encoders on the STS benchmark and MRPC: all-MiniLM-L6-v2 as shipped, then fine-tuned with each
loss of ``recipes/siamese/``; mean- vs closest-negative training curves; a side-by-side with
sentence-transformers' own ``SentenceTransformerTrainer`` on the same data, loss and hyperparameters; MRPC
duplicate detection.

    HARNESS_DATA_DIR=/work/shared/data HF_HUB_OFFLINE=1 HF_EVALUATE_OFFLINE=1 OMP_NUM_THREADS=1 \\
        .venv/bin/python scripts/bench_siamese.py --work /tmp/siamese [--phases shipped cosine mnrl st_trainer ...]

Phases (default: all, in this order; each result is kept in ``work/bench_siamese.json``, so a later call adds
to it):

* ``shipped``: the checkpoint as shipped — dev / test Spearman of the cosine (no training);
* ``cosine``, ``mnrl``, ``triplet_mean``, ``triplet_closest``, ``triplet_combined``, ``contrastive``: the
  recipe of that name (``recipes/siamese/minilm_stsb_*.yaml``), 1 epoch, 1 seed; ``--train-rows`` caps the
  train split of the scored-pair losses (cosine, contrastive) — the cap is recorded;
  ``triplet_mean`` / ``triplet_closest`` evaluate dev every ``--curve-steps`` steps (the curves);
* ``st_trainer``: ``SentenceTransformerTrainer`` with ``MultipleNegativesRankingLoss`` on exactly the ``mnrl``
  phase's training pairs and hyperparameters (batch 32, lr 2e-5, warm-up 10 %, weight decay 0.01, linear, fp32,
  max 128 tokens, 1 epoch, seed 42) — test Spearman by the same function, tokens/s over the same token count;
* ``mrpc``: ``recipes/siamese/minilm_mrpc_duplicates.yaml`` (``--mrpc-rows`` caps its train split,
  ``--mrpc-epochs`` sets its epochs: dev F1 after each, the best dev checkpoint scored on test);
* ``mrpc_cross``: the cross-encoder on the same pairs — ``recipes/glue_full.yaml data.task=mrpc`` (full fine-tuning,
  ``--cross-epochs`` epochs, the best dev F1 checkpoint), scored on the same labelled 1,725 test pairs
  (this copy's GLUE ``test.tsv`` keeps MRPC's ``Quality`` column) — F1 at the classifier's own decision.

``--plot`` draws ``docs/siamese_mean_vs_closest.png`` from the two curve runs; ``--markdown`` prints the tables.

The loss table (``--seeds 42 43 44 [--epochs 4] [--losses cosine mnrl ...]``, instead of the phases): every loss's
recipe on its full train split for ``--epochs`` epochs, dev evaluated after each epoch and the best dev checkpoint
scored on test, one run per seed in ``work/table/<loss>_e<epochs>_s<seed>``. A run whose ``metrics.json`` is
already there is collected, not repeated (so earlier runs of the same command can be linked in); ``--markdown``
prints mean ± sd over the seeds.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
CHECKPOINT = "sentence-transformers/all-MiniLM-L6-v2"
LOSSES = {"cosine": "minilm_stsb_cosine", "mnrl": "minilm_stsb_mnrl", "triplet_mean": "minilm_stsb_triplet_mean",
          "triplet_closest": "minilm_stsb_triplet_closest", "triplet_combined": "minilm_stsb_triplet_combined",
          "contrastive": "minilm_stsb_contrastive"}
PHASES = ["shipped", *LOSSES, "st_trainer", "mrpc", "mrpc_cross"]
NO_MID_EVAL = "training.eval_steps=100000"  # evaluate once, after the last step


def run(recipe: str, overrides: list[str], out: Path) -> dict:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_EVALUATE_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "harness", "train", recipe, f"output_dir={out}",
                             "training.overwrite=true", *overrides], cwd=REPO, env=env, capture_output=True, text=True)
    (out.parent / f"{out.name}.log").write_text(result.stdout + result.stderr)
    if result.returncode != 0:
        raise SystemExit(f"{recipe} {' '.join(overrides)} failed (log: {out.parent / (out.name + '.log')}):\n"
                         f"{result.stderr[-2000:]}")
    metrics = json.loads((out / "metrics.json").read_text())
    metrics["bench_wall_seconds"] = round(time.perf_counter() - start, 1)
    metrics["overrides"] = overrides
    return metrics


def shipped() -> dict:
    """The checkpoint as shipped, through our builder (its own pooling and Normalize) and our STS metric."""
    import torch

    from harness.data.pairs import sts_benchmark
    from harness.evaluation.embeddings import cosine_rows, sts_metrics
    from harness.models.siamese.builders import siamese

    torch.manual_seed(0)
    task = sts_benchmark()
    model, tokenizer = siamese(task, checkpoint=CHECKPOINT)
    out = {}
    for split in ("validation", "test"):
        ds = task.splits[split]
        a = model.encode(list(ds["text0"]), tokenizer, max_length=128).numpy()
        b = model.encode(list(ds["text1"]), tokenizer, max_length=128).numpy()
        out.update({f"{split}/{k}": v for k, v in sts_metrics(cosine_rows(a, b), ds["label"]).items()})
    return out


def st_trainer(work: Path, seed: int = 42) -> dict:
    """sentence-transformers' trainer on the mnrl phase's pairs and hyperparameters."""
    import torch
    from datasets import Dataset
    from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    from harness.data.pairs import sts_benchmark
    from harness.evaluation.embeddings import cosine_rows, sts_metrics
    from harness.models.pretrained import resolve_checkpoint

    task = sts_benchmark(train_format="positives", positive_threshold=0.8)
    train = task.splits["train"]
    data = Dataset.from_dict({"anchor": train["text0"], "positive": train["text1"]})
    torch.manual_seed(seed)
    model = SentenceTransformer(resolve_checkpoint(CHECKPOINT), device="cpu")
    model.max_seq_length = 128
    tok = model.tokenizer
    tokens = sum(len(ids) for col in ("anchor", "positive")
                 for ids in tok(list(data[col]), truncation=True, max_length=128)["input_ids"])
    args = SentenceTransformerTrainingArguments(
        output_dir=str(work / "st_trainer"), num_train_epochs=1, per_device_train_batch_size=32, learning_rate=2e-5,
        warmup_steps=0.1, weight_decay=0.01, lr_scheduler_type="linear", seed=seed, report_to=[], save_strategy="no",
        logging_steps=10, use_cpu=True, bf16=False, fp16=False, dataloader_drop_last=False)
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=data,
                                         loss=MultipleNegativesRankingLoss(model, scale=20.0))
    output = trainer.train()
    seconds = output.metrics["train_runtime"]
    out = {"train/seconds": seconds, "train/tokens": tokens, "train/tokens_per_second": tokens / seconds,
           "train/global_step": output.global_step}
    for split in ("validation", "test"):
        ds = task.splits[split]
        a = model.encode(list(ds["text0"]), batch_size=64, convert_to_numpy=True)
        b = model.encode(list(ds["text1"]), batch_size=64, convert_to_numpy=True)
        out.update({f"{split}/{k}": float(v) for k, v in sts_metrics(cosine_rows(a, b), ds["label"]).items()})
    return out


def curves(run_dir: Path) -> tuple[list, list]:
    rows = [json.loads(line) for line in (run_dir / "logs" / "history.jsonl").read_text().splitlines() if line]
    loss = [(r["step"], r["loss"]) for r in rows if "loss" in r]
    dev = [(r["step"], r["eval"]["validation/spearman"]) for r in rows if "validation/spearman" in r.get("eval", {})]
    return loss, dev


def plot(work: Path, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
    for name, style in (("triplet_mean", "-o"), ("triplet_closest", "-s")):
        loss, dev = curves(work / name)
        label = name.replace("triplet_", "") + " negative"
        ax1.plot(*zip(*loss), style, label=label, markersize=3)
        ax2.plot(*zip(*dev), style, label=label, markersize=4)
    ax1.set(xlabel="optimizer step", ylabel="training loss (per log window)", title="triplet loss")
    ax2.set(xlabel="optimizer step", ylabel="dev Spearman (cosine)", title="STS-B dev")
    for ax in (ax1, ax2):
        ax.legend()
        ax.grid(alpha=0.3)
    fig.suptitle("all-MiniLM-L6-v2 on STS-B pairs scored >= 4: mean vs closest in-batch negative (1 epoch)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def table(work: Path, seeds: list[int], epochs: int, losses: list[str], changes: list[str] = (),
          tag: str = "") -> dict:
    """One run per (loss, seed) at ``epochs`` epochs, dev after every epoch, the best dev checkpoint on test;
    ``changes`` (recipe overrides, e.g. ``loss.margin=0.9``) apply to every run, ``tag`` names them."""
    rows = {}
    for seed in seeds:
        for loss in losses:
            out = work / "table" / f"{loss}_e{epochs}{tag}_s{seed}"
            if not (out / "metrics.json").is_file():
                print(f"[{time.strftime('%H:%M:%S')}] table: {loss} seed {seed} ...", flush=True)
                out.parent.mkdir(parents=True, exist_ok=True)
                run(f"recipes/siamese/{LOSSES[loss]}.yaml",
                    [f"seed={seed}", f"training.num_epochs={epochs}", "training.eval_steps=null", *changes], out)
            metrics = json.loads((out / "metrics.json").read_text())
            rows[f"{loss}/{seed}"] = {k: metrics[k] for k in ("validation/spearman", "test/spearman", "test/pearson",
                                                              "train/seconds", "train/global_step", "train/best_step")}
            print(f"[{time.strftime('%H:%M:%S')}] table: {loss} seed {seed}: test Spearman "
                  f"{100 * metrics['test/spearman']:.2f}", flush=True)
    return rows


def table_markdown(rows: dict, epochs: int) -> str:
    import statistics

    lines = [f"| loss ({epochs} epochs, best dev epoch) | seeds | dev Spearman | test Spearman | test Pearson | "
             "per seed (test Spearman) | train min / run |", "|---|---:|---:|---:|---:|---|---:|"]
    for loss in LOSSES:
        runs = [(key.split("/")[1], r) for key, r in rows.items() if key.split("/")[0] == loss]
        if not runs:
            continue

        def stat(key: str) -> str:
            values = [100 * r[key] for _, r in runs]
            sd = statistics.stdev(values) if len(values) > 1 else 0.0
            return f"{statistics.mean(values):.2f} ± {sd:.2f}"

        per_seed = ", ".join(f"{seed}: {100 * r['test/spearman']:.2f}" for seed, r in runs)
        minutes = statistics.mean(r["train/seconds"] for _, r in runs) / 60
        lines.append(f"| {loss} | {len(runs)} | {stat('validation/spearman')} | {stat('test/spearman')} | "
                     f"{stat('test/pearson')} | {per_seed} | {minutes:.1f} |")
    return "\n".join(lines)


def markdown(results: dict) -> str:
    lines = ["| model / loss | train rows | steps | dev Spearman | test Spearman | test Pearson | train s | tokens/s |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    if "shipped" in results:
        r = results["shipped"]
        lines.append(f"| as shipped (no training) | 0 | 0 | {100 * r['validation/spearman']:.2f} | "
                     f"{100 * r['test/spearman']:.2f} | {100 * r['test/pearson']:.2f} | – | – |")
    for name in [*LOSSES, "st_trainer"]:
        if name not in results:
            continue
        r = results[name]
        rows = r.get("train_rows", "")
        lines.append(f"| {name} | {rows} | {r['train/global_step']} | {100 * r['validation/spearman']:.2f} | "
                     f"{100 * r['test/spearman']:.2f} | {100 * r['test/pearson']:.2f} | {r['train/seconds']:.0f} | "
                     f"{r['train/tokens_per_second']:.0f} |")
    if "mrpc" in results or "mrpc_cross" in results:
        lines += ["", "| MRPC (all-MiniLM-L6-v2) | train rows | epochs | dev F1 | test F1 | test accuracy | decision |",
                  "|---|---:|---:|---:|---:|---:|---|"]
    if "mrpc" in results:
        r = results["mrpc"]
        lines.append(f"| bi-encoder, contrastive | {r.get('train_rows', '')} | {r.get('epochs', 1)} | "
                     f"{100 * r['validation/f1']:.2f} | {100 * r['test/f1']:.2f} | {100 * r['test/accuracy']:.2f} | "
                     f"cosine ≥ {r['test/f1_threshold']:.3f} (best F1 on dev) |")
    if "mrpc_cross" in results:
        r = results["mrpc_cross"]
        lines.append(f"| cross-encoder, full fine-tuning | 3668 | {r.get('epochs', '')} | {100 * r['validation/f1']:.2f} | "
                     f"{100 * r['test/f1']:.2f} | {100 * r['test/accuracy']:.2f} | argmax of the classifier |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--work", type=Path, default=Path("/tmp/siamese"))
    p.add_argument("--phases", nargs="*", choices=PHASES, default=PHASES)
    p.add_argument("--train-rows", type=int, default=None, help="cap the scored-pair losses' train split")
    p.add_argument("--mrpc-rows", type=int, default=None, help="cap MRPC's train split")
    p.add_argument("--mrpc-epochs", type=int, default=1, help="the MRPC bi-encoder's epochs")
    p.add_argument("--cross-epochs", type=int, default=5, help="the MRPC cross-encoder's epochs")
    p.add_argument("--curve-steps", type=int, default=11, help="dev evaluation interval of the two curve runs")
    p.add_argument("--plot", action="store_true")
    p.add_argument("--markdown", action="store_true")
    p.add_argument("--seeds", type=int, nargs="+", help="run the loss table (one run per loss and seed) instead of "
                                                         "the phases")
    p.add_argument("--epochs", type=int, default=4, help="the loss table's epochs")
    p.add_argument("--losses", nargs="+", choices=list(LOSSES), default=list(LOSSES), help="the loss table's losses")
    p.add_argument("--set", dest="changes", nargs="+", default=[], metavar="key.path=value",
                   help="recipe overrides for every run of the loss table (its rows are kept apart by --tag)")
    p.add_argument("--tag", default="", help="names a loss table run with --set (e.g. _m0.9)")
    args = p.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    store = args.work / "bench_siamese.json"
    results = json.loads(store.read_text()) if store.is_file() else {}
    if args.seeds:
        if args.changes and not args.tag:
            raise SystemExit("--set needs --tag (the runs with changes are kept apart from the plain table)")
        key = f"table_e{args.epochs}{args.tag}"
        rows = {**results.get(key, {}), **table(args.work, args.seeds, args.epochs, args.losses, args.changes, args.tag)}
        results[key] = rows
        store.write_text(json.dumps(results, indent=2))
        if args.markdown:
            print(table_markdown(rows, args.epochs))
        return
    for phase in args.phases:
        start = time.perf_counter()
        print(f"[{time.strftime('%H:%M:%S')}] {phase} ...", flush=True)
        if phase == "shipped":
            results[phase] = shipped()
        elif phase == "st_trainer":
            results[phase] = {**st_trainer(args.work), "train_rows": results.get("mnrl", {}).get("train_rows")}
        elif phase == "mrpc":
            overrides = [NO_MID_EVAL] if args.mrpc_epochs == 1 else [f"training.num_epochs={args.mrpc_epochs}",
                                                                     "training.eval_steps=null"]
            overrides += [f"data.max_train_rows={args.mrpc_rows}"] if args.mrpc_rows else []
            results[phase] = {**run("recipes/siamese/minilm_mrpc_duplicates.yaml", overrides, args.work / phase),
                              "train_rows": args.mrpc_rows or 3668, "epochs": args.mrpc_epochs}
        elif phase == "mrpc_cross":
            overrides = ["data.task=mrpc", f"training.num_epochs={args.cross_epochs}", "training.eval_steps=null",
                         "evaluation.splits=[validation,test]", "evaluation.metric_for_best=f1"]
            results[phase] = {**run("recipes/glue_full.yaml", overrides, args.work / phase),
                              "epochs": args.cross_epochs}
        else:
            overrides = []
            if phase in ("triplet_mean", "triplet_closest"):
                overrides += [f"training.eval_steps={args.curve_steps}", "evaluation.at_start=true",
                              "training.log_steps=4", "evaluation.load_best_at_end=false"]
            else:
                overrides.append(NO_MID_EVAL)
            scored = phase in ("cosine", "contrastive")
            if scored and args.train_rows:
                overrides.append(f"data.max_train_rows={args.train_rows}")
            metrics = run(f"recipes/siamese/{LOSSES[phase]}.yaml", overrides, args.work / phase)
            rows = (args.train_rows or 5749) if scored else 1406
            results[phase] = {**metrics, "train_rows": rows}
        results[phase]["phase_seconds"] = round(time.perf_counter() - start, 1)
        store.write_text(json.dumps(results, indent=2))
        print(f"[{time.strftime('%H:%M:%S')}] {phase} done in {results[phase]['phase_seconds']} s: "
              + ", ".join(f"{k}={v:.4f}" for k, v in results[phase].items()
                          if isinstance(v, float) and ("spearman" in k or "/f1" in k)), flush=True)
    if args.plot:
        plot(args.work, REPO / "docs" / "siamese_mean_vs_closest.png")
    if args.markdown:
        print(markdown(results))


if __name__ == "__main__":
    main()
