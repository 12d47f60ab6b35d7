#!/usr/bin/env python
"""The Multi30k table: each seq2seq variant trained with its recipe, its ``test_2016_flickr`` sacreBLEU / chrF
(detokenized, signature recorded) collected per seed, mean ± sample std over seeds, and the training time per epoch.

    HARNESS_DATA_DIR=/work/shared/data HF_HUB_OFFLINE=1 HF_EVALUATE_OFFLINE=1 OMP_NUM_THREADS=1 \\
        .venv/bin/python scripts/bench_seq2seq.py --work /tmp/s2s --variants bahdanau luong --seeds 1 2 3

Variants (``--variants``; default all):

* ``none``: the recurrent encoder-decoder without attention (``bahdanau_multi30k.yaml model.attention=none``);
* ``bahdanau``: pre-attention (``recipes/seq2seq/bahdanau_multi30k.yaml``);
* ``luong``: post-attention, general score, input feeding (the same recipe, ``model.attention=luong``);
* ``luong_deep``: the same with the deep output (the output layer also reads the previous token's embedding);
* ``bahdanau_ss``: Bahdanau with scheduled sampling (``bahdanau_multi30k_scheduled_sampling.yaml``);
* ``bahdanau_pf``: Bahdanau with professor forcing (``bahdanau_multi30k_professor_forcing.yaml``);
* ``transformer``: the from-scratch Transformer encoder-decoder (``recipes/transformer/transformer_multi30k.yaml``).

``--direction en-de`` swaps the languages. The recipes' own sizes and epochs are the defaults; ``--epochs``,
``--rnn-hidden`` and ``--beams`` shrink a run to a CPU budget (the sizes used go into the JSON and the table, so a
reduced run is never mistaken for the recipe's). Each run evaluates ``validation`` and ``test_2016_flickr``
and selects the model on the validation split every epoch; ``--no-select`` evaluates once, after the last step.
Writes ``work/bench_seq2seq.json`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent

VARIANTS = {
    "none": ("recipes/seq2seq/bahdanau_multi30k.yaml", ["model.attention=none"]),
    "bahdanau": ("recipes/seq2seq/bahdanau_multi30k.yaml", []),
    "luong": ("recipes/seq2seq/bahdanau_multi30k.yaml", ["model.attention=luong", "model.luong_score=general",
                                                         "model.input_feeding=true"]),
    "luong_deep": ("recipes/seq2seq/bahdanau_multi30k.yaml", ["model.attention=luong", "model.luong_score=general",
                                                              "model.input_feeding=true", "model.deep_output=true"]),
    "bahdanau_ss": ("recipes/seq2seq/bahdanau_multi30k_scheduled_sampling.yaml", []),
    "bahdanau_pf": ("recipes/seq2seq/bahdanau_multi30k_professor_forcing.yaml", []),
    "transformer": ("recipes/transformer/transformer_multi30k.yaml", []),
}


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
    return metrics


def epoch_seconds(out: Path, epochs: float) -> float | None:
    """Training seconds per epoch from the run's throughput log (evaluation excluded)."""
    path = next(out.rglob("throughput.jsonl"), None)
    if path is None:
        return None
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return round(rows[-1]["seconds"] / epochs, 1) if rows else None


def recipe_epochs(out: Path) -> float | None:
    """``training.num_epochs`` of the recipe the run wrote (its own, when ``--epochs`` was not given)."""
    recipe = yaml.safe_load((out / "recipe.yaml").read_text()) or {}
    return (recipe.get("training") or {}).get("num_epochs")


def bleu_signature(out: Path) -> str | None:
    """sacreBLEU's BLEU signature, from the run's report (``| bleu signature | nrefs:1\\|case:mixed... |``)."""
    for line in (out / "report.md").read_text().splitlines():
        if line.startswith("| bleu signature |"):
            return line.split("|", 2)[2].rsplit("|", 1)[0].strip().replace("\\|", "|")
    return None


def summary(values: list[float]) -> str:
    if not values:
        return "—"
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", required=True)
    parser.add_argument("--variants", nargs="+", choices=tuple(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument("--direction", choices=("de-en", "en-de"), default="de-en")
    parser.add_argument("--epochs", type=float, help="training.num_epochs (default: the recipe's)")
    parser.add_argument("--rnn-hidden", type=int, help="model.hidden_size of the RNN variants (default: the recipe's)")
    parser.add_argument("--beams", type=int, help="generation.num_beams (default: the recipe's)")
    parser.add_argument("--override", nargs="*", default=[], metavar="KEY=VALUE",
                        help="more recipe overrides for every run (recorded with the results)")
    parser.add_argument("--no-select", action="store_true",
                        help="evaluate validation only at the end (no per-epoch decoding): faster on a CPU")
    args = parser.parse_args()
    work = Path(args.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    source, target = args.direction.split("-")
    split = "test_2016_flickr"
    results = {"args": vars(args), "runs": {}}
    for variant in args.variants:
        recipe, extra = VARIANTS[variant]
        common = [f"data.source_lang={source}", f"data.target_lang={target}", *extra]
        if args.epochs is not None:
            common.append(f"training.num_epochs={args.epochs}")
        if args.rnn_hidden is not None and variant != "transformer":
            common.append(f"model.hidden_size={args.rnn_hidden}")
        if args.beams is not None:
            common.append(f"generation.num_beams={args.beams}")
        if args.no_select:
            common.append("training.eval_steps=1000000000")
        common += args.override
        for seed in args.seeds:
            out = work / f"{variant}_{args.direction}_seed{seed}"
            metrics = run(recipe, [*common, f"seed={seed}"], out)
            epochs = args.epochs if args.epochs is not None else recipe_epochs(out)
            row = {"bleu": metrics.get(f"{split}/bleu"), "chrf": metrics.get(f"{split}/chrf"),
                   "validation_bleu": metrics.get("validation/bleu"),
                   "signature": bleu_signature(out),
                   "epoch_seconds": epoch_seconds(out, epochs) if epochs else None,
                   "wall_seconds": metrics["bench_wall_seconds"], "overrides": common}
            results["runs"].setdefault(variant, []).append(row)
            print(f"{variant} seed {seed}: {split} BLEU {row['bleu']}, chrF {row['chrf']} "
                  f"({row['wall_seconds']:.0f} s)", flush=True)
            (work / "bench_seq2seq.json").write_text(json.dumps(results, indent=2))
    print(f"\n| model ({args.direction}, {split}) | sacreBLEU | chrF | s / epoch (train) | seeds |\n|---|---|---|---|---|")
    for variant, rows in results["runs"].items():
        bleu = [r["bleu"] for r in rows if r["bleu"] is not None]
        chrf = [r["chrf"] for r in rows if r["chrf"] is not None]
        secs = [r["epoch_seconds"] for r in rows if r["epoch_seconds"] is not None]
        print(f"| {variant} | {summary(bleu)} | {summary(chrf)} | {summary(secs)} | {len(rows)} |")
    signatures = {r["signature"] for rows in results["runs"].values() for r in rows if r["signature"]}
    for signature in sorted(signatures):
        print(f"\nsacreBLEU signature: {signature}")


if __name__ == "__main__":
    main()
