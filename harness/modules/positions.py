r"""Position information for attention models: sinusoidal, learned absolute and rotary.

Attention is permutation-invariant — softmax(QKᵀ/√d)V gives every position the same answer whatever the
order of the others — so a Transformer must be told where each token is.

* **Sinusoidal** (Vaswani et al. 2017, §3.5): a fixed table added to the token embeddings,

  .. math:: PE_{(p, 2i)} = \sin(p / 10000^{2i/d}),\qquad PE_{(p, 2i+1)} = \cos(p / 10000^{2i/d}),

  one frequency per pair of dimensions, from :math:`2\pi` to :math:`10000 \cdot 2\pi` in wavelength; the
  encoding of :math:`p + k` is a linear function (a rotation per pair) of that of :math:`p`. No parameters,
  defined for any position.
* **Learned absolute** (BERT, GPT-2): one trained vector per position, ``nn.Embedding(max_positions, d)``;
  a position beyond the table is an error (:class:`LearnedPositions` says which).
* **Rotary** (RoPE, Su et al. 2021): nothing is added to the embeddings; instead every query and key pair of
  dimensions :math:`(x_{2i}, x_{2i+1})` at position :math:`p` is rotated by the angle :math:`p\,\theta_i`,
  :math:`\theta_i = \text{base}^{-2i/d_k}`. Then :math:`\langle R_p q, R_s k \rangle = \langle q,
  R_{s-p} k\rangle`: the attention score depends on the relative offset only. Applied per layer, inside
  attention (:func:`apply_rotary`). This file uses the "rotate half" layout (pairs are dimension ``i`` and
  ``i + d_k/2``), as GPT-NeoX and Llama do; it is the same rotation with the dimensions permuted.

Every module takes ``position_ids`` ``(batch, length)`` — positions are per row, so a left-padded batch
(generation) numbers each row's real tokens from 0.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def sinusoidal_table(num_positions: int, dim: int, base: float = 10000.0) -> torch.Tensor:
    """The ``(num_positions, dim)`` table above (``dim`` even)."""
    if dim % 2:
        raise ValueError(f"sinusoidal positions need an even width, got {dim}")
    position = torch.arange(num_positions, dtype=torch.float32).unsqueeze(1)  # (P, 1)
    inv_freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(base) / dim))  # (d/2,)
    table = torch.zeros(num_positions, dim)
    table[:, 0::2] = torch.sin(position * inv_freq)  # (P, d/2): even dimensions
    table[:, 1::2] = torch.cos(position * inv_freq)  # (P, d/2): odd dimensions
    return table


class SinusoidalPositions(nn.Module):
    """Fixed sinusoidal encodings (no parameters; the table is rebuilt, never saved). :meth:`reserve` grows the
    table when a longer sequence comes (generation past ``num_positions``)."""

    def __init__(self, num_positions: int, dim: int, base: float = 10000.0):
        super().__init__()
        self.dim, self.base = dim, base
        self.register_buffer("table", sinusoidal_table(num_positions, dim, base), persistent=False)

    def reserve(self, num_positions: int) -> None:
        """Make room for positions ``0 .. num_positions - 1`` (a host-side length: no device sync)."""
        if num_positions > self.table.shape[0]:
            self.table = sinusoidal_table(2 * num_positions, self.dim, self.base).to(self.table.device)

    def forward(self, position_ids: torch.LongTensor) -> torch.Tensor:
        """``(batch, length)`` positions → ``(batch, length, dim)`` encodings."""
        return self.table[position_ids]


class LearnedPositions(nn.Embedding):
    """One trained vector per position (BERT, GPT-2). :meth:`reserve` refuses a length past the table, with the
    sizes in the message."""

    def reserve(self, num_positions: int) -> None:
        if num_positions > self.num_embeddings:
            raise ValueError(f"a sequence of {num_positions} positions is longer than the learned position table "
                             f"({self.num_embeddings} positions, config.max_position_embeddings): shorten the input "
                             "(training.max_length) or use position_embedding: sinusoidal / rotary")


class RotaryEmbedding(nn.Module):
    """The cosines and sines of RoPE's angles :math:`p\\,\\theta_i` for given positions."""

    def __init__(self, head_dim: int, base: float = 10000.0):
        super().__init__()
        if head_dim % 2:
            raise ValueError(f"rotary positions need an even head width, got {head_dim}")
        inv_freq = 1.0 / (base ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))  # (d_k/2,)
        self.register_buffer("inv_freq", inv_freq, persistent=False)

    def forward(self, position_ids: torch.LongTensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """``(batch, length)`` → ``cos, sin`` of shape ``(batch, 1, length, head_dim)`` (broadcast over heads)."""
        angles = position_ids.float().unsqueeze(-1) * self.inv_freq.to(position_ids.device)  # (B, L, d_k/2)
        angles = torch.cat((angles, angles), dim=-1).unsqueeze(1)  # (B, 1, L, d_k): pair i with i + d_k/2
        return angles.cos().to(dtype), angles.sin().to(dtype)


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    first, second = x.chunk(2, dim=-1)
    return torch.cat((-second, first), dim=-1)


def apply_rotary(q: torch.Tensor, k: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor):
    """Rotate queries and keys ``(batch, heads, length, head_dim)``: each pair ``(x_i, x_{i+d/2})`` by its angle,
    ``x·cos + rotate_half(x)·sin`` = ``(x_i cos − x_{i+d/2} sin, x_{i+d/2} cos + x_i sin)``."""
    return q * cos + _rotate_half(q) * sin, k * cos + _rotate_half(k) * sin


__all__ = ["sinusoidal_table", "SinusoidalPositions", "LearnedPositions", "RotaryEmbedding", "apply_rotary"]
