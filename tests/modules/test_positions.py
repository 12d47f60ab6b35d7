"""Position encodings: the sinusoidal table against its formula and its shift-is-a-rotation property, the
tables' growth and limits, and RoPE's relative-offset property."""

from __future__ import annotations

import math

import pytest
import torch

from harness.modules.positions import (
    LearnedPositions,
    RotaryEmbedding,
    SinusoidalPositions,
    apply_rotary,
    sinusoidal_table,
)


# ------------------------------------------------------------------ sinusoidal


@pytest.mark.parametrize("p,i", [(0, 0), (1, 0), (7, 1), (13, 3), (50, 5), (99, 7)])
def test_sinusoidal_table_matches_formula(p, i):
    d = 16
    table = sinusoidal_table(100, d)
    assert table.shape == (100, d)
    angle = p / 10000 ** (2 * i / d)
    assert table[p, 2 * i].item() == pytest.approx(math.sin(angle), abs=1e-5)
    assert table[p, 2 * i + 1].item() == pytest.approx(math.cos(angle), abs=1e-5)


def test_sinusoidal_table_custom_base_and_odd_width():
    table = sinusoidal_table(10, 4, base=100.0)
    assert table[3, 2].item() == pytest.approx(math.sin(3 / 100 ** (2 / 4)), abs=1e-6)
    assert table[3, 3].item() == pytest.approx(math.cos(3 / 100 ** (2 / 4)), abs=1e-6)
    with pytest.raises(ValueError, match="even"):
        sinusoidal_table(10, 5)


@pytest.mark.parametrize("p,k", [(0, 1), (5, 3), (20, 17), (40, 0)])
def test_sinusoidal_shift_is_a_rotation_per_pair(p, k):
    d = 12
    table = sinusoidal_table(64, d).double()
    w = 1.0 / 10000 ** (torch.arange(0, d, 2, dtype=torch.float64) / d)  # (d/2,)
    sin_p, cos_p = table[p, 0::2], table[p, 1::2]
    theta = k * w
    # [sin(a + b); cos(a + b)] = [[cos b, sin b], [-sin b, cos b]] @ [sin a; cos a]
    sin_pk = torch.cos(theta) * sin_p + torch.sin(theta) * cos_p
    cos_pk = -torch.sin(theta) * sin_p + torch.cos(theta) * cos_p
    torch.testing.assert_close(table[p + k, 0::2], sin_pk, atol=1e-5, rtol=0)
    torch.testing.assert_close(table[p + k, 1::2], cos_pk, atol=1e-5, rtol=0)
    # the rotation depends on k only: the same matrices take p + 1 to p + 1 + k
    sin_q = torch.cos(theta) * table[p + 1, 0::2] + torch.sin(theta) * table[p + 1, 1::2]
    torch.testing.assert_close(table[p + 1 + k, 0::2], sin_q, atol=1e-5, rtol=0)


def test_sinusoidal_positions_reserve_grows_table():
    module = SinusoidalPositions(8, 6)
    assert module.table.shape == (8, 6)
    assert len(list(module.parameters())) == 0 and "table" not in module.state_dict()
    module.reserve(8)  # fits: unchanged
    assert module.table.shape[0] == 8
    module.reserve(20)
    assert module.table.shape[0] >= 20
    torch.testing.assert_close(module.table, sinusoidal_table(module.table.shape[0], 6))
    positions = torch.tensor([[0, 5, 19], [19, 12, 8]])
    torch.testing.assert_close(module(positions), sinusoidal_table(20, 6)[positions])


def test_learned_positions_reserve_limit():
    module = LearnedPositions(16, 4)
    module.reserve(16)  # exactly the table: fine
    module.reserve(3)
    with pytest.raises(ValueError, match="max_position_embeddings") as info:
        module.reserve(17)
    assert "17" in str(info.value) and "16" in str(info.value)


# ------------------------------------------------------------------ rotary


def rotate(rope, x, position):
    """x (d,) rotated for one position."""
    cos, sin = rope(torch.tensor([[position]]), torch.float64)
    xq = x.view(1, 1, 1, -1)
    rq, _ = apply_rotary(xq, xq, cos, sin)
    return rq.view(-1)


def test_rope_score_depends_on_offset_only():
    torch.manual_seed(0)
    d = 16
    rope = RotaryEmbedding(d).double()
    q, k = torch.randn(d, dtype=torch.float64), torch.randn(d, dtype=torch.float64)
    score = lambda p, s: torch.dot(rotate(rope, q, p), rotate(rope, k, s)).item()  # noqa: E731
    a, b = score(3, 5), score(10, 12)
    assert a == pytest.approx(b, abs=1e-5)
    assert score(0, 2) == pytest.approx(a, abs=1e-5)
    assert abs(score(3, 9) - a) > 1e-3  # another offset gives another score
    assert abs(score(5, 3) - a) > 1e-3  # the sign of the offset matters


def test_rope_preserves_norms_and_position_zero_is_identity():
    torch.manual_seed(1)
    d = 8
    rope = RotaryEmbedding(d)
    q, k = torch.randn(2, 3, 5, d), torch.randn(2, 3, 5, d)
    positions = torch.tensor([[0, 1, 2, 3, 4], [7, 8, 9, 100, 1000]])
    cos, sin = rope(positions, torch.float32)
    assert cos.shape == sin.shape == (2, 1, 5, d)
    rq, rk = apply_rotary(q, k, cos, sin)
    torch.testing.assert_close(rq.norm(dim=-1), q.norm(dim=-1), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(rk.norm(dim=-1), k.norm(dim=-1), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(rq[0, :, 0], q[0, :, 0])  # position 0 is not rotated
    assert not torch.allclose(rq[0, :, 1], q[0, :, 1])


def test_rope_rotates_pairs_i_and_i_plus_half():
    """Rotate-half layout: dimension i pairs with i + d/2, angle p * base^(-2i/d)."""
    d, p = 8, 3
    rope = RotaryEmbedding(d)
    cos, sin = rope(torch.tensor([[p]]), torch.float64)
    for i in range(d // 2):
        x = torch.zeros(d, dtype=torch.float64)
        x[i] = 1.0
        rx, _ = apply_rotary(x.view(1, 1, 1, d), x.view(1, 1, 1, d), cos, sin)
        rx = rx.view(-1)
        angle = p * 10000 ** (-2 * i / d)
        expected = torch.zeros(d, dtype=torch.float64)
        expected[i], expected[i + d // 2] = math.cos(angle), math.sin(angle)
        torch.testing.assert_close(rx, expected, atol=1e-6, rtol=0)


def test_rope_rejects_odd_head_width():
    with pytest.raises(ValueError, match="even"):
        RotaryEmbedding(7)
