"""How sharp is a recurrent encoder-decoder's cross-attention? A diagnostic for docs/benchmarks.md (Multi30k part 7).

Two modes, both on Multi30k De→En (``$HARNESS_DATA_DIR/multi30k``) and the first 128 validation pairs, teacher-forced:

* ``inspect RUN...``: a finished ``harness train`` run's model (``RUN/model``): validation loss, the mean largest
  attention weight per target step, the weight on the last real source token (``[SEP]``) and the mean entropy
  (nats; a uniform distribution over the source would have the ``uniform`` figure).
* ``train``: a fresh ``RNNSeq2SeqForConditionalGeneration`` at hidden 256 (the reduced CPU setting) trained with a
  plain loop at the recipe's optimizer settings (AdamW lr 1e-3, batch 64, label smoothing 0.1, clipping 1.0, linear
  decay to 0 at step 1,362 — the 3 reduced epochs —, ``--warmup`` steps of linear warm-up), printing the same figures every ``--every`` steps.
  It needs a trained joint tokenizer: ``--tokenizer RUN/model`` of any Multi30k run.

    HARNESS_DATA_DIR=../shared/data OMP_NUM_THREADS=1 python scripts/probe_attention.py train \\
        --tokenizer /tmp/s2s/luong_de-en_seed1/model --attention luong --no-scale --steps 200
    python scripts/probe_attention.py inspect /tmp/s2s/luong_de-en_seed1 /tmp/s2s/bahdanau_de-en_seed1
"""

from __future__ import annotations

import argparse
import os
import random
import time
from pathlib import Path

import torch
import torch.nn.functional as F


def data(name: str, n: int | None = None) -> tuple[list[str], list[str]]:
    from harness.data.seq2seq import read_parallel

    root = Path(os.environ.get("HARNESS_DATA_DIR", "../shared/data")) / "multi30k"
    src, tgt = read_parallel(root / f"{name}.de", root / f"{name}.en")
    return src[:n], tgt[:n]


def encode(tok, src: list[str], tgt: list[str]):
    enc = tok(src, return_tensors="pt", padding=True, truncation=True, max_length=128)
    lab = tok(tgt, return_tensors="pt", padding=True, truncation=True, max_length=128)
    return enc.input_ids, enc.attention_mask, lab.input_ids.masked_fill(lab.attention_mask == 0, -100)


@torch.no_grad()
def sharpness(model, batch) -> str:
    """The validation batch's loss and its attention's sharpness, over real target steps."""
    was_training = model.training
    model.eval()
    ids, mask, labels = batch
    out = model(input_ids=ids, attention_mask=mask, labels=labels, output_attentions=True)
    model.train(was_training)
    weights = out.cross_attentions[0][:, 0]  # (B, T, S)
    steps = labels != -100
    entropy = -(weights.clamp_min(1e-12).log() * weights).sum(-1)
    last = weights[torch.arange(weights.shape[0]), :, mask.sum(-1) - 1]
    uniform = torch.log(mask.sum(-1).float()).mean()
    return (f"val loss {out.loss.item():.3f}  max weight {weights.max(-1).values[steps].mean():.3f}  "
            f"on [SEP] {last[steps].mean():.3f}  entropy {entropy[steps].mean():.3f} (uniform {uniform:.3f})")


def train(args) -> None:
    from transformers import AutoTokenizer

    from harness.models.rnn_seq2seq.modeling_rnn_seq2seq import RNNSeq2SeqConfig, RNNSeq2SeqForConditionalGeneration

    torch.manual_seed(args.seed)
    random.seed(args.seed)
    tok = AutoTokenizer.from_pretrained(args.tokenizer)
    config = RNNSeq2SeqConfig(vocab_size=len(tok), embedding_size=256, hidden_size=args.hidden, attention=args.attention,
                              luong_score=args.score, scale_scores=not args.no_scale, dropout=0.3,
                              pad_token_id=tok.pad_token_id, bos_token_id=tok.cls_token_id,
                              eos_token_id=tok.sep_token_id, decoder_start_token_id=tok.cls_token_id)
    model = RNNSeq2SeqForConditionalGeneration(config).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.0)
    src, tgt = data("train")
    validation = encode(tok, *data("val", 128))
    order = list(range(len(src)))
    random.shuffle(order)
    start = time.perf_counter()
    per_epoch = len(order) // 64
    for step in range(1, args.steps + 1):
        if step > 1 and (step - 1) % per_epoch == 0:
            random.shuffle(order)  # a new epoch
        rows = order[(step - 1) % per_epoch * 64: ((step - 1) % per_epoch + 1) * 64]
        ids, mask, labels = encode(tok, [src[i] for i in rows], [tgt[i] for i in rows])
        logits = model(input_ids=ids, attention_mask=mask, labels=labels).logits
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100,
                               label_smoothing=0.1)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        for group in optimizer.param_groups:
            group["lr"] = args.lr * min(1.0, step / max(args.warmup, 1)) * max(0.0, 1 - step / 1362)
        optimizer.step()
        if step % args.every == 0:
            print(f"step {step}  train loss {loss.item():.3f}  {sharpness(model, validation)}  "
                  f"({time.perf_counter() - start:.0f} s)", flush=True)


def inspect(args) -> None:
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    for run in args.runs:
        tok = AutoTokenizer.from_pretrained(f"{run}/model")
        model = AutoModelForSeq2SeqLM.from_pretrained(f"{run}/model")
        print(f"{run}: {sharpness(model, encode(tok, *data('val', 128)))}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    modes = parser.add_subparsers(dest="mode", required=True)
    t = modes.add_parser("train")
    t.add_argument("--tokenizer", required=True, help="a Multi30k run's model folder (its tokenizer.json)")
    t.add_argument("--attention", choices=("bahdanau", "luong"), default="luong")
    t.add_argument("--score", choices=("dot", "general"), default="general")
    t.add_argument("--no-scale", action="store_true", help="Luong's scores unscaled (config.scale_scores=false)")
    t.add_argument("--hidden", type=int, default=256)
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--warmup", type=int, default=0)
    t.add_argument("--steps", type=int, default=200)
    t.add_argument("--every", type=int, default=25)
    t.add_argument("--seed", type=int, default=1)
    i = modes.add_parser("inspect")
    i.add_argument("runs", nargs="+", help="harness train output folders (with model/)")
    args = parser.parse_args()
    from harness.registry import load_models

    load_models()
    (train if args.mode == "train" else inspect)(args)


if __name__ == "__main__":
    main()
