"""Attention tests: the fused path against the written-out formula, masks, a causal-leak gradient probe,
per-head equivalence from the stacked projections, and the key/value caches of transformers."""

from __future__ import annotations

import math

import pytest
import torch

from harness.modules.attention import (
    CrossAttention,
    SelfAttention,
    attention_mask,
    attention_reference,
    scaled_dot_product_attention,
)

B, H, D_K = 2, 3, 8


def qkv(L, S, seed=0, batch=B, heads=H, d_k=D_K):
    gen = torch.Generator().manual_seed(seed)
    q = torch.randn(batch, heads, L, d_k, generator=gen)
    k = torch.randn(batch, heads, S, d_k, generator=gen)
    v = torch.randn(batch, heads, S, d_k, generator=gen)
    return q, k, v


def bottom_right_allowed(L, S):
    """(L, S) True where query i (the last L of S positions) may see key j: j <= i + S - L, by loops."""
    return torch.tensor([[j <= i + S - L for j in range(S)] for i in range(L)])


# a left-padded batch: row 0 full, row 1 with two padding positions first, row 2 with one padding key at the end
KEY_PADDING = torch.tensor([[1, 1, 1, 1, 1, 1],
                            [0, 0, 1, 1, 1, 1],
                            [1, 1, 1, 1, 1, 0]])


# ------------------------------------------------------------------ fused path == formula


@pytest.mark.parametrize("L,S,is_causal", [(5, 5, False), (5, 5, True), (3, 7, True), (1, 6, True), (4, 9, False),
                                           (7, 3, False)],
                         ids=["plain", "causal-square", "causal-cached", "causal-one-query", "cross", "cross-long-q"])
def test_fast_path_matches_reference(L, S, is_causal):
    q, k, v = qkv(L, S)
    fast, weights = scaled_dot_product_attention(q, k, v, is_causal=is_causal)
    ref, ref_weights = attention_reference(q, k, v, is_causal=is_causal)
    assert weights is None
    assert fast.shape == (B, H, L, D_K)
    torch.testing.assert_close(fast, ref, atol=1e-5, rtol=1e-5)
    if is_causal:  # and the reference itself masks bottom-right aligned
        assert torch.equal(ref_weights[0, 0] > 0, bottom_right_allowed(L, S))


def test_fast_path_causal_cached_is_the_last_rows_of_the_full_causal():
    """Queries that are the last L of S positions answer as those rows of the full square causal attention."""
    S, L = 7, 3
    q, k, v = qkv(S, S, seed=1)
    full, _ = scaled_dot_product_attention(q, k, v, is_causal=True)
    tail, _ = scaled_dot_product_attention(q[:, :, -L:], k, v, is_causal=True)
    torch.testing.assert_close(tail, full[:, :, -L:], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("L", [6, 2])
def test_fast_path_matches_reference_with_padding_mask(causal, L):
    S = KEY_PADDING.shape[1]
    q, k, v = qkv(L, S, seed=2, batch=KEY_PADDING.shape[0])
    mask, is_causal = attention_mask(KEY_PADDING, L, causal)
    assert mask.shape == (KEY_PADDING.shape[0], 1, L, S) and mask.dtype == torch.bool and is_causal is False
    fast, _ = scaled_dot_product_attention(q, k, v, mask, is_causal)
    ref, ref_weights = attention_reference(q, k, v, mask, is_causal)
    assert torch.isfinite(fast).all()
    torch.testing.assert_close(fast, ref, atol=1e-5, rtol=1e-5)
    # padding keys get no weight from any real query
    real_queries = KEY_PADDING[:, S - L:].bool()
    for b in range(KEY_PADDING.shape[0]):
        for i in range(L):
            if real_queries[b, i]:
                assert (ref_weights[b, :, i][:, KEY_PADDING[b] == 0] == 0).all()


def test_need_weights_returns_reference():
    q, k, v = qkv(4, 6, seed=3)
    out, weights = scaled_dot_product_attention(q, k, v, is_causal=True, need_weights=True)
    ref, ref_weights = attention_reference(q, k, v, is_causal=True)
    assert torch.equal(out, ref) and torch.equal(weights, ref_weights)


# ------------------------------------------------------------------ the reference's weights


def test_reference_weights_against_direct_softmax():
    q, k, v = qkv(4, 5, seed=4)
    out, weights = attention_reference(q, k, v)
    expected = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(D_K), dim=-1)
    torch.testing.assert_close(weights, expected)
    torch.testing.assert_close(out, expected @ v)


