"""Behaviour parity across a refactor: run a fixed set of short recipes and record (or compare) their metrics.

    python scripts/parity.py record runs/parity/before.json      # on the old code
    python scripts/parity.py check  runs/parity/before.json      # on the new code: same numbers?

The runs are every recipe under ``recipes/tiny/`` and a few-step run of each real recipe family (GLUE
LoRA on RTE, the BiLSTM-CRF tagger on CoNLL-2003, the small LSTM LM and the Kneser-Ney 5-gram on PTB),
each on a small cut of the real data (the first lines of each file, written under the run folder from
``$HARNESS_DATA_DIR``). Timing keys (seconds, tokens/s, wall time) are left out; everything else must
match: exactly for the count-based and deterministic runs, to ``--tolerance`` (default 1e-6, relative)
otherwise. Each run is ``python -m harness train`` in its own process, one thread.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TIMING = ("seconds", "tokens_per_second", "wall_seconds", "peak_")


def _head_lines(src: Path, dst: Path, lines: int) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    with open(src, encoding="utf-8") as f:
        dst.write_text("".join(line for _, line in zip(range(lines), f)), encoding="utf-8")


def _head_sentences(src: Path, dst: Path, sentences: int) -> None:
    """The first ``sentences`` blank-line-separated blocks of a CoNLL file."""
    out, seen = [], 0
    with open(src, encoding="utf-8") as f:
        for line in f:
            out.append(line)
            if not line.strip():
                seen += 1
                if seen >= sentences:
                    break
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_text("".join(out), encoding="utf-8")


def small_data(data_dir: Path, out: Path) -> Path:
    """Cuts of the real data: RTE 200/80/40 rows, CoNLL 300/100/100 sentences, PTB 2000/300/300 lines."""
    for name, n in (("train.tsv", 201), ("dev.tsv", 81), ("test.tsv", 41)):
        _head_lines(data_dir / "glue" / "RTE" / name, out / "glue" / "RTE" / name, n)
    for name, n in (("train.txt", 300), ("valid.txt", 100), ("test.txt", 100)):
        _head_sentences(data_dir / "conll2003" / name, out / "conll2003" / name, n)
    for name, n in (("ptb.train.txt", 2000), ("ptb.valid.txt", 300), ("ptb.test.txt", 300)):
        _head_lines(data_dir / "ptb" / name, out / "ptb" / name, n)
    return out


def runs(small: Path) -> dict[str, list[str]]:
    """name -> ``harness train`` arguments (recipe and overrides; output_dir added by the caller)."""
    out = {}
    for recipe in sorted((REPO / "recipes" / "tiny").glob("*.yaml")):
        out[f"tiny/{recipe.stem}"] = [str(recipe), "tracking.report_to=[]"]
    out["glue_lora/rte"] = [str(REPO / "recipes" / "glue_lora.yaml"), "data.task=rte", f"data.data_dir={small}/glue",
                            "training.max_steps=12", "training.eval_steps=6", "training.batch_size=16",
                            "training.mixed_precision=no", "tracking.report_to=[]"]
    out["ner/bilstm_crf"] = [str(REPO / "recipes" / "ner" / "bilstm_crf_conll2003.yaml"),
                             f"data.train_file={small}/conll2003/train.txt",
                             f"data.validation_file={small}/conll2003/valid.txt",
                             f"data.test_file={small}/conll2003/test.txt",
                             "training.num_epochs=2", "training.log_steps=5", "tracking.report_to=[]"]
    ptb = [f"data.train_file={small}/ptb/ptb.train.txt", f"data.validation_file={small}/ptb/ptb.valid.txt",
           f"data.test_file={small}/ptb/ptb.test.txt"]
    out["lm/lstm_small"] = [str(REPO / "recipes" / "lm" / "lstm_small_ptb.yaml"), *ptb, "training.num_epochs=2",
                            "training.log_steps=10", "tracking.report_to=[]"]
    out["lm/ngram_kn5"] = [str(REPO / "recipes" / "lm" / "ngram_kn5_ptb.yaml"), *ptb]
    return out


def _comparable(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if not any(t in k for t in TIMING)}


def record(root: Path, only: list[str] | None) -> dict[str, dict]:
    data_dir = Path(os.environ.get("HARNESS_DATA_DIR", REPO.parent / "shared" / "data"))
    small = small_data(data_dir, root / "data")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_EVALUATE_OFFLINE": "1", "OMP_NUM_THREADS": "1",
           "TOKENIZERS_PARALLELISM": "false", "HARNESS_DATA_DIR": str(data_dir)}
    results = {}
    for name, args in runs(small).items():
        if only and name not in only:
            continue
        out = root / "runs" / name
        cmd = [sys.executable, "-m", "harness", "train", *args, f"output_dir={out}", "training.overwrite=true"]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO)
        if proc.returncode != 0:
            results[name] = {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed"}
        else:
            results[name] = _comparable(json.loads((out / "metrics.json").read_text()))
        print(f"{name}: {'failed: ' + results[name]['error'] if 'error' in results[name] else 'ok'}", flush=True)
    return results


def compare(before: dict, after: dict, tolerance: float) -> list[str]:
    problems = []
    for name, old in before.items():
        new = after.get(name)
        if new is None:
            continue
        for key in sorted(set(old) | set(new)):
            a, b = old.get(key), new.get(key)
            if isinstance(a, float) and isinstance(b, float) and math.isfinite(a) and math.isfinite(b):
                if abs(a - b) > tolerance * max(1.0, abs(a)):
                    problems.append(f"{name} {key}: {a!r} -> {b!r}")
            elif a != b:
                problems.append(f"{name} {key}: {a!r} -> {b!r}")
    return problems


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("mode", choices=("record", "check"))
    p.add_argument("file", type=Path, help="record: where to write the metrics; check: the recorded ones")
    p.add_argument("--root", type=Path, default=REPO / "runs" / "parity", help="small data and runs go here")
    p.add_argument("--only", nargs="*", help="run these names only")
    p.add_argument("--tolerance", type=float, default=1e-6)
    args = p.parse_args()
    results = record(args.root / args.mode, args.only)
    if args.mode == "record":
        args.file.parent.mkdir(parents=True, exist_ok=True)
        args.file.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
        print(f"recorded {len(results)} runs in {args.file}")
        return 0
    problems = compare(json.loads(args.file.read_text()), results, args.tolerance)
    for line in problems:
        print(f"differs: {line}")
    print(f"{len(results)} runs compared: {'same numbers' if not problems else f'{len(problems)} differences'}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
