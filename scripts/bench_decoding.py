#!/usr/bin/env python
"""The decoding report: one trained translation model decoded with every strategy of the seed's "hierarchy of
control" (greedy < beam < top-k < top-p < random), plus temperature, epsilon sampling, diverse beam search and MBR;
quality, diversity and length measured per strategy on the same source sentences.

    HARNESS_DATA_DIR=/work/shared/data HF_HUB_OFFLINE=1 HF_EVALUATE_OFFLINE=1 OMP_NUM_THREADS=1 \\
        .venv/bin/python scripts/bench_decoding.py --model runs/seq2seq/bahdanau_multi30k_de_en/model \\
        --out /tmp/decoding [--limit 300] [--samples 4] [--candidates 8]

Parts (each a table in ``out/bench_decoding.md`` and values in ``out/bench_decoding.json``):

1. **strategies** — per strategy: sacreBLEU and chrF of the first output against the references, the length ratio,
   the model's perplexity of its own outputs (teacher-forced NLL per target token), distinct-1 / distinct-2 over all
   first outputs, rep-2 (repeated bigrams within an output), self-BLEU among ``--samples`` outputs per source (the
   n-best list for beam searches), seconds; and ``out/quality_vs_diversity.png`` (BLEU against 100 − self-BLEU).
2. **length bias** — beam sizes 1, 4, 10 × GNMT α ∈ {0, 0.6, 1.0}: mean output length and BLEU (α = 0 is raw
   log-probability ranking: the seed's "beam search prefers shorter sequences").
3. **diverse beam** — ordinary beam vs diverse beam search (``--candidates`` beams in groups of 2, each λ of
   ``--diversity``) at equal size: pairwise self-BLEU and distinct-2 within each n-best list.
4. **MBR vs beam** at equal candidate budget N = ``--candidates``: beam search's best vs MBR (chrF utility) over N
   epsilon samples and over the N-best beam list; chrF / BLEU and the time split (generating vs choosing).

Everything decodes the first ``--limit`` sentences of ``--split`` (Multi30k ``test_2016_flickr`` by default) with
``--seed``; the numbers are for the model given (say which in the report).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

#: name → (generate keyword arguments, harness search?) for part 1
STRATEGIES = {
    "greedy": {"num_beams": 1, "do_sample": False},
    "beam 4": {"num_beams": 4, "do_sample": False},
    "beam 10": {"num_beams": 10, "do_sample": False},
    "top-k 10": {"do_sample": True, "top_k": 10},
    "top-p 0.9": {"do_sample": True, "top_p": 0.9, "top_k": 0},
    "temperature 0.7": {"do_sample": True, "temperature": 0.7, "top_k": 0},
    "epsilon 0.02": {"do_sample": True, "epsilon_cutoff": 0.02, "top_k": 0},
    "random (pure sampling)": {"do_sample": True, "top_k": 0},
}


def load(model_dir: str):
    import torch
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    from harness import registry

    registry.load_models()
    model = AutoModelForSeq2SeqLM.from_pretrained(model_dir).eval()
    torch.set_grad_enabled(False)
    return model, AutoTokenizer.from_pretrained(model_dir)


def batches(n: int, size: int):
    for a in range(0, n, size):
        yield slice(a, min(n, a + size))


def decode(model, tokenizer, sources: list[str], batch_size: int, max_new_tokens: int, per_source: int = 1,
           search: dict | None = None, **kwargs) -> tuple[list[list[str]], float]:
    """``per_source`` outputs per source (``num_return_sequences``), with ``generate`` or with the harness beam search
    (``search``: its options); returns the texts and the seconds spent."""
    from harness.generation.search import beam_search

    out: list[list[str]] = []
    start = time.perf_counter()
    for part in batches(len(sources), batch_size):
        enc = tokenizer(sources[part], return_tensors="pt", padding=True)
        if search is not None:
            ids = beam_search(model, enc["input_ids"], enc["attention_mask"], max_new_tokens=max_new_tokens,
                              num_return_sequences=per_source, **search).sequences
        else:  # a saved model's generation_config may carry its recipe's num_beams: each strategy says its own
            ids = model.generate(**enc, max_new_tokens=max_new_tokens, num_return_sequences=per_source,
                                 **{"num_beams": 1, **kwargs})
        texts = tokenizer.batch_decode(ids, skip_special_tokens=True)
        out += [texts[i:i + per_source] for i in range(0, len(texts), per_source)]
    return out, time.perf_counter() - start


def own_perplexity(model, tokenizer, sources: list[str], outputs: list[str], batch_size: int) -> float:
    """exp(mean NLL per target token) of each output given its source, teacher-forced."""
    import math

    import torch

    total, count = 0.0, 0
    for part in batches(len(sources), batch_size):
        enc = tokenizer(sources[part], text_target=outputs[part], return_tensors="pt", padding=True)
        labels = enc.pop("labels")
        labels = labels.masked_fill(labels == tokenizer.pad_token_id, -100)
        start = getattr(model.config, "decoder_start_token_id", None)
        if start is not None and (labels[:, 0] == start).all():
            labels = labels[:, 1:]  # the tokenizer's own start token is the decoder's first input
        logits = model(**enc, labels=labels).logits
        nll = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), labels.reshape(-1),
                                                ignore_index=-100, reduction="sum")
        total += nll.item()
        count += int((labels != -100).sum())
    return math.exp(total / max(count, 1))


def scores(hypotheses: list[str], references: list[str]) -> dict:
    from sacrebleu.metrics import BLEU, CHRF

    return {"bleu": BLEU().corpus_score(hypotheses, [references]).score,
            "chrf": CHRF().corpus_score(hypotheses, [references]).score}


def measure(name, outputs, seconds, model, tokenizer, sources, references, batch_size) -> dict:
    from harness.metrics.diversity import distinct_n, length_ratio, repetition_rate, self_bleu

    first = [o[0] for o in outputs]
    row = {"strategy": name, **scores(first, references), "length_ratio": length_ratio(first, references),
           "own_perplexity": own_perplexity(model, tokenizer, sources, first, batch_size),
           "distinct_1": distinct_n(first, 1), "distinct_2": distinct_n(first, 2),
           "rep_2": repetition_rate(first, 2), "seconds": seconds}
    row["self_bleu"] = self_bleu(outputs) if len(outputs[0]) > 1 else None
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="a saved seq2seq model folder (with its tokenizer)")
    parser.add_argument("--lm", help="a saved causal LM folder: the language-model part (``lm`` in --parts)")
    parser.add_argument("--lm-text", help="prompt sentences, one per line (e.g. PTB's test file)")
    parser.add_argument("--prompt-words", type=int, default=5)
    parser.add_argument("--lm-tokens", type=int, default=20, help="new tokens per continuation")
    parser.add_argument("--out", required=True)
    parser.add_argument("--data-dir", default=None, help="Multi30k folder (default $HARNESS_DATA_DIR/multi30k)")
    parser.add_argument("--split", default="test_2016_flickr")
    parser.add_argument("--source-lang", default="de")
    parser.add_argument("--target-lang", default="en")
    parser.add_argument("--limit", type=int, default=300, help="decode the first N sentences")
    parser.add_argument("--samples", type=int, default=4, help="outputs per source for self-BLEU")
    parser.add_argument("--candidates", type=int, default=8, help="the beam / MBR candidate budget N")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--diversity", nargs="+", type=float, default=[0.5, 2.0, 5.0],
                        help="diversity penalties λ of the diverse-beam part")
    parser.add_argument("--parts", nargs="+", default=["strategies", "length", "diverse", "mbr"],
                        choices=["strategies", "length", "diverse", "mbr", "lm"])
    args = parser.parse_args()
    translation = [p for p in args.parts if p != "lm"]
    if translation and not args.model:
        parser.error(f"--model is needed for {', '.join(translation)}")
    if "lm" in args.parts and not (args.lm and args.lm_text):
        parser.error("the lm part needs --lm and --lm-text")
    import os

    import torch

    data = Path(args.data_dir or Path(os.environ.get("HARNESS_DATA_DIR", "data")) / "multi30k")
    from harness.data.seq2seq import read_parallel

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results: dict = {"args": vars(args)}
    md: list[str] = []

    def save():
        (out / "bench_decoding.json").write_text(json.dumps(results, indent=2))
        (out / "bench_decoding.md").write_text("\n".join(md) + "\n")

    if "lm" in args.parts:
        results["lm"], lines = lm_part(args)
        md += lines
        save()
    if not translation:
        print("\n".join(md))
        return
    sources, references = read_parallel(data / f"{args.split}.{args.source_lang}", data / f"{args.split}.{args.target_lang}")
    sources, references = sources[: args.limit], references[: args.limit]
    model, tokenizer = load(args.model)
    common = dict(batch_size=args.batch_size, max_new_tokens=args.max_new_tokens)
    results["sentences"] = len(sources)
    md += [f"Model `{args.model}`, {len(sources)} sentences of `{args.split}` "
           f"({args.source_lang}→{args.target_lang}), seed {args.seed}.", ""]

    if "strategies" in args.parts:
        rows = []
        for name, kwargs in STRATEGIES.items():
            torch.manual_seed(args.seed)
            beams = kwargs.get("num_beams", 1)
            k = min(args.samples, beams) if not kwargs.get("do_sample") else args.samples
            outputs, seconds = decode(model, tokenizer, sources, per_source=max(k, 1), **common, **kwargs)
            rows.append(measure(name, outputs, seconds, model, tokenizer, sources, references, args.batch_size))
            print(rows[-1], flush=True)
        torch.manual_seed(args.seed)
        diverse = {"num_beams": args.candidates, "num_beam_groups": args.candidates // 2, "diversity_penalty": 0.5}
        outputs, seconds = decode(model, tokenizer, sources, per_source=args.samples, search=diverse, **common)
        rows.append(measure(f"diverse beam {args.candidates} ({args.candidates // 2} groups, λ 0.5)", outputs, seconds,
                            model, tokenizer, sources, references, args.batch_size))
        results["strategies"] = rows
        md += ["| strategy | BLEU | chrF | length ratio | own ppl | distinct-1 | distinct-2 | rep-2 | self-BLEU | s |",
               "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in rows:
            sb = "—" if r["self_bleu"] is None else f"{r['self_bleu']:.1f}"
            md.append(f"| {r['strategy']} | {r['bleu']:.2f} | {r['chrf']:.2f} | {r['length_ratio']:.3f} | "
                      f"{r['own_perplexity']:.2f} | {r['distinct_1']:.3f} | {r['distinct_2']:.3f} | {r['rep_2']:.3f} | "
                      f"{sb} | {r['seconds']:.1f} |")
        md.append("")
        plot(rows, out / "quality_vs_diversity.png")
        save()

    if "length" in args.parts:
        rows = []
        for beams in (1, 4, 10):
            for alpha in (0.0, 0.6, 1.0):
                outputs, seconds = decode(model, tokenizer, sources, search={
                    "num_beams": beams, "length_penalty": alpha, "length_normalization": "gnmt"}, **common)
                first = [o[0] for o in outputs]
                rows.append({"beams": beams, "alpha": alpha, **scores(first, references),
                             "mean_length": sum(len(h.split()) for h in first) / len(first), "seconds": seconds})
                print(rows[-1], flush=True)
        results["length_bias"] = rows
        ref_len = sum(len(r.split()) for r in references) / len(references)
        md += [f"Length bias (reference mean length {ref_len:.2f} words):", "",
               "| beams | GNMT α | mean length | BLEU | chrF | s |", "|---:|---:|---:|---:|---:|---:|"]
        md += [f"| {r['beams']} | {r['alpha']} | {r['mean_length']:.2f} | {r['bleu']:.2f} | {r['chrf']:.2f} | "
               f"{r['seconds']:.1f} |" for r in rows]
        md.append("")
        save()

    if "diverse" in args.parts:
        from harness.metrics.diversity import distinct_n, self_bleu

        n = args.candidates
        rows = []
        searches = [("beam", {"num_beams": n})] + [
            (f"diverse beam, λ {lam:g}", {"num_beams": n, "num_beam_groups": n // 2, "diversity_penalty": lam})
            for lam in args.diversity]
        for name, search in searches:
            outputs, seconds = decode(model, tokenizer, sources, per_source=n, search=search, **common)
            within = sum(distinct_n(o, 2) for o in outputs) / len(outputs)
            rows.append({"search": name, "self_bleu": self_bleu(outputs), "distinct_2_within": within,
                         **scores([o[0] for o in outputs], references), "seconds": seconds})
            print(rows[-1], flush=True)
        results["diverse_beam"] = rows
        md += [f"Diverse beam: the {n}-best lists ({n // 2} groups of 2) against ordinary beam search of {n}:", "",
               "| search | self-BLEU within the list | distinct-2 within the list | BLEU of the best | s |",
               "|---|---:|---:|---:|---:|"]
        md += [f"| {r['search']} | {r['self_bleu']:.1f} | {r['distinct_2_within']:.3f} | {r['bleu']:.2f} | "
               f"{r['seconds']:.1f} |" for r in rows]
        md.append("")
        save()

    if "mbr" in args.parts:
        results["mbr"] = mbr_part(model, tokenizer, sources, references, args, common)
        md += [f"MBR vs beam at N = {args.candidates} candidates (chrF utility):", "",
               "| decoder | BLEU | chrF | generate s | choose s |", "|---|---:|---:|---:|---:|"]
        md += [f"| {r['decoder']} | {r['bleu']:.2f} | {r['chrf']:.2f} | {r['generate_seconds']:.1f} | "
               f"{r['choose_seconds']:.1f} |" for r in results["mbr"]]
        md.append("")
        save()
    print("\n".join(md))


def lm_part(args) -> tuple[list[dict], list[str]]:
    """Language-model continuations: the first ``--prompt-words`` words of test sentences (at least twice as long)
    continued by every strategy of :data:`STRATEGIES`."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from harness import registry
    from harness.metrics.diversity import distinct_n, repetition_rate, self_bleu

    registry.load_models()
    model = AutoModelForCausalLM.from_pretrained(args.lm).eval()
    tokenizer = AutoTokenizer.from_pretrained(args.lm)
    torch.set_grad_enabled(False)
    lines = [line.split() for line in Path(args.lm_text).read_text().splitlines()]
    prompts = [" ".join(words[: args.prompt_words]) for words in lines if len(words) >= 2 * args.prompt_words]
    prompts = prompts[: args.limit]
    # prompts of one token length per batch: no padding, so every model (the stateful RNN LM too) reads them alike
    encoded = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    eos_id = model.generation_config.eos_token_id
    eos = torch.tensor(eos_id if isinstance(eos_id, list) else [eos_id if eos_id is not None else -1])
    drop = {t for t in (tokenizer.pad_token_id, tokenizer.bos_token_id, *eos.tolist()) if t is not None}
    groups: dict[int, list[int]] = {}
    for i, ids in enumerate(encoded):
        groups.setdefault(len(ids), []).append(i)
    rows = []
    for name, kwargs in STRATEGIES.items():
        torch.manual_seed(args.seed)
        per = max(min(args.samples, kwargs.get("num_beams", 1)), 1) if not kwargs.get("do_sample") else args.samples
        outputs: list[list[str]] = [[] for _ in prompts]
        nll, count, start = 0.0, 0, time.perf_counter()
        for length, index in groups.items():
            for part in batches(len(index), args.batch_size):
                rows_ = index[part]
                ids = torch.tensor([encoded[i] for i in rows_])
                generated = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=args.lm_tokens,
                                           num_return_sequences=per, pad_token_id=tokenizer.pad_token_id,
                                           **{"num_beams": 1, **kwargs})
                continuation = generated[:, length:]
                # a continuation ends at its first EOS (generate fills the rest with EOS or pad)
                ended = torch.isin(continuation, eos).long().cumsum(-1)
                keep = (ended == 0) | ((ended == 1) & torch.isin(continuation, eos))  # tokens up to the first EOS
                texts = [" ".join(tokenizer.convert_ids_to_tokens([t for t in row[k].tolist() if t not in drop]))
                         for row, k in zip(continuation, keep)]  # <unk> stays: it is a PTB word
                for j, i in enumerate(rows_):
                    outputs[i] = texts[j * per:(j + 1) * per]
                first = generated[::per]
                labels = first.clone()
                labels[:, :length] = -100
                labels[:, length:][~keep[::per]] = -100  # past the first EOS
                logits = model(input_ids=first).logits[:, :-1]
                target = labels[:, 1:]
                nll += torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(),
                                                         target.reshape(-1), ignore_index=-100, reduction="sum").item()
                count += int((target != -100).sum())
        seconds = time.perf_counter() - start
        first_texts = [o[0] for o in outputs]
        rows.append({"strategy": name, "own_perplexity": float(torch.tensor(nll / max(count, 1)).exp()),
                     "mean_length": sum(len(t.split()) for t in first_texts) / len(first_texts),
                     "distinct_1": distinct_n(first_texts, 1), "distinct_2": distinct_n(first_texts, 2),
                     "rep_2": repetition_rate(first_texts, 2),
                     "self_bleu": self_bleu(outputs) if per > 1 else None, "seconds": seconds,
                     "example": f"{prompts[0]} → {first_texts[0]}"})
        print(rows[-1], flush=True)
    md = [f"Language-model continuations: `{args.lm}`, {len(prompts)} prompts (the first {args.prompt_words} words of "
          f"`{args.lm_text}` sentences), {args.lm_tokens} new tokens, seed {args.seed}.", "",
          "| strategy | own ppl | mean length | distinct-1 | distinct-2 | rep-2 | self-BLEU | s | first continuation |",
          "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        sb = "—" if r["self_bleu"] is None else f"{r['self_bleu']:.1f}"
        md.append(f"| {r['strategy']} | {r['own_perplexity']:.2f} | {r['mean_length']:.1f} | {r['distinct_1']:.3f} | "
                  f"{r['distinct_2']:.3f} | {r['rep_2']:.3f} | {sb} | {r['seconds']:.1f} | "
                  f"{r['example'].replace('|', '/')} |")
    return rows, md + [""]


def mbr_part(model, tokenizer, sources, references, args, common) -> list[dict]:
    import torch

    from harness.generation.mbr import mbr_select

    n = args.candidates
    rows = []
    beam, seconds = decode(model, tokenizer, sources, per_source=n, num_beams=n, **common)
    rows.append({"decoder": f"beam {n} (its best)", **scores([o[0] for o in beam], references),
                 "generate_seconds": seconds, "choose_seconds": 0.0})
    torch.manual_seed(args.seed)
    sampled, sampled_seconds = decode(model, tokenizer, sources, per_source=n, do_sample=True, epsilon_cutoff=0.02,
                                      top_k=0, **common)
    for name, candidates, gen_seconds in ((f"MBR over {n} epsilon samples", sampled, sampled_seconds),
                                          (f"MBR over the {n}-best beam list", beam, seconds)):
        start = time.perf_counter()
        chosen = [r.text for r in mbr_select(candidates, utility="chrf")]
        rows.append({"decoder": name, **scores(chosen, references), "generate_seconds": gen_seconds,
                     "choose_seconds": time.perf_counter() - start})
        print(rows[-1], flush=True)
    return rows


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.5))
    for r in rows:
        diversity = 100 - r["self_bleu"] if r["self_bleu"] is not None else 0.0
        ax.scatter(diversity, r["bleu"])
        ax.annotate(r["strategy"], (diversity, r["bleu"]), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel("diversity: 100 − self-BLEU among samples (greedy: 0)")
    ax.set_ylabel("sacreBLEU of the first output")
    ax.set_title("quality vs diversity per decoding strategy")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