def test_reference_weights_rows_sum_to_one_and_masked_keys_are_zero():
    L, S = 4, 6
    q, k, v = qkv(L, S, seed=5)
    gen = torch.Generator().manual_seed(5)
    mask = torch.rand(B, 1, L, S, generator=gen) < 0.6
    mask[..., 0] = True  # every row sees at least one key
    _, weights = attention_reference(q, k, v, mask)
    torch.testing.assert_close(weights.sum(-1), torch.ones(B, H, L))
    full_mask = mask.expand(B, H, L, S)
    assert (weights[~full_mask] == 0).all()  # exactly zero
    assert (weights[full_mask] > 0).all()


@pytest.mark.parametrize("L,S", [(5, 5), (3, 7)])
def test_reference_causal_weights_zero_above_bottom_right_diagonal(L, S):
    q, k, v = qkv(L, S, seed=6)
    _, weights = attention_reference(q, k, v, is_causal=True)
    torch.testing.assert_close(weights.sum(-1), torch.ones(B, H, L))
    allowed = bottom_right_allowed(L, S)
    assert (weights[..., ~allowed] == 0).all()
    assert (weights[..., allowed] > 0).all()
    # the last query sees every key
    assert (weights[:, :, -1] > 0).all()


# ------------------------------------------------------------------ no output depends on a later input


@pytest.mark.parametrize("need_weights", [False, True], ids=["fast", "weights"])
def test_causal_self_attention_has_no_future_gradient(need_weights):
    torch.manual_seed(0)
    Bt, T, Dm = 2, 6, 16
    layer = SelfAttention(Dm, 4).eval()
    x = torch.randn(Bt, T, Dm, requires_grad=True)
    y, _ = layer(x, is_causal=True, need_weights=need_weights)
    for t in range(T):
        (grad,) = torch.autograd.grad(y[:, t].sum(), x, retain_graph=True)
        per_position = grad.abs().sum(dim=(0, 2))  # (T,)
        assert (per_position[t + 1:] == 0).all(), (t, per_position)
        assert (per_position[: t + 1] > 0).any(), (t, per_position)
        assert per_position[t] > 0  # a position always depends on itself


def test_non_causal_self_attention_does_depend_on_the_future():
    """The probe above can fail: without the causal mask the first output reads the last input."""
    torch.manual_seed(0)
    layer = SelfAttention(16, 4).eval()
    x = torch.randn(2, 6, 16, requires_grad=True)
    y, _ = layer(x)
    (grad,) = torch.autograd.grad(y[:, 0].sum(), x)
    assert grad[:, -1].abs().sum() > 0


# ------------------------------------------------------------------ heads one by one


@pytest.mark.parametrize("need_weights", [False, True], ids=["fast", "weights"])
def test_self_attention_equals_heads_computed_one_by_one(need_weights):
    torch.manual_seed(1)
    Bt, T, Dm, heads = 2, 5, 12, 3
    d_k = Dm // heads
    layer = SelfAttention(Dm, heads).eval()
    x = torch.randn(Bt, T, Dm)
    with torch.no_grad():
        y, _ = layer(x, need_weights=need_weights)
        W, b = layer.qkv.weight.T, layer.qkv.bias  # (D, 3D): x @ W + b
        W_Q, W_K, W_V = W[:, :Dm], W[:, Dm:2 * Dm], W[:, 2 * Dm:]
        b_Q, b_K, b_V = b[:Dm], b[Dm:2 * Dm], b[2 * Dm:]
        outs = []
        for h in range(heads):
            cols = slice(h * d_k, (h + 1) * d_k)
            Q = x @ W_Q[:, cols] + b_Q[cols]  # (B, T, d_k)
            K = x @ W_K[:, cols] + b_K[cols]
            V = x @ W_V[:, cols] + b_V[cols]
            A = torch.softmax(Q @ K.transpose(-2, -1) / math.sqrt(d_k), dim=-1)
            outs.append(A @ V)
        expected = torch.cat(outs, dim=-1) @ layer.out.weight.T + layer.out.bias
    torch.testing.assert_close(y, expected, atol=1e-5, rtol=1e-5)


def test_self_attention_rejects_indivisible_width():
    with pytest.raises(ValueError, match="divisible"):
        SelfAttention(10, 3)
    with pytest.raises(ValueError, match="divisible"):
        CrossAttention(10, 4)


# ------------------------------------------------------------------ attention_mask


@pytest.mark.parametrize("causal", [False, True])
def test_attention_mask_without_padding_is_the_causal_flag(causal):
    assert attention_mask(None, 5, causal) == (None, causal)


