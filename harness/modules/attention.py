r"""Scaled dot-product attention, written out and fast, and the multi-head layers built on it.

Shapes: ``B`` batch, ``H`` heads, ``L`` query positions, ``S`` key/value positions, ``D`` model width,
``d_k = D / H`` the width of one head.

**Scaled dot-product attention** (Vaswani et al. 2017, §3.2.1):

.. math:: \mathrm{Attention}(Q, K, V) = \mathrm{softmax}\!\left(\frac{QK^\top}{\sqrt{d_k}} + M\right) V

where :math:`M` is 0 where a query may look at a key and :math:`-\infty` where it may not (a padded key,
or — with the causal mask — a key in the query's future). Dividing by :math:`\sqrt{d_k}` keeps the logits'
variance at about 1 whatever the head width, so the softmax does not saturate. :func:`attention_reference`
is this formula step by step and returns the weights (what ``output_attentions=True`` shows);
:func:`scaled_dot_product_attention` sends the same computation to
``torch.nn.functional.scaled_dot_product_attention`` (flash / memory-efficient kernels on a GPU) unless the
weights are wanted. A test holds the two equal to 1e-5 in fp32.

**Multi-head attention** (§3.2.2): :math:`\mathrm{MultiHead}(X) = \mathrm{Concat}(\mathrm{head}_1, \ldots,
\mathrm{head}_H) W^O`, :math:`\mathrm{head}_h = \mathrm{Attention}(X W^Q_h, X W^K_h, X W^V_h)` with
per-head projections :math:`W^Q_h \in \mathbb{R}^{D \times d_k}`. The :math:`H` per-head matrices are
stored side by side as one ``D × D`` matrix per role (and self-attention keeps the three roles in one
``D × 3D`` matrix, one matrix multiply), so head :math:`h` is columns ``h·d_k … (h+1)·d_k`` of each; a test
computes the heads one by one from those slices and gets the same output.

* **Self-attention** (:class:`SelfAttention`): queries, keys and values all come from the same sequence.
* **Causal (masked) self-attention**: position :math:`t` may attend to positions :math:`\le t` only — a
  language model must not read the word it predicts. A gradient test proves no output depends on a later
  input.
* **Cross-attention** (:class:`CrossAttention`): queries from the decoder, keys and values from the
  encoder's output; the encoder's padding mask applies.

Caches (``transformers`` 5 API): self-attention appends this step's keys and values to a
``DynamicCache`` layer (``cache.update(k, v, layer_idx)``) and attends over everything so far; cross-attention
computes the encoder's keys and values once and keeps them in an ``EncoderDecoderCache``'s
``cross_attention_cache`` (``is_updated[layer_idx]``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from harness.modules.positions import apply_rotary


def attention_reference(q, k, v, mask=None, is_causal: bool = False, dropout_p: float = 0.0, scale=None):
    """Attention exactly as the formula reads. ``q`` ``(B, H, L, d_k)``, ``k``/``v`` ``(B, H, S, d_k)``; ``mask``
    boolean, broadcastable to ``(B, H, L, S)``, True where attending is allowed; ``is_causal``: query ``i`` sees
    keys ``<= i + S - L`` (the last query sees every key). Returns the output ``(B, H, L, d_k)`` and the weights
    ``(B, H, L, S)``."""
    d_k = q.shape[-1]
    scale = 1.0 / math.sqrt(d_k) if scale is None else scale
    scores = torch.matmul(q, k.transpose(-2, -1)) * scale  # (B, H, L, d_k) x (B, H, d_k, S) → (B, H, L, S)
    L, S = scores.shape[-2:]
    if is_causal:
        future = torch.ones(L, S, dtype=torch.bool, device=q.device).triu(S - L + 1)  # (L, S): True above the diagonal
        scores = scores.masked_fill(future, float("-inf"))
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))  # a forbidden key gets weight exp(-inf) = 0
    weights = torch.softmax(scores.float(), dim=-1).to(q.dtype)  # (B, H, L, S): each row sums to 1
    if dropout_p:
        weights = F.dropout(weights, p=dropout_p)
    return torch.matmul(weights, v), weights  # (B, H, L, S) x (B, H, S, d_k) → (B, H, L, d_k)


def scaled_dot_product_attention(q, k, v, mask=None, is_causal: bool = False, dropout_p: float = 0.0,
                                 need_weights: bool = False):
    """:func:`attention_reference`'s result; through PyTorch's fused kernels unless ``need_weights`` (then the
    written-out path, whose weights are returned; else the weights are None)."""
    if need_weights:
        return attention_reference(q, k, v, mask, is_causal, dropout_p)
    if is_causal and q.shape[-2] != k.shape[-2]:
        # PyTorch's is_causal aligns the mask to the top-left corner; with cached keys the queries are the last
        # L of S positions: spell the bottom-right mask out
        L, S = q.shape[-2], k.shape[-2]
        allowed = torch.ones(L, S, dtype=torch.bool, device=q.device).tril(S - L)
        mask = allowed if mask is None else mask & allowed
        is_causal = False
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p, is_causal=is_causal)
    return out, None


def attention_mask(key_padding: torch.Tensor | None, query_length: int, causal: bool):
    """The mask one forward's attention layers share: ``(mask, is_causal)`` for :func:`scaled_dot_product_attention`.

    ``key_padding``: ``(B, S)``, 1 for a real key, 0 for padding (the usual ``attention_mask``; with a cache, it
    covers the cached positions too); None when nothing is padded. Returns ``(None, causal)`` when the causal
    rule is the only one (the fused kernels' fastest path), else a boolean ``(B, 1, L, S)`` mask. A query row
    that would see no key at all (a padding query in a left-padded batch) is allowed to see every key, so the
    softmax stays finite; its output is never used.
    """
    if key_padding is None:
        return None, causal
    keys = key_padding.bool()  # (B, S)
    S = keys.shape[-1]
    allowed = keys[:, None, None, :].expand(-1, 1, query_length, S)  # (B, 1, L, S)
    if causal:
        allowed = allowed & torch.ones(query_length, S, dtype=torch.bool, device=keys.device).tril(S - query_length)
    allowed = allowed | ~allowed.any(dim=-1, keepdim=True)
    return allowed, False


def _check_heads(hidden_size: int, num_heads: int) -> None:
    if hidden_size % num_heads:
        raise ValueError(f"hidden_size ({hidden_size}) must be divisible by num_heads ({num_heads})")


def _split_heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    B, T, D = x.shape
    return x.view(B, T, num_heads, D // num_heads).transpose(1, 2)  # (B, T, D) → (B, H, T, d_k)


def _merge_heads(x: torch.Tensor) -> torch.Tensor:
    B, H, T, d_k = x.shape
    return x.transpose(1, 2).reshape(B, T, H * d_k)  # (B, H, T, d_k) → (B, T, D): the heads concatenated


class SelfAttention(nn.Module):
    """Multi-head self-attention: ``qkv`` (one ``D × 3D`` projection: :math:`[W^Q; W^K; W^V]`), the attention of
    every head, the heads concatenated and ``out`` (:math:`W^O`)."""

    def __init__(self, hidden_size: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 layer_idx: int | None = None):
        super().__init__()
        _check_heads(hidden_size, num_heads)
        self.num_heads, self.dropout, self.layer_idx = num_heads, dropout, layer_idx
        self.qkv = nn.Linear(hidden_size, 3 * hidden_size, bias=bias)
        self.out = nn.Linear(hidden_size, hidden_size, bias=bias)

    def forward(self, x, mask=None, is_causal: bool = False, rotary=None, cache=None, need_weights: bool = False):
        """``x`` ``(B, L, D)`` → ``(B, L, D)`` and the weights ``(B, H, L, S)`` (None unless ``need_weights``).
        ``rotary``: RoPE's ``(cos, sin)`` for these positions; ``cache``: a ``DynamicCache`` (keys and values of the
        earlier positions are read from it and this step's appended)."""
        q, k, v = self.qkv(x).chunk(3, dim=-1)  # 3 × (B, L, D)
        q, k, v = (_split_heads(t, self.num_heads) for t in (q, k, v))  # 3 × (B, H, L, d_k)
        if rotary is not None:
            q, k = apply_rotary(q, k, *rotary)
        if cache is not None:
            k, v = cache.update(k, v, self.layer_idx)  # (B, H, S, d_k): the cached positions, then these
        dropout = self.dropout if self.training else 0.0
        out, weights = scaled_dot_product_attention(q, k, v, mask, is_causal, dropout, need_weights)
        return self.out(_merge_heads(out)), weights


class CrossAttention(nn.Module):
    """Multi-head attention from the decoder (queries) to the encoder's output (keys and values)."""

    def __init__(self, hidden_size: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 layer_idx: int | None = None):
        super().__init__()
        _check_heads(hidden_size, num_heads)
        self.num_heads, self.dropout, self.layer_idx = num_heads, dropout, layer_idx
        self.q = nn.Linear(hidden_size, hidden_size, bias=bias)
        self.kv = nn.Linear(hidden_size, 2 * hidden_size, bias=bias)
        self.out = nn.Linear(hidden_size, hidden_size, bias=bias)

    def forward(self, x, memory, mask=None, cache=None, need_weights: bool = False):
        """``x`` ``(B, L, D)`` decoder states, ``memory`` ``(B, S, D)`` encoder output, ``mask`` ``(B, 1, L|1, S)`` the
        encoder's padding; ``cache``: an ``EncoderDecoderCache`` (the encoder's keys and values are projected once)."""
        q = _split_heads(self.q(x), self.num_heads)  # (B, H, L, d_k)
        if cache is not None and cache.is_updated.get(self.layer_idx):
            layer = cache.cross_attention_cache.layers[self.layer_idx]
            k, v = layer.keys, layer.values  # (B, H, S, d_k), projected at the first step
        else:
            k, v = (_split_heads(t, self.num_heads) for t in self.kv(memory).chunk(2, dim=-1))  # 2 × (B, H, S, d_k)
            if cache is not None:
                k, v = cache.cross_attention_cache.update(k, v, self.layer_idx)
                cache.is_updated[self.layer_idx] = True
        dropout = self.dropout if self.training else 0.0
        out, weights = scaled_dot_product_attention(q, k, v, mask, False, dropout, need_weights)
        return self.out(_merge_heads(out)), weights


__all__ = ["attention_reference", "scaled_dot_product_attention", "attention_mask", "SelfAttention",
           "CrossAttention"]
