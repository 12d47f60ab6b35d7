r"""How far back does the gradient reach? ‖∂L/∂h_t‖ against the distance from the loss.

:func:`gradient_norms` takes a model of this family and a batch of token ids, puts the loss on the
**last** step only — the cross-entropy of predicting the final token (causal LM), or for a bare
:class:`RNNModel` a fixed random readout :math:`L = w^\top h^{top}_T` — and returns, for every layer, the
norm of :math:`\partial L / \partial h_t` at every step. Since only step :math:`T` carries loss, the norm
at distance :math:`d = T - t` says how much of that error signal survives :math:`d` steps of
backpropagation through time: for a vanilla RNN it is a product of :math:`d` Jacobians
:math:`U^\top \mathrm{diag}(1 - h^2)` and shrinks geometrically (Bengio, Simard & Frasconi 1994;
Pascanu, Mikolov & Bengio 2013); the LSTM's additive cell path and the GRU's update gate let it through
for much longer.

The fused ``nn.LSTM`` kernels never expose :math:`h_t` as a node of the autograd graph (its output tensor
only carries the gradient of the layer above, not of the recurrence), so the diagnostic unrolls the model
step by step with :func:`~harness.models.rnn.modeling_rnn.reference_cell_step` — the same weights and the
same residual / LayerNorm wiring — where each :math:`h_t` is a single tensor feeding both the next step and
the next layer. :func:`unrolled_forward` is that unrolled model; tests check it against the real forward.

:func:`plot_gradient_norms` draws the curves of several models on a log axis (matplotlib, Agg backend).

:func:`report_gradient_norms` is the training report's hook: after a run that trained a unidirectional
:class:`RNNForCausalLM`, it measures the trained model on a fixed slice of the first evaluation split
(:data:`REPORT_ROWS` rows of up to :data:`REPORT_STEPS` steps from the start of the split's token stream)
and writes ``gradient_norms.png`` and ``gradient_norms.json`` next to ``report.md``.
"""

from __future__ import annotations

import copy
import json
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from harness.models.rnn.modeling_rnn import RNNForCausalLM, RNNModel, reference_cell_step


def _base(model) -> RNNModel:
    base = model.rnn if isinstance(model, RNNForCausalLM) else model
    if not isinstance(base, RNNModel):
        raise ValueError(f"expected an RNNModel or RNNForCausalLM, got {type(model).__name__}")
    if base.config.bidirectional:
        raise ValueError("the gradient diagnostic needs a unidirectional model, got bidirectional=True")
    return base


def unrolled_forward(base: RNNModel, input_ids: torch.LongTensor):
    """The encoder run one step at a time from the cell equations.

    Returns ``(top, states)``: ``top`` the top layer's output ``(batch, time, hidden_size)`` (what
    ``base(input_ids).last_hidden_state`` returns) and ``states[l][t]`` layer ``l``'s hidden state
    :math:`h_t` ``(batch, hidden_size)`` — graph nodes one can differentiate with respect to.
    Dropout is applied as the modules are set (call ``.eval()`` for a deterministic run).
    """
    config = base.config
    x = base.dropout(base.embeddings(input_ids))  # (B, T, E)
    batch, time, _ = x.shape
    zeros = x.new_zeros(batch, config.hidden_size)
    h = [zeros] * config.num_layers
    c = [zeros] * config.num_layers
    states: list[list[torch.Tensor]] = [[] for _ in range(config.num_layers)]
    top = []
    for t in range(time):
        inp = x[:, t]  # (B, E)
        for i, layer in enumerate(base.layers):
            h[i], c_new = reference_cell_step(config.cell, layer.rnn, inp, h[i], c[i])
            if c_new is not None:
                c[i] = c_new
            states[i].append(h[i])
            inp = layer.post_rnn(h[i], inp)  # dropout, residual, LayerNorm: as in the real stack
        top.append(inp)
    return torch.stack(top, dim=1), states


