"""Run outputs: the resolved recipe, ``metrics.json``, and ``report.md`` — what people look at in the field's
tools: the training loss (raw and smoothed) beside each split's evaluation loss, every evaluation metric per
split over steps, the learning rate and tokens/s over training, and a look at the final predictions of the
first evaluation split (a confusion matrix for classifiers, predicted-vs-gold for regression, per-type
P/R/F1 for taggers); plus the sections that report hooks add (registry section ``report``: a recurrent LM's
gradient-through-time plot). Test splits are scored once, at the end, so they are in the final table only.
"""

from __future__ import annotations

import math
import os
import platform
from pathlib import Path

import yaml

from harness.io import atomic_write_text, write_json


def write_recipe(output_dir: Path, raw: dict) -> None:
    atomic_write_text(output_dir / "recipe.yaml", yaml.safe_dump(raw, sort_keys=False))


def json_safe(value):
    """JSON has no Infinity or NaN: a non-finite float is written ``null`` (report.md shows ``inf`` / ``nan``)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def write_metrics(path: Path, metrics: dict) -> None:
    write_json(path, json_safe(metrics))


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


# ------------------------------------------------------------------------------------ plots


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path)
    _pyplot().close(fig)


def smooth(values: list[float], weight: float = 0.6) -> list[float]:
    """TensorBoard's smoothing: an exponential moving average, debiased at the start."""
    out, last, norm = [], 0.0, 0.0
    for v in values:
        last = weight * last + (1 - weight) * v
        norm = weight * norm + (1 - weight)
        out.append(last / norm)
    return out


def _split_series(history: list[dict], metric: str) -> dict[str, list[tuple[int, float]]]:
    """``{split: [(step, value), ...]}`` of ``<split>/<metric>`` over the evaluation rows."""
    series: dict[str, list[tuple[int, float]]] = {}
    for row in history:
        for key, value in row.get("eval", {}).items():
            split, _, name = key.partition("/")
            if name == metric and isinstance(value, (int, float)):
                series.setdefault(split, []).append((row["step"], value))
    return series


def plot_loss(history: list[dict], path: Path) -> list[str]:
    """Training loss (raw, and smoothed when there are enough rows) and each split's evaluation loss; the
    series drawn (none: no file)."""
    rows = [(r["step"], r["loss"]) for r in history if "loss" in r]
    if not rows:
        return []
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    steps, losses = zip(*rows)
    marker = "o" if len(rows) < 3 else None  # a few-step run still draws its points
    if len(rows) >= 5:
        ax.plot(steps, losses, color="C0", alpha=0.3, label="train loss")
        ax.plot(steps, smooth(list(losses)), color="C0", label="train loss (smoothed)")
    else:
        ax.plot(steps, losses, color="C0", marker=marker, label="train loss")
    for i, (split, points) in enumerate(sorted(_split_series(history, "loss").items()), start=1):
        ax.plot(*zip(*points), "o-", color=f"C{i}", label=f"{split} loss")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    ax.legend()
    drawn = [line.get_label() for line in ax.get_lines()]
    _save(fig, path)
    return drawn


def plot_eval_metrics(history: list[dict], path: Path) -> list[str]:
    """One panel per evaluation metric (loss and counts aside), a line per split; the metrics drawn."""
    names = sorted({k.split("/", 1)[1] for r in history for k in r.get("eval", {}) if k.count("/") == 1}
                   - {"loss", "tokens"})
    names = [n for n in names if any(len(points) for points in _split_series(history, n).values())]
    if not names:
        return []
    plt = _pyplot()
    cols = min(3, len(names))
    rows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 2.8 * rows), dpi=100, squeeze=False)
    for ax, name in zip(axes.flat, names):
        for i, (split, points) in enumerate(sorted(_split_series(history, name).items())):
            ax.plot(*zip(*points), "o-", color=f"C{i + 1}", label=split)
        ax.set_title(name)
        ax.set_xlabel("optimizer step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    _save(fig, path)
    return names


def plot_schedule(history: list[dict], throughput: list[dict], path: Path) -> list[str]:
    """The learning rate per log row and the training throughput (tokens/s between log rows); the series
    drawn (none: no file)."""
    lr = [(r["step"], r["lr"]) for r in history if "lr" in r]
    rate = []
    for a, b in zip(throughput, throughput[1:]):
        if b["seconds"] > a["seconds"]:
            rate.append((b["step"], (b["tokens"] - a["tokens"]) / (b["seconds"] - a["seconds"])))
    if not lr and not rate:
        return []
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3), dpi=100)
    if lr:
        left.plot(*zip(*lr), color="C0")
    left.set_title("learning rate")
    left.set_xlabel("optimizer step")
    if rate:
        right.plot(*zip(*rate), color="C2")
    right.set_title("tokens / s")
    right.set_xlabel("optimizer step")
    for ax in (left, right):
        ax.grid(alpha=0.3)
    _save(fig, path)
    return (["learning rate"] if lr else []) + (["tokens / s"] if rate else [])


# ------------------------------------------------------------------------------------ final predictions


