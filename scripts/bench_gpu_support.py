#!/usr/bin/env python
"""The Python half of ``scripts/bench_gpu.sh`` (which see): what to install, the carried model and data restored,
the machine described, and the results gathered into ``bench_gpu.json`` + ``bench_gpu.md``.

    python scripts/bench_gpu_support.py pack MODEL_DIR DEST    # (prepare_gpu_carry.sh) fp16 copy of a checkpoint
    python scripts/bench_gpu_support.py needs                 # prints the carried packages to install, one per line
    python scripts/bench_gpu_support.py restore CARRY WORK    # WORK/minilm (fp32), WORK/data/glue/SST-2/*.tsv
    python scripts/bench_gpu_support.py describe OUTDIR       # OUTDIR/environment.json
    python scripts/bench_gpu_support.py summarize OUTDIR      # OUTDIR/bench_gpu.json, OUTDIR/bench_gpu.md

Only the standard library at module level: ``needs`` runs before anything is installed.
"""

from __future__ import annotations

import datetime as _dt
import gzip
import importlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: the goals of issue 20 (GPU, bf16): ours / Trainer tokens/s, the main job's training seconds and dev accuracy
GOAL_RATIO = 1.5
GOAL_EPOCH_SECONDS = 15.0
GOAL_ACCURACY = (0.873 - 0.005, 0.873 + 0.005)


def _version(name: str) -> str | None:
    try:
        module = importlib.import_module(name)
    except Exception:  # missing, or broken by an incompatible neighbour
        return None
    return getattr(module, "__version__", "?")


def _as_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", version)[:3])


def _minimum(package: str) -> str | None:
    """The lower bound pyproject.toml sets for a dependency (``transformers>=5.20,<6`` → ``5.20``)."""
    text = (ROOT / "pyproject.toml").read_text()
    m = re.search(rf'"{re.escape(package)}\s*>=\s*([0-9.]+)', text)
    return m.group(1) if m else None


def needs() -> list[str]:
    """``wheels`` when datasets or evaluate cannot be imported; ``transformers`` when the installed one is older
    than pyproject's minimum (or missing)."""
    out = []
    if _version("datasets") is None or _version("evaluate") is None:
        out.append("wheels")
    have, floor = _version("transformers"), _minimum("transformers")
    if have is None or (floor and _as_tuple(have) < _as_tuple(floor)):
        out.append("transformers")
    return out


TOKENIZER_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt")