def gradient_norms(model, input_ids: torch.LongTensor) -> np.ndarray:
    r"""``‖∂L/∂h_t‖`` per layer and distance, with the loss on the last step only.

    Args:
        model: an :class:`RNNForCausalLM` (loss: cross-entropy of predicting ``input_ids[:, -1]`` from
            the prefix ``input_ids[:, :-1]``) or a bare :class:`RNNModel` (loss: the sum of the top layer's
            output at the last step of ``input_ids`` times a fixed random vector). Unidirectional only.
        input_ids: ``(batch, time)`` token ids, no padding.

    Returns:
        ``(num_layers, steps)`` float64 array; ``[l, d]`` is the mean over the batch of
        :math:`\lVert \partial L_b / \partial h^{(l)}_{T-d} \rVert_2` — distance ``d = 0`` is the step
        that carries the loss. The model's train/eval mode is left as it was.
    """
    base = _base(model)
    causal = isinstance(model, RNNForCausalLM)
    if input_ids.dim() != 2 or input_ids.shape[1] < (2 if causal else 1):
        need = 2 if causal else 1
        raise ValueError(f"input_ids must be (batch, time) with time >= {need}, got {tuple(input_ids.shape)}")
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad():
            if causal:
                top, states = unrolled_forward(base, input_ids[:, :-1])
                last = top[:, -1]  # (B, H)
                if model.lm_proj is not None:
                    last = model.lm_proj(last)
                logits = model.lm_head(last)  # (B, V)
                # summed over the batch: each row's gradient is its own example's, not divided by B
                loss = F.cross_entropy(logits.float(), input_ids[:, -1], reduction="sum")
            else:
                top, states = unrolled_forward(base, input_ids)
                # a fixed random readout (a plain sum would vanish under LayerNorm, whose outputs sum to a constant)
                g = torch.Generator().manual_seed(0)
                readout = torch.randn(top.shape[-1], generator=g).to(top)
                loss = (top[:, -1] @ readout).sum()
            flat = [h for layer in states for h in layer]
            grads = torch.autograd.grad(loss, flat, allow_unused=True)
    finally:
        model.train(was_training)
    steps = len(states[0])
    out = np.zeros((len(states), steps), dtype=np.float64)
    for i, g in enumerate(grads):
        layer, t = divmod(i, steps)
        if g is not None:
            out[layer, steps - 1 - t] = g.detach().double().norm(dim=-1).mean().item()
    return out