def test_attention_mask_left_padded_causal():
    padding = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])
    L = S = padding.shape[1]
    mask, is_causal = attention_mask(padding, L, True)
    assert is_causal is False and mask.shape == (2, 1, L, S)
    assert mask.any(dim=-1).all()  # no row without a key
    for b in range(2):
        for i in range(L):
            row = mask[b, 0, i]
            if padding[b, i]:
                expected = torch.tensor([bool(padding[b, j]) and j <= i for j in range(S)])
                assert torch.equal(row, expected), (b, i, row)
            elif not (padding[b, : i + 1].bool()).any():
                assert row.all(), (b, i, row)  # a padding query with nothing to see sees everything


def test_attention_mask_cached_queries_are_bottom_right():
    """With a cache the padding covers S keys and only the last L positions are queries."""
    padding = torch.tensor([[0, 1, 1, 1, 1, 1]])
    L, S = 2, 6
    mask, _ = attention_mask(padding, L, True)
    expected = bottom_right_allowed(L, S) & padding.bool()
    assert torch.equal(mask[0, 0], expected)


def test_attention_mask_not_causal_is_the_key_padding_on_every_row():
    padding = torch.tensor([[1, 1, 1, 0], [0, 1, 1, 1]])
    mask, is_causal = attention_mask(padding, 3, False)
    assert is_causal is False and mask.shape == (2, 1, 3, 4)
    assert torch.equal(mask[:, 0], padding.bool()[:, None, :].expand(2, 3, 4))


# ------------------------------------------------------------------ caches


def test_cross_attention_cache_reuses_projected_keys():
    from transformers import DynamicCache, EncoderDecoderCache

    torch.manual_seed(2)
    Dm, heads = 16, 4
    layer = CrossAttention(Dm, heads, layer_idx=0).eval()
    memory = torch.randn(2, 7, Dm)
    x1, x2 = torch.randn(2, 1, Dm), torch.randn(2, 1, Dm)
    padding = torch.tensor([[1] * 7, [1] * 5 + [0] * 2])
    mask, _ = attention_mask(padding, 1, False)
    cache = EncoderDecoderCache(DynamicCache(), DynamicCache())
    with torch.no_grad():
        y1, _ = layer(x1, memory, mask, cache=cache)
        assert cache.is_updated.get(0) is True
        keys = cache.cross_attention_cache.layers[0].keys
        assert keys.shape == (2, heads, 7, Dm // heads)
        calls = []
        hook = layer.kv.register_forward_hook(lambda *args: calls.append(1))
        # the second step passes different memory: with the cache, the first step's keys must be used
        y2, _ = layer(x2, torch.zeros_like(memory), mask, cache=cache)
        hook.remove()
        assert calls == []  # the keys/values were not projected again
        assert cache.cross_attention_cache.layers[0].keys is keys or torch.equal(
            cache.cross_attention_cache.layers[0].keys, keys)
        y1_plain, _ = layer(x1, memory, mask)
        y2_plain, _ = layer(x2, memory, mask)
    torch.testing.assert_close(y1, y1_plain, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(y2, y2_plain, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("need_weights", [False, True], ids=["fast", "weights"])
def test_self_attention_dynamic_cache_matches_full_causal(need_weights):
    from transformers import DynamicCache

    torch.manual_seed(3)
    Dm, heads, T = 16, 4, 9
    layer = SelfAttention(Dm, heads, layer_idx=0).eval()
    x = torch.randn(2, T, Dm)
    cache = DynamicCache()
    with torch.no_grad():
        full, _ = layer(x, is_causal=True, need_weights=need_weights)
        first, _ = layer(x[:, :4], is_causal=True, cache=cache, need_weights=need_weights)
        second, w = layer(x[:, 4:], is_causal=True, cache=cache, need_weights=need_weights)
    assert cache.get_seq_length(0) == T
    if need_weights:
        assert w.shape == (2, heads, T - 4, T)
    torch.testing.assert_close(torch.cat([first, second], dim=1), full, atol=1e-5, rtol=1e-5)


def test_self_attention_dynamic_cache_token_by_token():
    from transformers import DynamicCache

    torch.manual_seed(4)
    layer = SelfAttention(16, 2, layer_idx=0).eval()
    x = torch.randn(1, 6, 16)
    cache = DynamicCache()
    with torch.no_grad():
        full, _ = layer(x, is_causal=True)
        steps = [layer(x[:, t:t + 1], is_causal=True, cache=cache)[0] for t in range(6)]
    torch.testing.assert_close(torch.cat(steps, dim=1), full, atol=1e-5, rtol=1e-5)