def pack(src: Path, dst: Path) -> None:
    """An fp16 copy of a checkpoint folder: every floating tensor cast (integer ones kept), the original dtypes in
    the file's metadata so that :func:`restore` puts back exactly them; config and tokenizer files beside it."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    dst.mkdir(parents=True, exist_ok=True)
    tensors, dtypes = {}, {}
    with safe_open(str(src / "model.safetensors"), framework="pt") as f:
        for name in f.keys():
            t = f.get_tensor(name)
            dtypes[name] = str(t.dtype).removeprefix("torch.")
            tensors[name] = t.half() if t.is_floating_point() else t
    save_file(tensors, str(dst / "model.safetensors"),
              metadata={"format": "pt", "harness_original_dtypes": json.dumps(dtypes)})
    for name in TOKENIZER_FILES:
        if (src / name).is_file():
            shutil.copy(src / name, dst / name)
    print(f"packed {len(tensors)} tensors of {src} as fp16 into {dst}")


def restore(carry: Path, work: Path) -> None:
    """The fp16 model back to its original dtypes (fp32) in WORK/minilm; SST-2 unpacked under WORK/data."""
    import torch
    from safetensors import safe_open
    from safetensors.torch import save_file

    src, dst = carry / "minilm", work / "minilm"
    dst.mkdir(parents=True, exist_ok=True)
    with safe_open(str(src / "model.safetensors"), framework="pt") as f:
        dtypes = json.loads((f.metadata() or {}).get("harness_original_dtypes", "{}"))
        tensors = {name: f.get_tensor(name) for name in f.keys()}
    if not dtypes:
        raise SystemExit(f"bench_gpu: {src / 'model.safetensors'} has no harness_original_dtypes metadata "
                         "(made by scripts/prepare_gpu_carry.sh?)")
    tensors = {name: t.to(getattr(torch, dtypes[name])) for name, t in tensors.items()}
    save_file(tensors, str(dst / "model.safetensors"), metadata={"format": "pt"})
    for p in src.iterdir():
        if p.name != "model.safetensors":
            shutil.copy(p, dst / p.name)
    glue = work / "data" / "glue" / "SST-2"
    glue.mkdir(parents=True, exist_ok=True)
    for gz in sorted((carry / "data" / "glue" / "SST-2").glob("*.tsv.gz")):
        with gzip.open(gz, "rb") as fin, open(glue / gz.name[:-3], "wb") as fout:
            shutil.copyfileobj(fin, fout)
    print(f"restored {len(tensors)} tensors ({sorted(set(dtypes.values()))}) to {dst}; SST-2 in {glue}")


def describe(outdir: Path) -> dict:
    import torch

    info = {"date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "python": sys.version.split()[0], "torch": torch.__version__, "cuda": torch.version.cuda,
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "gpu_count": torch.cuda.device_count()}
    for name in ("transformers", "accelerate", "peft", "datasets", "evaluate", "tokenizers", "pyarrow"):
        info[name] = _version(name)
    try:
        info["commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                        text=True, timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        info["commit"] = None
    (outdir / "environment.json").write_text(json.dumps(info, indent=1) + "\n")
    print(json.dumps(info))
    return info


def _load(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _fmt(x, spec: str = ",.0f") -> str:
    return "—" if x is None else format(x, spec)


def _loop_rows(name: str, data: dict | None) -> tuple[dict, list[str]]:
    if data is None:
        return {"ran": False}, [f"| {name} | did not finish (see bench_gpu.log) | | | | |"]
    s = data["summary"]
    ours, hf = s["ours"], s["trainer"]
    row = {"ran": True, "ours_tokens_per_second": ours["tokens_per_second"],
           "trainer_tokens_per_second": hf["tokens_per_second"], "ratio": s["tps_ratio"],
           "best_step_ratio": s["best_step_tps_ratio"], "ours_median_step_ms": ours["median_step_ms"],
           "trainer_median_step_ms": hf["median_step_ms"],
           "median_step_speed_ratio": hf["median_step_ms"] / ours["median_step_ms"] if ours["median_step_ms"] else None,
           "peak_gpu_ratio": s.get("gpu_ratio"),
           "loss_max_rel_diff": (s.get("loss") or {}).get("max_rel_diff"), "steps": ours["steps"],
           "tokens_equal": s["tokens_equal"], "goal_ratio": GOAL_RATIO, "goal_met": s["tps_ratio"] >= GOAL_RATIO}
    line = (f"| {name} | {_fmt(ours['tokens_per_second'])} | {_fmt(hf['tokens_per_second'])} | "
            f"**{s['tps_ratio']:.2f}×** (goal ≥ {GOAL_RATIO}×) | {ours['median_step_ms']:.1f} / "
            f"{hf['median_step_ms']:.1f} ({_fmt(row['median_step_speed_ratio'], '.2f')}×) | "
            f"{_fmt(s.get('gpu_ratio'), '.2f')} |")
    return row, [line]


def summarize(outdir: Path) -> dict:
    env = _load(outdir / "environment.json") or {}
    stages = _load(outdir / "stages.json") or {}
    result: dict = {"environment": env, "stages": stages, "tiny": stages.get("tiny", False)}
    md = [f"# bench_gpu — {env.get('gpu') or 'no GPU'}, {env.get('date', '?')}", "",
          f"torch {env.get('torch')} (CUDA {env.get('cuda')}), transformers {env.get('transformers')}, accelerate "
          f"{env.get('accelerate')}, peft {env.get('peft')}, datasets {env.get('datasets')}; commit "
          f"{env.get('commit') or '?'}. Command: `bash scripts/bench_gpu.sh`"
          + (" with BENCH_GPU_TINY=1 (a plumbing check on few steps: these are not benchmark figures)"
             if result["tiny"] else ""), "",
          "## Our loop vs the HF Trainer (scripts/bench_loop.py, same model, data, order and steps)", "",
          "Whole-loop tokens/s include a compiled run's compilation (each child compiles cold); the median step "
          "is the steady state.", "",
          "| run | ours tokens/s | Trainer tokens/s | ratio | median step ms, ours / Trainer (speed ratio) | "
          "peak GPU memory ratio |",
          "|---|---|---|---|---|---|"]
    for stage, key, name, file in (("loop", "loop", stages.get("loop_label", "bf16"), "bench_loop.json"),
                                   ("attention", "loop_attention",
                                    stages.get("loop_label", "bf16") + ", the Trainer under our attention kernels",
                                    "bench_loop_attention.json"),
                                   ("compile", "loop_compile", stages.get("loop_label", "bf16") + " + torch.compile",
                                    "bench_loop_compile.json"),
                                   ("cudagraphs", "loop_cudagraphs",
                                    stages.get("loop_label", "bf16") + " + torch.compile reduce-overhead (CUDA graphs)",
                                    "bench_loop_cudagraphs.json")):
        if stage not in stages.get("ran", []):
            continue
        row, lines = _loop_rows(name, _load(outdir / file))
        result[key] = row
        md += lines
    for stage, key, title, file in (
            ("main", "main_job", "", "main_job_metrics.json"),
            ("main_cudagraphs", "main_job_cudagraphs", ", training.compile: reduce-overhead (length buckets, CUDA graphs)",
             "main_job_cudagraphs_metrics.json")):
        if stage not in stages.get("ran", []):
            continue
        main = _load(outdir / file)
        md += ["", f"## The main job (recipes/glue_lora.yaml, SST-2, LoRA, one epoch{title})", ""]
        if main is None:
            md.append("did not finish (see bench_gpu.log)")
            result[key] = {"ran": False}
            continue
        seconds, acc = main.get("train/seconds"), main.get("validation/accuracy")
        result[key] = {"ran": True, "train_seconds": seconds, "validation_accuracy": acc,
                       "wall_seconds": main.get("wall_seconds"), "steps": main.get("train/global_step"),
                       "tokens_per_second": main.get("train/tokens_per_second"),
                       "goal_seconds": GOAL_EPOCH_SECONDS, "goal_accuracy": GOAL_ACCURACY,
                       "goal_met": bool(seconds is not None and acc is not None and seconds <= GOAL_EPOCH_SECONDS
                                        and GOAL_ACCURACY[0] <= acc <= GOAL_ACCURACY[1])}
        md += ["| training seconds | steps | tokens/s | dev accuracy | wall seconds |", "|---|---|---|---|---|",
               f"| **{_fmt(seconds, '.1f')}** (goal ≤ {GOAL_EPOCH_SECONDS:g}) | {main.get('train/global_step')} | "
               f"{_fmt(main.get('train/tokens_per_second'))} | {_fmt(acc, '.4f')} (goal 0.873 ± 0.005) | "
               f"{_fmt(main.get('wall_seconds'), '.1f')} |"]
    profiled = _load(outdir / "bench_loop_profile.json")
    if "profile" in stages.get("ran", []):
        md += ["", "## Where a step's milliseconds go (scripts/bench_loop.py --profile-steps, "
               f"{stages.get('loop_label', 'bf16')}, no compile)", ""]
        profile = ((profiled or {}).get("summary") or {}).get("profile")
        if profile is None:
            md.append("did not finish (see bench_gpu.log)")
        else:
            sys.path.insert(0, str(ROOT / "scripts"))
            from bench_loop import render_profile

            result["profile"] = profile
            md.append(render_profile(profile))
    md += ["", f"Stage seconds: {json.dumps(stages.get('seconds', {}))}; failed stages: "
           f"{', '.join(stages.get('failed', [])) or 'none'}."]
    (outdir / "bench_gpu.json").write_text(json.dumps(result, indent=1, default=str) + "\n")
    (outdir / "bench_gpu.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return result


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    command, rest = argv[0], argv[1:]
    if command == "pack":
        pack(Path(rest[0]), Path(rest[1]))
    elif command == "needs":
        print("\n".join(needs()))
    elif command == "restore":
        restore(Path(rest[0]), Path(rest[1]))
    elif command == "describe":
        describe(Path(rest[0]))
    elif command == "summarize":
        summarize(Path(rest[0]))
    else:
        print(f"bench_gpu_support: unknown command {command!r}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