def plot_gradient_norms(curves: dict[str, np.ndarray], path: str | Path, title: str | None = None) -> Path:
    """Plot ``{label: gradient_norms(...)}`` curves, one panel per layer, log y-axis; write a PNG.

    Each curve is divided by its value at distance 0, so the plot shows the fraction of the error signal
    that is left after ``d`` steps. Zeros (an underflow) are left out of the log plot.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not curves:
        raise ValueError("plot_gradient_norms needs at least one curve")
    num_layers = max(c.shape[0] for c in curves.values())
    fig, axes = plt.subplots(1, num_layers, figsize=(5.5 * num_layers, 4.2), squeeze=False, sharey=True)
    for label, norms in curves.items():
        for layer in range(norms.shape[0]):
            ref = norms[layer, 0] if norms[layer, 0] > 0 else np.nan
            rel = norms[layer] / ref
            rel = np.where(rel > 0, rel, np.nan)
            axes[0, layer].plot(np.arange(len(rel)), rel, label=label, linewidth=1.4)
    for layer in range(num_layers):
        ax = axes[0, layer]
        ax.set_yscale("log")
        ax.set_xlabel("distance from the loss step, T − t")
        ax.set_title(f"layer {layer + 1}")
        ax.grid(True, which="major", alpha=0.3)
    axes[0, 0].set_ylabel("‖∂L/∂h_t‖ / ‖∂L/∂h_T‖")
    axes[0, -1].legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


# ------------------------------------------------------------------------------- the training report

#: the report's slice of the first evaluation split: up to ``REPORT_ROWS`` rows of ``REPORT_STEPS`` input
#: steps each (plus the target token), cut one after the other from the start of the split's token stream
REPORT_ROWS = 4
REPORT_STEPS = 100
#: the distances whose fraction of the error signal the report prints
REPORT_DISTANCES = (10, 25, 50)
REPORT_FILES = ("gradient_norms.png", "gradient_norms.json")


def _report_tokens(dataset, rows: int, steps: int) -> np.ndarray | None:
    """``(rows', steps' + 1)`` token ids from the start of a tokenized split, or None if it is too short.

    The split is read as one token stream: the ``stream`` column of a stream LM task (``lm_text``), or
    the ``input_ids`` rows one after the other (padding dropped where an ``attention_mask`` says so).
    Steps come first (they are the plot's x axis): ``steps' = min(steps, n - 1)``, then as many rows of
    ``steps' + 1`` tokens as fit, at most ``rows``.
    """
    need = rows * (steps + 1)
    cols = dataset.column_names
    if "stream" in cols:
        stream = np.asarray(dataset[0]["stream"][:need], dtype=np.int64)
    elif "input_ids" in cols:
        parts, n = [], 0
        for i in range(len(dataset)):
            if n >= need:
                break
            row = dataset[i]
            ids = np.asarray(row["input_ids"], dtype=np.int64).reshape(-1)
            if "attention_mask" in row:
                ids = ids[np.asarray(row["attention_mask"]).reshape(-1).astype(bool)]
            parts.append(ids)
            n += len(ids)
        stream = np.concatenate(parts)[:need] if parts else np.zeros(0, dtype=np.int64)
    else:
        return None
    steps = min(steps, len(stream) - 1)
    if steps < 1:
        return None
    rows = min(rows, len(stream) // (steps + 1))
    return stream[: rows * (steps + 1)].reshape(rows, steps + 1)


def _fractions(norms: np.ndarray, distances: Sequence[int]) -> dict[str, dict[str, float | None]]:
    """``{"layer_L": {"d": ‖∂L/∂h_{T-d}‖ / ‖∂L/∂h_T‖}}`` for the distances inside the measured range."""
    out = {}
    for layer, row in enumerate(norms):
        rel = row / row[0] if np.isfinite(row[0]) and row[0] > 0 else np.full_like(row, np.nan)
        out[f"layer_{layer + 1}"] = {str(d): _finite(rel[d]) for d in distances if d < len(row)}
    return out


def _finite(v) -> float | None:
    return float(v) if np.isfinite(v) else None


def report_gradient_norms(
    model,
    tokenized: Mapping,
    splits: Sequence[str],
    output_dir: str | Path,
    rows: int = REPORT_ROWS,
    steps: int = REPORT_STEPS,
) -> dict | None:
    """The gradient-through-time diagnostic of a trained model, for the run's report.

    For a unidirectional :class:`RNNForCausalLM` (anything else — other models, bidirectional encoders,
    classifier or tagger heads, PEFT wrappers — returns None without a word), measures
    :func:`gradient_norms` on ``rows`` × ``steps`` tokens from the start of the first of ``splits`` that
    ``tokenized`` holds, in eval mode, in float32 (a float32 copy if the weights are not), autocast off,
    on the model's device, and writes ``gradient_norms.png`` (:func:`plot_gradient_norms`) and
    ``gradient_norms.json`` (the raw norms and the fractions left) into ``output_dir``. Earlier copies
    of both files are removed first, so a report never shows another run's curve.

    Returns the JSON's content (:func:`gradient_norms_section` turns it into the report's section), or None
    when skipped. A failure
    of the measurement is a warning, never the run's failure. Call it on the main process only.
    """
    output_dir = Path(output_dir)
    for name in REPORT_FILES:
        (output_dir / name).unlink(missing_ok=True)
    base = getattr(model, "rnn", None)
    if not isinstance(model, RNNForCausalLM) or not isinstance(base, RNNModel) or base.config.bidirectional:
        return None
    split = next((s for s in splits if s in tokenized), None)
    if split is None:
        return None
    try:
        tokens = _report_tokens(tokenized[split], rows, steps)
        if tokens is None:
            return None
        param = next(model.parameters())
        if any(p.dtype != torch.float32 for p in model.parameters()):
            model = copy.deepcopy(model).float()
        input_ids = torch.as_tensor(tokens, device=param.device)
        with torch.autocast(param.device.type, enabled=False):
            norms = gradient_norms(model, input_ids)
        config = model.config
        info = {
            "split": split,
            "rows": int(tokens.shape[0]),
            "steps": int(tokens.shape[1] - 1),
            "cell": config.cell,
            "num_layers": int(config.num_layers),
            "loss": "cross-entropy of each row's last token given the rest, summed over the rows",
            # [layer][distance]: the mean over the rows of ‖∂L/∂h_(T-d)‖ (None where not finite)
            "norms": [[_finite(v) for v in row] for row in norms],
            "fraction_left": _fractions(norms, REPORT_DISTANCES),
        }
        title = (f"trained {config.cell} LM: last-step loss on {split}, "
                 f"{info['rows']} rows × {info['steps']} steps")
        plot_gradient_norms({f"trained {config.cell}": norms}, output_dir / REPORT_FILES[0], title)
        text = json.dumps(info, indent=2, allow_nan=False) + "\n"
        tmp = output_dir / f".tmp-{REPORT_FILES[1]}"
        tmp.write_text(text)
        tmp.replace(output_dir / REPORT_FILES[1])
        return info
    except Exception as err:  # a diagnostic must not fail a finished run
        for name in REPORT_FILES:
            (output_dir / name).unlink(missing_ok=True)
        warnings.warn(f"gradient-norm diagnostic skipped: {type(err).__name__}: {err}", RuntimeWarning, stacklevel=2)
        return None


def gradient_norms_section(info: dict) -> list[str]:
    """Markdown for ``gradient_norms.png`` from the summary that :func:`report_gradient_norms` returned."""
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


def gradient_report(model, tokenized: Mapping, splits: Sequence[str], output_dir: str | Path) -> list[str] | None:
    """The run report's hook: the "Gradient through time" section for a trained recurrent LM, else None."""
    info = report_gradient_norms(model, tokenized, splits, output_dir)
    return gradient_norms_section(info) if info else None


__all__ = ["REPORT_DISTANCES", "REPORT_ROWS", "REPORT_STEPS", "gradient_norms", "plot_gradient_norms",
           "report_gradient_norms", "gradient_norms_section", "gradient_report", "unrolled_forward"]
