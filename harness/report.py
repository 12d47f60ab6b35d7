"""Run outputs: the resolved recipe, ``metrics.json``, and ``report.md`` with a loss-curve PNG and the
sections that report hooks add (registry section ``report``: a recurrent LM's gradient-through-time plot)."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import yaml

from harness.io import atomic_write_text, write_json


def write_recipe(output_dir: Path, raw: dict) -> None:
    atomic_write_text(output_dir / "recipe.yaml", yaml.safe_dump(raw, sort_keys=False))


def write_metrics(path: Path, metrics: dict) -> None:
    write_json(path, metrics)


def hardware() -> dict[str, str]:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    info = {"cpu": f"{cpu} ({os.cpu_count()} cores)", "torch": torch.__version__}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    import transformers

    info["transformers"] = transformers.__version__
    return info


def peak_memory() -> dict[str, float]:
    """Peak GPU memory allocated by torch (when on a GPU) and the process's peak resident memory."""
    import resource

    import torch

    out = {"peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if torch.cuda.is_available():
        out["peak_gpu_mib"] = torch.cuda.max_memory_allocated() / 2**20
    return out


def plot_loss(history: list[dict], path: Path) -> bool:
    steps = [r["step"] for r in history if "loss" in r]
    losses = [r["loss"] for r in history if "loss" in r]
    if not steps:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    ax.plot(steps, losses, label="train loss")
    evals = [(r["step"], v) for r in history if "eval" in r for k, v in r["eval"].items() if k.endswith("/loss")]
    if evals:
        ax.plot(*zip(*evals), "o-", label="eval loss")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return True


def _fmt(v) -> str:
    return f"{v:.4f}" if isinstance(v, float) else str(v)


def write_report(output_dir: Path, title: str, metrics: dict, history: list[dict], run: dict,
                 sections: list[list[str]] = ()) -> Path:
    """``report.md``: final metrics, run facts (hardware, wall time, tokens/s, memory), loss curve, the
    ``sections`` report hooks returned (markdown lines each), and the evaluation history."""
    lines = [f"# {title}", ""]
    lines += ["## Final evaluation", "", "| metric | value |", "|---|---|"]
    lines += [f"| {k} | {_fmt(v)} |" for k, v in sorted(metrics.items())]
    lines += ["", "## Run", "", "| | |", "|---|---|"]
    lines += [f"| {k} | {_fmt(v)} |" for k, v in run.items()]
    if plot_loss(history, output_dir / "loss_curve.png"):
        lines += ["", "## Loss curve", "", "![loss curve](loss_curve.png)"]
    for section in sections:
        lines += list(section)
    evals = [r for r in history if "eval" in r]
    if evals:
        # split/metric columns only; per-class breakdowns (split/PER/f1, ...) stay in logs/history.jsonl
        keys = sorted({k for r in evals for k in r["eval"] if k.count("/") <= 1})
        lines += ["", "## Evaluations during training", "", "| step | " + " | ".join(keys) + " |"]
        lines += ["|---" * (len(keys) + 1) + "|"]
        lines += [f"| {r['step']} | " + " | ".join(_fmt(r["eval"].get(k, "")) for k in keys) + " |" for r in evals]
    path = output_dir / "report.md"
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path
