"""Plot the vanishing gradient: ‖∂L/∂h_t‖ vs distance from the loss, for freshly initialised RNNs.

Every model is a causal LM of this harness (``harness.models.rnn``) with the same sizes and seed, run on
random tokens with the loss on the last step only; nothing is trained unless ``--train-steps`` asks for
a few Adam steps on the same random data (which mostly shows how little a few steps change the picture).

    python scripts/vanishing_gradient.py runs/vanishing_gradient.png
    python scripts/vanishing_gradient.py out.png --seq-len 200 --hidden-size 128 --seed 1 --init-range 0.05

Prints, per model, the fraction of the error signal left at a few distances (top and bottom layer).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.models.rnn import RNNConfig, RNNForCausalLM  # noqa: E402
from harness.models.rnn.diagnostics import gradient_norms, plot_gradient_norms  # noqa: E402

#: label → config overrides; the last two show what the residual + LayerNorm wiring does
MODELS = {
    "RNN (tanh)": {"cell": "rnn_tanh"},
    "RNN (ReLU)": {"cell": "rnn_relu"},
    "GRU": {"cell": "gru"},
    "LSTM": {"cell": "lstm"},
    "LSTM, forget bias 0": {"cell": "lstm", "forget_bias": 0.0},
    "RNN (tanh) + residual + LN": {"cell": "rnn_tanh", "residual": True, "layer_norm": True},
    "LSTM + residual + LN": {"cell": "lstm", "residual": True, "layer_norm": True},
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("output", help="PNG to write")
    parser.add_argument("--seq-len", type=int, default=100, help="tokens per sequence (the loss sits on the last)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--vocab-size", type=int, default=50)
    parser.add_argument("--hidden-size", type=int, default=64, help="also the embedding size (residuals need it)")
    parser.add_argument("--num-layers", type=int, default=2)
    parser.add_argument("--init-range", type=float, default=0.1, help="U(-r, r) initialisation (Zaremba et al.)")
    parser.add_argument("--train-steps", type=int, default=0, help="Adam steps on the random batch first")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    torch.manual_seed(args.seed)
    input_ids = torch.randint(0, args.vocab_size, (args.batch_size, args.seq_len + 1))
    curves = {}
    for label, overrides in MODELS.items():
        torch.manual_seed(args.seed)
        config = RNNConfig(
            vocab_size=args.vocab_size, embedding_size=args.hidden_size, hidden_size=args.hidden_size,
            num_layers=args.num_layers, init_range=args.init_range, pad_token_id=None, **overrides,
        )
        model = RNNForCausalLM(config)
        if args.train_steps:
            opt = torch.optim.Adam(model.parameters(), lr=1e-3)
            for _ in range(args.train_steps):
                loss = model(input_ids, labels=input_ids).loss
                opt.zero_grad()
                loss.backward()
                opt.step()
        curves[label] = gradient_norms(model, input_ids)

    distances = [d for d in (1, 10, 25, 50, 100, 200) if d < args.seq_len]
    print(f"fraction of ‖∂L/∂h‖ left at distance d (layer 1 / layer {args.num_layers}), seq_len={args.seq_len}, "
          f"hidden={args.hidden_size}, seed={args.seed}")
    print(f"{'model':30s}" + "".join(f"{'d=' + str(d):>22s}" for d in distances))
    for label, norms in curves.items():
        rel = norms / np.where(norms[:, :1] > 0, norms[:, :1], np.nan)
        cells = "".join(f"{rel[0, d]:>11.2e}/{rel[-1, d]:<10.2e}" for d in distances)
        print(f"{label:30s}{cells}")
    title = (f"gradient of a last-step loss at init: {args.num_layers} layers x {args.hidden_size}, "
             f"U(±{args.init_range}), {args.seq_len} random tokens"
             + (f", after {args.train_steps} steps" if args.train_steps else ""))
    path = plot_gradient_norms(curves, args.output, title=title)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
