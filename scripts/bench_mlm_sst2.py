#!/usr/bin/env python
"""Does masked-LM pretraining help? The small encoder of ``recipes/transformer/mlm_small_ptb.yaml`` fine-tuned on
SST-2 (``recipes/transformer/sst2_from_mlm.yaml``) from its MLM-pretrained weights and from random init.

    HARNESS_DATA_DIR=/work/shared/data HF_HUB_OFFLINE=1 HF_EVALUATE_OFFLINE=1 OMP_NUM_THREADS=1 \\
        .venv/bin/python scripts/bench_mlm_sst2.py --work /tmp/mlm_sst2 [--objective span] [--hidden 128 --layers 2]

1. pretrain: ``harness train mlm_small_ptb.yaml`` (``--objective``, size and epoch overrides; ``--corpus sst2``:
   on SST-2's training sentences instead of PTB's) → ``work/mlm/model``;
2. the random-init twin: the same config and tokenizer, fresh weights (``TransformerForMaskedLM(config)``, seed 0),
   saved to ``work/random/model`` — so the two fine-tunes differ in the encoder's starting weights only;
3. fine-tune both with ``sst2_from_mlm.yaml`` (same seed, data order, schedule), ``model.checkpoint`` = each folder.

Prints the SST-2 validation accuracy of both, their difference, and the pretraining's masked-token perplexity;
writes ``work/bench_mlm_sst2.json``. Sizes default to a CPU budget (2 × 128 encoder, 2 pretraining epochs, 1
fine-tuning epoch); the recipes' own sizes (4 × 256, 4 epochs) are ``--hidden 256 --layers 4 --heads 4
--pretrain-epochs 4 --finetune-epochs 2``.
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


def harness_train(recipe: str, overrides: list[str], log: Path) -> dict:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_EVALUATE_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "harness", "train", recipe, *overrides], cwd=REPO, env=env,
                            capture_output=True, text=True)
    log.write_text(result.stdout + result.stderr)
    if result.returncode != 0:
        raise SystemExit(f"{recipe} failed (log: {log}):\n{result.stderr[-2000:]}")
    out = next(o.split("=", 1)[1] for o in overrides if o.startswith("output_dir="))
    metrics = json.loads((Path(out) / "metrics.json").read_text())
    metrics["bench_wall_seconds"] = round(time.perf_counter() - start, 1)
    return metrics


def random_twin(pretrained: Path, target: Path) -> None:
    import torch
    from transformers import AutoConfig, AutoTokenizer

    from harness import registry

    registry.load_models()
    from harness.models.transformer.modeling_transformer import TransformerForMaskedLM

    torch.manual_seed(0)
    TransformerForMaskedLM(AutoConfig.from_pretrained(pretrained)).save_pretrained(target)
    AutoTokenizer.from_pretrained(pretrained).save_pretrained(target)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", required=True)
    parser.add_argument("--objective", choices=("mlm", "span"), default="mlm")
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--heads", type=int, default=2)
    parser.add_argument("--pretrain-epochs", type=float, default=2)
    parser.add_argument("--finetune-epochs", type=float, default=1)
    parser.add_argument("--corpus", choices=("ptb", "sst2"), default="ptb",
                        help="pretraining text: PTB train (the recipe's), or SST-2's own training sentences without "
                             "their labels (task-adaptive pretraining, Gururangan et al. 2020; dev sentences evaluate)")
    args = parser.parse_args()
    work = Path(args.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    corpus = []
    if args.corpus == "sst2":
        from harness.data.glue import glue

        task = glue(task="sst2")
        for split, name in (("train", "sst2_train.txt"), ("validation", "sst2_dev.txt")):
            (work / name).write_text("\n".join(task.splits[split]["sentence"]) + "\n")
        corpus = [f"data.train_file={work / 'sst2_train.txt'}", f"data.validation_file={work / 'sst2_dev.txt'}"]
    size = [f"model.hidden_size={args.hidden}", f"model.num_layers={args.layers}", f"model.num_heads={args.heads}"]
    pre = harness_train("recipes/transformer/mlm_small_ptb.yaml",
                        [f"output_dir={work / 'mlm'}", "training.overwrite=true", f"data.objective={args.objective}",
                         f"training.num_epochs={args.pretrain_epochs}", *size, *corpus], work / "mlm.log")
    random_twin(work / "mlm" / "model", work / "random" / "model")
    results = {"pretraining": {k: pre[k] for k in pre if k.startswith("validation/") or k == "bench_wall_seconds"}}
    for name, folder in (("pretrained", work / "mlm" / "model"), ("random_init", work / "random" / "model")):
        m = harness_train("recipes/transformer/sst2_from_mlm.yaml",
                          [f"output_dir={work / ('sst2_' + name)}", "training.overwrite=true",
                           f"model.checkpoint={folder}", f"training.num_epochs={args.finetune_epochs}"],
                          work / f"sst2_{name}.log")
        results[name] = {"validation/accuracy": m["validation/accuracy"], "bench_wall_seconds": m["bench_wall_seconds"]}
    results["difference"] = results["pretrained"]["validation/accuracy"] - results["random_init"]["validation/accuracy"]
    results["args"] = vars(args)
    (work / "bench_mlm_sst2.json").write_text(json.dumps(results, indent=2))
    print(f"MLM ({args.objective}) pretraining on {args.corpus} text, {args.layers} x {args.hidden}: validation masked-token "
          f"perplexity {pre['validation/perplexity']:.2f} ({results['pretraining']['bench_wall_seconds']:.0f} s)")
    for name in ("pretrained", "random_init"):
        print(f"  SST-2 validation accuracy, {name:11s}: {results[name]['validation/accuracy']:.4f}")
    print(f"  pretraining helps by {results['difference']:+.4f}")


if __name__ == "__main__":
    main()
