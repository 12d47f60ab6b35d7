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
"""

from __future__ import annotations

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


__all__ = ["gradient_norms", "plot_gradient_norms", "unrolled_forward"]