def confusion_section(split: str, names: list[str], gold, predicted, out: Path) -> list[str]:
    """A confusion matrix (rows: gold, columns: predicted) as a PNG and a markdown table."""
    import numpy as np

    k = len(names)
    matrix = np.zeros((k, k), dtype=int)
    for g, p in zip(np.asarray(gold, dtype=int), np.asarray(predicted, dtype=int)):
        if 0 <= g < k and 0 <= p < k:
            matrix[g, p] += 1
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(1.2 + 0.6 * k, 1.0 + 0.55 * k), dpi=100)
    ax.imshow(matrix, cmap="Blues")
    for g in range(k):
        for p in range(k):
            ax.text(p, g, str(matrix[g, p]), ha="center", va="center",
                    color="white" if matrix[g, p] > matrix.max() / 2 else "black")
    ax.set_xticks(range(k), names, rotation=45, ha="right")
    ax.set_yticks(range(k), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    _save(fig, out / "confusion_matrix.png")
    lines = ["", f"## Confusion matrix ({split})", "", "| gold \\ predicted | " + " | ".join(names) + " |",
             "|---" * (k + 1) + "|"]
    lines += [f"| {names[g]} | " + " | ".join(str(v) for v in matrix[g]) + " |" for g in range(k)]
    return lines + ["", "![confusion matrix](confusion_matrix.png)"]


def scatter_section(split: str, gold, predicted, out: Path) -> list[str]:
    """Predicted against gold scores, with the diagonal."""
    import numpy as np

    gold, predicted = np.asarray(gold, dtype=float), np.asarray(predicted, dtype=float)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4, 4), dpi=100)
    ax.scatter(gold, predicted, s=6, alpha=0.5)
    lo, hi = float(min(gold.min(), predicted.min())), float(max(gold.max(), predicted.max()))
    ax.plot([lo, hi], [lo, hi], color="grey", linewidth=1)
    ax.set_xlabel("gold")
    ax.set_ylabel("predicted")
    ax.grid(alpha=0.3)
    _save(fig, out / "predicted_vs_gold.png")
    return ["", f"## Predicted against gold ({split})", "", "![predicted against gold](predicted_vs_gold.png)"]


def per_type_section(split: str, metrics: dict) -> list[str]:
    """Precision / recall / F1 / support per entity type from a tagger's ``<split>/<TYPE>/<score>`` metrics."""
    types = sorted({k.split("/")[1] for k in metrics if k.startswith(f"{split}/") and k.count("/") == 2
                    and k.split("/")[1] not in ("micro", "macro", "weighted")})
    if not types:
        return []
    lines = ["", f"## Per type ({split})", "", "| type | precision | recall | F1 | support |", "|---|---|---|---|---|"]
    for t in types:
        cells = [_fmt(metrics.get(f"{split}/{t}/{s}", "")) for s in ("precision", "recall", "f1", "number")]
        lines.append(f"| {t} | " + " | ".join(cells) + " |")
    return lines


# ------------------------------------------------------------------------------------ report.md


def _fmt(v) -> str:
    """Numbers as a person reads them: whole numbers without decimals (thousands grouped from 10,000),
    fewer decimals the larger a number is, no trailing zeros."""
    if isinstance(v, float) and math.isfinite(v) and v.is_integer() and abs(v) < 1e15:
        v = int(v)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        return str(v)
    if isinstance(v, int):
        return f"{v:,}" if abs(v) >= 10_000 else str(v)
    if abs(v) < 1e-3:
        return f"{v:.3g}"
    digits = 1 if abs(v) >= 1000 else 2 if abs(v) >= 100 else 4
    return f"{v:,.{digits}f}".rstrip("0").rstrip(".")


def write_report(output_dir: Path, title: str, metrics: dict, history: list[dict], run: dict,
                 sections: list[list[str]] = (), throughput: list[dict] = ()) -> Path:
    """``report.md``: final metrics, run facts (hardware, wall time, tokens/s, memory), the training plots,
    the ``sections`` the caller adds (final predictions, report hooks; markdown lines each), and the evaluation
    history."""
    lines = [f"# {title}", ""]
    lines += ["## Final evaluation", "", "| metric | value |", "|---|---|"]
    # split/metric rows; per-class breakdowns (split/PER/f1, ...) have their own table below
    lines += [f"| {k} | {_fmt(v)} |" for k, v in sorted(metrics.items()) if k.count("/") <= 1]
    lines += ["", "## Run", "", "| | |", "|---|---|"]
    lines += [f"| {k} | {str(_fmt(v)).replace('|', chr(92) + '|')} |" for k, v in run.items()]  # a | in a cell: \|
    if plot_loss(history, output_dir / "loss_curve.png"):
        lines += ["", "## Loss curve", "", "![loss curve](loss_curve.png)"]
    if plot_eval_metrics(history, output_dir / "eval_metrics.png"):
        lines += ["", "## Evaluation metrics over training", "", "![evaluation metrics](eval_metrics.png)"]
    if plot_schedule(history, list(throughput), output_dir / "schedule.png"):
        lines += ["", "## Learning rate and throughput", "", "![learning rate and tokens/s](schedule.png)"]
    for section in sections:
        lines += list(section)
    evals = [r for r in history if "eval" in r]
    if evals:
        keys = sorted({k for r in evals for k in r["eval"] if k.count("/") <= 1})
        lines += ["", "## Evaluations during training", "", "| step | " + " | ".join(keys) + " |"]
        lines += ["|---" * (len(keys) + 1) + "|"]
        lines += [f"| {r['step']} | " + " | ".join(_fmt(r["eval"].get(k, "")) for k in keys) + " |" for r in evals]
    path = output_dir / "report.md"
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path
