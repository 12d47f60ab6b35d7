#!/usr/bin/env python
"""Speed of our from-scratch decoder (``TransformerForCausalLM``) against ``transformers``' ``GPT2LMHeadModel`` of the
same shape: training tokens/s, generation tokens/s, and (on a GPU) model FLOPs utilisation through the harness's
own loop.

    # CPU (the 2-core box): a small GPT-2-shaped pair, fp32
    OMP_NUM_THREADS=2 .venv/bin/python scripts/bench_transformer.py --preset cpu
    # one H100 (≤ 8 min): GPT-2-124M shape, bf16, B16 × T1024, compiled; adds the harness-loop run
    python scripts/bench_transformer.py --preset h100 --out $OUT

Same shape means: vocabulary, width, depth, heads, context, GELU (tanh approximation), pre-LN, learned
positions, tied embeddings, biases everywhere — the parameter counts are printed and must be equal. Both models
run in one process, alternately (ours then HF, HF then ours, … for ``--rounds``), each step being forward (loss from
``labels``) → backward → fused AdamW step, on the same random token batches; the median tokens/s per model and
the ratio ours / HF are reported (goal ≥ 1.0). HF's model runs with ``attn_implementation="sdpa"`` (its fastest
built-in attention). ``--compile`` compiles both.

Generation: greedy ``generate`` with the KV cache (``DynamicCache`` for both), ``--gen-batch`` prompts of
``--gen-prompt`` tokens, ``--gen-new`` new tokens (no early stop: ``min_new_tokens`` = ``max_new_tokens``), tokens/s
= new tokens / seconds, alternating as above.

MFU (GPU only): achieved FLOP/s / peak, with nanoGPT's count per token ``6 N + 12 L H Q T`` (N parameters without
the position table, L layers, H heads, Q head width, T context) and the card's dense bf16 peak (``--peak-tflops``,
default 989.4 for an H100 SXM). The harness-loop run is ``harness train`` on a generated word corpus with the same
model through the ``transformer`` builder, ``training.compile: true``, ``mixed_precision: bf16``; its tokens/s are
the loop's own ``logs/throughput.jsonl`` windows after the first two (compilation).

Writes ``bench_transformer.json`` (to ``--out``) and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

PRESETS = {
    "cpu": dict(vocab=8192, d=256, layers=4, heads=4, T=256, B=8, dtype="float32", steps=6, rounds=3,
                gen_batch=4, gen_prompt=32, gen_new=64, compile=False, harness=False, harness_steps=0),
    "h100": dict(vocab=50304, d=768, layers=12, heads=12, T=1024, B=16, dtype="bfloat16", steps=20, rounds=3,
                 gen_batch=16, gen_prompt=128, gen_new=256, compile=True, harness=True, harness_steps=80),
    "tiny": dict(vocab=512, d=32, layers=2, heads=2, T=32, B=2, dtype="float32", steps=2, rounds=1,
                 gen_batch=2, gen_prompt=4, gen_new=4, compile=False, harness=True, harness_steps=6),
}


def models(p, device, dtype):
    from transformers import GPT2Config, GPT2LMHeadModel

    from harness.models.transformer.configuration_transformer import TransformerConfig
    from harness.models.transformer.modeling_transformer import TransformerForCausalLM

    ours = TransformerForCausalLM(TransformerConfig(
        vocab_size=p["vocab"], hidden_size=p["d"], num_hidden_layers=p["layers"], num_attention_heads=p["heads"],
        intermediate_size=4 * p["d"], hidden_act="gelu_new", max_position_embeddings=p["T"], norm_position="pre",
        position_embedding_type="learned", hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
        layer_norm_eps=1e-5, is_decoder=True, pad_token_id=0, bos_token_id=1, eos_token_id=2))
    hf = GPT2LMHeadModel(GPT2Config(
        vocab_size=p["vocab"], n_embd=p["d"], n_layer=p["layers"], n_head=p["heads"], n_positions=p["T"],
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, pad_token_id=0, bos_token_id=1, eos_token_id=2,
        attn_implementation="sdpa"))
    return {"ours": ours.to(device=device, dtype=dtype), "hf": hf.to(device=device, dtype=dtype)}


def count(model) -> int:
    return sum(p.numel() for p in model.parameters())


def flops_per_token(p, params: int) -> float:
    n = params - p["T"] * p["d"]  # nanoGPT leaves the position table out
    return 6 * n + 12 * p["layers"] * p["heads"] * (p["d"] // p["heads"]) * p["T"]


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def train_rate(model, p, device, steps: int, warmup: int = 2) -> float:
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)
    g = torch.Generator().manual_seed(0)
    batches = [torch.randint(3, p["vocab"], (p["B"], p["T"]), generator=g).to(device) for _ in range(4)]

    def one(i):
        ids = batches[i % len(batches)]
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for i in range(warmup):
        one(i)
    sync(device)
    start = time.perf_counter()
    for i in range(steps):
        one(i)
    sync(device)
    return steps * p["B"] * p["T"] / (time.perf_counter() - start)


@torch.no_grad()
def generation_rate(model, p, device) -> float:
    model.eval()
    g = torch.Generator().manual_seed(1)
    prompts = torch.randint(3, p["vocab"], (p["gen_batch"], p["gen_prompt"]), generator=g).to(device)
    kwargs = dict(max_new_tokens=p["gen_new"], min_new_tokens=p["gen_new"], do_sample=False, pad_token_id=0)
    model.generate(prompts[:, :8], **{**kwargs, "max_new_tokens": 4, "min_new_tokens": 4})  # warm-up
    sync(device)
    start = time.perf_counter()
    out = model.generate(prompts, **kwargs)
    sync(device)
    assert out.shape[1] == p["gen_prompt"] + p["gen_new"]
    return p["gen_batch"] * p["gen_new"] / (time.perf_counter() - start)


def harness_loop_rate(p, out: Path) -> dict:
    """``harness train`` with the same model shape on a generated word corpus (compiled, bf16 on a GPU)."""
    work = Path(tempfile.mkdtemp(prefix="bench_transformer_"))
    rng = random.Random(0)
    words = [f"w{i}" for i in range(p["vocab"] - 5)]  # + 5 special tokens = the vocabulary
    tokens_needed = (p["harness_steps"] + 2) * p["B"] * p["T"]
    lines, total = [" ".join(words)], len(words)  # every word once, so the vocabulary is complete
    while total < tokens_needed:
        line = " ".join(rng.choice(words) for _ in range(200))
        lines.append(line)
        total += 200
    (work / "train.txt").write_text("\n".join(lines) + "\n")
    cuda = torch.cuda.is_available()
    recipe = {
        "output_dir": str(work / "run"), "seed": 0,
        "data": {"component": "lm_text", "train_file": str(work / "train.txt")},
        "model": {"component": "transformer", "hidden_size": p["d"], "num_layers": p["layers"], "num_heads": p["heads"],
                  "activation": "gelu_new", "dropout": 0.0, "max_position_embeddings": p["T"], "norm": "pre",
                  "tokenizer": "word"},
        "training": {"lr": 6e-4, "batch_size": p["B"], "max_length": p["T"], "max_steps": p["harness_steps"],
                     "log_steps": max(1, p["harness_steps"] // 8), "warmup_steps": 0, "max_grad_norm": 1.0,
                     "mixed_precision": "bf16" if cuda else "no", "compile": bool(p["compile"] and cuda),
                     "save_steps": 10**9},
        "evaluation": {"load_best_at_end": False},
        "tracking": {"report_to": []},
    }
    import yaml

    (work / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_EVALUATE_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "harness", "train", str(work / "recipe.yaml")], cwd=REPO, env=env,
                            capture_output=True, text=True)
    (out / "harness_train.log").write_text(result.stdout + result.stderr)
    if result.returncode != 0:
        return {"error": (result.stderr or result.stdout)[-2000:]}
    rows = [json.loads(line) for line in (work / "run" / "logs" / "throughput.jsonl").read_text().splitlines()]
    # rows hold cumulative tokens and seconds: the steady rate is the slope after the second row (compilation)
    first, last = (rows[1], rows[-1]) if len(rows) > 3 else (None, rows[-1])
    if first is None:
        rate = last["tokens"] / last["seconds"]
    else:
        rate = (last["tokens"] - first["tokens"]) / (last["seconds"] - first["seconds"])
    return {"tokens_per_s": rate, "rows": rows, "wall_s": time.perf_counter() - started}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), default="cpu")
    parser.add_argument("--out", default=".")
    parser.add_argument("--peak-tflops", type=float, default=989.4)
    parser.add_argument("--compile", action="store_true", help="compile both models (default: the preset's)")
    parser.add_argument("--rounds", type=int, help="alternating rounds per model (default: the preset's)")
    args = parser.parse_args()
    p = dict(PRESETS[args.preset])
    p["compile"] = p["compile"] or args.compile
    p["rounds"] = args.rounds or p["rounds"]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = getattr(torch, p["dtype"]) if device.type == "cuda" else torch.float32
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    torch.manual_seed(0)
    built = models(p, device, dtype)
    params = {k: count(m) for k, m in built.items()}
    if params["ours"] != params["hf"]:
        raise SystemExit(f"shapes differ: {params}")
    trainable = {k: (torch.compile(m) if p["compile"] else m) for k, m in built.items()}
    rates: dict[str, list[float]] = {"ours": [], "hf": []}
    gen: dict[str, list[float]] = {"ours": [], "hf": []}
    orders = [("ours", "hf"), ("hf", "ours")]  # who goes first alternates between rounds
    for r in range(p["rounds"]):
        for name in orders[r % 2]:
            rates[name].append(train_rate(trainable[name], p, device, p["steps"]))
    for r in range(p["rounds"]):
        for name in orders[r % 2]:
            gen[name].append(generation_rate(built[name], p, device))
    result = {
        "preset": args.preset, "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
        "torch": torch.__version__, "threads": torch.get_num_threads(), "shape": p, "parameters": params["ours"],
        "train_tokens_per_s": {k: statistics.median(v) for k, v in rates.items()}, "train_all": rates,
        "generate_tokens_per_s": {k: statistics.median(v) for k, v in gen.items()}, "generate_all": gen,
    }
    result["train_ratio"] = result["train_tokens_per_s"]["ours"] / result["train_tokens_per_s"]["hf"]
    result["generate_ratio"] = result["generate_tokens_per_s"]["ours"] / result["generate_tokens_per_s"]["hf"]
    fpt = flops_per_token(p, params["ours"])
    if device.type == "cuda":
        result["mfu"] = {k: v * fpt / (args.peak_tflops * 1e12) for k, v in result["train_tokens_per_s"].items()}
    if p["harness"]:
        loop = harness_loop_rate(p, out)
        result["harness_loop"] = loop
        if "tokens_per_s" in loop and device.type == "cuda":
            loop["mfu"] = loop["tokens_per_s"] * fpt / (args.peak_tflops * 1e12)
    (out / "bench_transformer.json").write_text(json.dumps(result, indent=2))
    print(f"{result['device']}, {p['layers']}x{p['d']} (heads {p['heads']}), vocab {p['vocab']}, B{p['B']} x T{p['T']}, "
          f"{p['dtype'] if device.type == 'cuda' else 'float32'}, compile={p['compile']}, {params['ours']:,} parameters")
    for name in ("ours", "hf"):
        mfu = f"  MFU {result['mfu'][name]:.1%}" if "mfu" in result else ""
        print(f"  train {name:4s} {result['train_tokens_per_s'][name]:>12,.0f} tokens/s{mfu}   "
              f"generate {result['generate_tokens_per_s'][name]:>10,.1f} tokens/s")
    print(f"  ours / HF: train {result['train_ratio']:.3f}x, generate {result['generate_ratio']:.3f}x")
    if p["harness"]:
        loop = result["harness_loop"]
        if "tokens_per_s" in loop:
            extra = f", MFU {loop['mfu']:.1%}" if "mfu" in loop else ""
            print(f"  harness loop: {loop['tokens_per_s']:,.0f} tokens/s{extra}")
        else:
            print(f"  harness loop failed: {loop['error'][-500:]}")


if __name__ == "__main__":
    main()
