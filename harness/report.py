"""Run outputs: the resolved recipe, ``metrics.json``, and ``report.md`` with a loss-curve PNG (and, for a
recurrent LM, the gradient-through-time PNG)."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import yaml


def atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{path.name}")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_recipe(output_dir: Path, raw: dict) -> None:
    atomic_write_text(output_dir / "recipe.yaml", yaml.safe_dump(raw, sort_keys=False))


def write_metrics(path: Path, metrics: dict) -> None:
    atomic_write_text(path, json.dumps(metrics, indent=2, sort_keys=True) + "\n")


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


def gradient_norms_section(info: dict) -> list[str]:
    """Markdown for ``gradient_norms.png`` from the summary that
    :func:`harness.models.rnn.diagnostics.report_gradient_norms` returned."""
    layers = info["fraction_left"]
    distances = sorted({int(d) for fr in layers.values() for d in fr})
    top = len(layers)
    lines = [
        "", "## Gradient through time", "",
        f"How far back the error signal reaches in the trained model: the loss is the cross-entropy of the "
        f"last token only, on {info['rows']} row(s) × {info['steps']} steps from the start of the "
        f"`{info['split']}` split; the plot shows ‖∂L/∂h_t‖ of each layer against the distance T − t from "
        f"that step, divided by its value at distance 0 — the fraction of the signal that backpropagation "
        f"through time carries d steps back (log scale, mean over the rows). Raw numbers: "
        f"`gradient_norms.json`.",
    ]
    if distances:
        lines += ["", "| fraction left at distance | " + " | ".join(str(d) for d in distances) + " |"]
        lines += ["|---" * (len(distances) + 1) + "|"]
        for i, fr in enumerate(reversed(list(layers.values()))):  # the top layer first
            label = f"layer {top - i}" + (" (top)" if i == 0 else "")
            cells = [fr.get(str(d)) for d in distances]
            lines.append(f"| {label} | " + " | ".join("–" if v is None else f"{v:.2e}" for v in cells) + " |")
    lines += ["", "![gradient norms against distance](gradient_norms.png)"]
    return lines


def write_report(
    output_dir: Path, title: str, metrics: dict, history: list[dict], run: dict, gradient_norms: dict | None = None
) -> Path:
    """``report.md``: final metrics, run facts (hardware, wall time, tokens/s, memory), loss curve,
    the gradient-through-time plot of a recurrent LM (``gradient_norms``: the summary that
    :func:`harness.models.rnn.diagnostics.report_gradient_norms` returned), and the evaluation history."""
    lines = [f"# {title}", ""]
    lines += ["## Final evaluation", "", "| metric | value |", "|---|---|"]
    lines += [f"| {k} | {_fmt(v)} |" for k, v in sorted(metrics.items())]
    lines += ["", "## Run", "", "| | |", "|---|---|"]
    lines += [f"| {k} | {_fmt(v)} |" for k, v in run.items()]
    if plot_loss(history, output_dir / "loss_curve.png"):
        lines += ["", "## Loss curve", "", "![loss curve](loss_curve.png)"]
    if gradient_norms:
        lines += gradient_norms_section(gradient_norms)
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
