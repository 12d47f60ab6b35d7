"""CRF tests: every structured quantity against brute force over all tag paths (itertools.product)."""

from __future__ import annotations

import itertools

import pytest
import torch

from harness.modules.crf import CRF, FORBIDDEN_SCORE, allowed_transitions

LABELS_IOB = ["O", "B-PER", "I-PER", "B-LOC"]  # 4 tags: brute force stays 4**4 = 256 paths
LENGTHS = [4, 2, 1, 3]


def make_inputs(batch=4, seq_len=4, num_tags=4, lengths=LENGTHS, seed=0, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    emissions = torch.randn(batch, seq_len, num_tags, generator=gen, dtype=dtype)
    tags = torch.randint(num_tags, (batch, seq_len), generator=gen)
    # (B, L) left-aligned prefixes
    mask = torch.arange(seq_len).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)
    return emissions, tags, mask


def make_crf(num_tags=4, constraints=None, seed=0, batch_first=True):
    torch.manual_seed(seed)
    crf = CRF(num_tags, batch_first=batch_first, constraints=constraints).double()
    with torch.no_grad():  # bigger than the default init so paths differ clearly
        for p in crf.parameters():
            p.normal_()
    return crf


def path_score(crf, emissions, path, allowed=None):
    """s(path) for one sequence from the raw parameters; None if a constraint forbids the path."""
    if allowed is not None:
        pairs, start, end = set(allowed.transitions), set(allowed.start), set(allowed.end)
        if path[0] not in start or path[-1] not in end or any(p not in pairs for p in zip(path, path[1:])):
            return None
    score = crf.start_transitions[path[0]] + crf.end_transitions[path[-1]]
    score = score + sum(emissions[t, y] for t, y in enumerate(path))
    score = score + sum(crf.transitions[a, b] for a, b in zip(path, path[1:]))
    return score


def all_scores(crf, emissions, n, allowed=None):
    """{path: score} over every (allowed) path of length n, brute force."""
    out = {}
    for path in itertools.product(range(crf.num_tags), repeat=n):
        s = path_score(crf, emissions[:n], path, allowed)
        if s is not None:
            out[path] = s
    return out


# ---------------------------------------------------------------- brute force, unconstrained


def test_log_partition_matches_brute_force():
    crf = make_crf()
    emissions, _, mask = make_inputs()
    log_z = crf.log_partition(emissions, mask)
    for b, n in enumerate(LENGTHS):
        expected = torch.logsumexp(torch.stack(list(all_scores(crf, emissions[b], n).values())), 0)
        assert log_z[b].item() == pytest.approx(expected.item(), abs=1e-9)


def test_log_likelihood_matches_brute_force():
    crf = make_crf()
    emissions, tags, mask = make_inputs()
    llh = crf(emissions, tags, mask, reduction="none")
    for b, n in enumerate(LENGTHS):
        scores = all_scores(crf, emissions[b], n)
        expected = scores[tuple(tags[b, :n].tolist())] - torch.logsumexp(torch.stack(list(scores.values())), 0)
        assert llh[b].item() == pytest.approx(expected.item(), abs=1e-9)


def test_probabilities_sum_to_one():
    crf = make_crf()
    emissions, _, _ = make_inputs(batch=1, lengths=[3], seq_len=3)
    total = 0.0
    for path in itertools.product(range(4), repeat=3):
        tags = torch.tensor([path])
        total += crf(emissions, tags).exp().item()
    assert total == pytest.approx(1.0, abs=1e-9)


def test_viterbi_matches_brute_force_argmax():
    crf = make_crf()
    emissions, _, mask = make_inputs()
    paths = crf.decode(emissions, mask)
    padded, scores = crf.decode_padded(emissions, mask)
    assert [len(p) for p in paths] == LENGTHS
    for b, n in enumerate(LENGTHS):
        scored = all_scores(crf, emissions[b], n)
        best = max(scored, key=lambda p: scored[p].item())
        assert tuple(paths[b]) == best
        assert scores[b].item() == pytest.approx(scored[best].item(), abs=1e-9)
        assert padded[b, :n].tolist() == list(best)
        assert (padded[b, n:] == -1).all()


def test_decode_padded_pad_tag_and_no_mask():
    crf = make_crf()
    emissions, _, mask = make_inputs()
    padded, _ = crf.decode_padded(emissions, mask, pad_tag=99)
    assert padded.shape == mask.shape and padded.dtype == torch.long
    assert (padded[~mask] == 99).all()
    full = crf.decode(emissions)
    assert [len(p) for p in full] == [4] * 4


def test_padding_does_not_change_results():
    """A sequence scored alone (no padding) gives the same LL and path as inside a padded batch."""
    crf = make_crf()
    emissions, tags, mask = make_inputs()
    llh = crf(emissions, tags, mask, reduction="none")
    paths = crf.decode(emissions, mask)
    for b, n in enumerate(LENGTHS):
        alone = crf(emissions[b : b + 1, :n], tags[b : b + 1, :n], reduction="none")
        assert alone.item() == pytest.approx(llh[b].item(), abs=1e-9)
        assert crf.decode(emissions[b : b + 1, :n]) == [paths[b]]


def test_no_mask_equals_all_on_mask():
    crf = make_crf()
    emissions, tags, _ = make_inputs()
    full = torch.ones(4, 4, dtype=torch.bool)
    assert torch.equal(crf(emissions, tags, reduction="none"), crf(emissions, tags, full, reduction="none"))
    assert crf.decode(emissions) == crf.decode(emissions, full)


def test_tags_under_padding_are_ignored():
    crf = make_crf()
    emissions, tags, mask = make_inputs()
    ignored = tags.masked_fill(~mask, -100)
    assert torch.allclose(crf(emissions, tags, mask), crf(emissions, ignored, mask))


# ---------------------------------------------------------------- reductions


def test_reductions():
    crf = make_crf()
    emissions, tags, mask = make_inputs()
    none = crf(emissions, tags, mask, reduction="none")
    assert none.shape == (4,)
    assert torch.allclose(crf(emissions, tags, mask), none.sum())  # default "sum"
    assert torch.allclose(crf(emissions, tags, mask, reduction="sum"), none.sum())
    assert torch.allclose(crf(emissions, tags, mask, reduction="mean"), none.mean())
    assert torch.allclose(crf(emissions, tags, mask, reduction="token_mean"), none.sum() / sum(LENGTHS))
    assert (none <= 0).all()  # log-likelihood, not loss


# ---------------------------------------------------------------- batch_first


def test_batch_first_false_matches_true():
    crf_bf = make_crf(batch_first=True)
    crf_tf = make_crf(batch_first=False)
    crf_tf.load_state_dict(crf_bf.state_dict())
    emissions, tags, mask = make_inputs()
    em_t, tags_t, mask_t = emissions.transpose(0, 1), tags.t(), mask.t()
    assert torch.allclose(crf_bf(emissions, tags, mask, "none"), crf_tf(em_t, tags_t, mask_t, "none"))
    assert torch.allclose(crf_bf.log_partition(emissions, mask), crf_tf.log_partition(em_t, mask_t))
    assert crf_bf.decode(emissions, mask) == crf_tf.decode(em_t, mask_t)
    padded_bf, scores_bf = crf_bf.decode_padded(emissions, mask)
    padded_tf, scores_tf = crf_tf.decode_padded(em_t, mask_t)
    assert torch.equal(padded_bf, padded_tf.t()) and torch.allclose(scores_bf, scores_tf)


def test_default_is_batch_first():
    assert CRF(3).batch_first is True


# ---------------------------------------------------------------- constraints


def iob2_forbidden(labels, a, b):
    prev, nxt = labels[a], labels[b]
    return nxt.startswith("I-") and not (prev[2:] == nxt[2:] and prev[:2] in ("B-", "I-"))


def test_allowed_transitions_iob2():
    labels = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
    allowed = allowed_transitions(labels, "IOB2")
    pairs = {(labels[a], labels[b]) for a, b in allowed.transitions}
    assert ("O", "I-PER") not in pairs and ("B-PER", "I-LOC") not in pairs and ("I-LOC", "I-PER") not in pairs
    assert {("B-PER", "I-PER"), ("I-PER", "I-PER"), ("I-PER", "B-LOC"), ("O", "B-LOC"), ("I-LOC", "O")} <= pairs
    assert len(pairs) == 25 - sum(iob2_forbidden(labels, a, b) for a in range(5) for b in range(5))
    assert [labels[i] for i in allowed.start] == ["O", "B-PER", "B-LOC"]
    assert allowed.end == list(range(5))


def test_allowed_transitions_iobes_and_bioul():
    labels = ["O", "B-X", "I-X", "E-X", "S-X", "B-Y", "E-Y"]
    allowed = allowed_transitions(labels, "IOBES")
    pairs = {(labels[a], labels[b]) for a, b in allowed.transitions}
    assert {b for a, b in pairs if a == "B-X"} == {"I-X", "E-X"}
    assert {b for a, b in pairs if a == "I-X"} == {"I-X", "E-X"}
    assert {b for a, b in pairs if a == "E-X"} == {"O", "B-X", "S-X", "B-Y"}
    assert {b for a, b in pairs if a == "O"} == {"O", "B-X", "S-X", "B-Y"}
    assert {labels[i] for i in allowed.start} == {"O", "B-X", "S-X", "B-Y"}
    assert {labels[i] for i in allowed.end} == {"O", "E-X", "S-X", "E-Y"}
    # BIOUL is IOBES spelled L/U.
    bioul = [lab.replace("E-", "L-").replace("S-", "U-") for lab in labels]
    assert allowed_transitions(bioul, "BIOUL") == allowed


def test_allowed_transitions_iob1():
    labels = ["O", "B-X", "I-X", "I-Y"]
    allowed = allowed_transitions(labels, "IOB1")
    pairs = {(labels[a], labels[b]) for a, b in allowed.transitions}
    assert ("O", "B-X") not in pairs and ("I-Y", "B-X") not in pairs
    assert {("I-X", "B-X"), ("B-X", "B-X"), ("O", "I-X"), ("I-X", "I-Y")} <= pairs
    assert {labels[i] for i in allowed.start} == {"O", "I-X", "I-Y"}


def test_allowed_transitions_rejects_bad_labels():
    with pytest.raises(ValueError, match=r"scheme: got 'BILOU\?X', expected one of \('IOB1', 'IOB2', 'IOBES', 'BIOUL'\)"):
        allowed_transitions(["O"], "BILOU?X")
    with pytest.raises(ValueError, match=r"label 'E-PER' does not fit scheme IOB2"):
        allowed_transitions(["O", "E-PER"], "IOB2")
    with pytest.raises(ValueError, match=r"label 'PER' does not fit"):
        allowed_transitions(["PER"], "IOBES")


@pytest.mark.parametrize(
    ("labels", "scheme"),
    [
        (["O", "B-PER", "I-PER", "B-LOC"], "IOB2"),
        (["O", "B-X", "I-X", "I-Y"], "IOB1"),
        (["O", "B-X", "E-X", "S-X"], "IOBES"),
        (["O", "B-X", "L-X", "U-X"], "BIOUL"),
    ],
)
def test_constrained_partition_and_viterbi_match_brute_force(labels, scheme):
    allowed = allowed_transitions(labels, scheme)
    crf = make_crf(constraints=allowed)
    assert crf.constrained
    emissions, tags, mask = make_inputs(seed=1)
    log_z = crf.log_partition(emissions, mask)
    paths = crf.decode(emissions, mask)
    llh = crf(emissions, torch.tensor([p + (0,) * (4 - len(p)) for p in map(tuple, paths)]), mask, "none")
    pairs = set(allowed.transitions)
    for b, n in enumerate(LENGTHS):
        scored = all_scores(crf, emissions[b], n, allowed)
        assert scored, "some path must be allowed"
        expected = torch.logsumexp(torch.stack(list(scored.values())), 0)
        assert log_z[b].item() == pytest.approx(expected.item(), abs=1e-9)
        best = max(scored, key=lambda p: scored[p].item())
        assert tuple(paths[b]) == best
        assert llh[b].item() == pytest.approx((scored[best] - expected).item(), abs=1e-9)
        assert paths[b][0] in allowed.start and paths[b][-1] in allowed.end
        assert all(p in pairs for p in zip(paths[b], paths[b][1:]))


def test_viterbi_never_outputs_forbidden_transitions_even_when_emissions_push_for_them():
    labels = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
    crf = CRF.from_scheme(labels, "IOB2")
    allowed = allowed_transitions(labels, "IOB2")
    # Emissions strongly prefer I-LOC everywhere and I-PER at odd steps: unconstrained Viterbi would
    # start with I-LOC and jump I-LOC -> I-PER.
    emissions = torch.full((3, 6, 5), -5.0)
    emissions[:, :, 4] = 5.0
    emissions[:, 1::2, 2] = 8.0
    emissions += torch.randn(3, 6, 5, generator=torch.Generator().manual_seed(0))
    mask = torch.arange(6).unsqueeze(0) < torch.tensor([[6], [3], [1]])
    pairs = set(allowed.transitions)
    for path in crf.decode(emissions, mask):
        assert path[0] in allowed.start
        assert all(p in pairs for p in zip(path, path[1:]))
    unconstrained = CRF(5)
    unconstrained.load_state_dict(crf.state_dict())
    unconstrained.set_constraints(None)
    assert not unconstrained.constrained
    assert any(
        p[0] not in allowed.start or any(q not in pairs for q in zip(p, p[1:]))
        for p in unconstrained.decode(emissions, mask)
    )


def test_gradients_finite_with_constraints_and_forbidden_gold():
    labels = ["O", "B-X", "I-X", "E-X", "S-X"]
    crf = CRF.from_scheme(labels, "IOBES")
    emissions = torch.randn(2, 4, 5, requires_grad=True)
    # Sequence 0 is valid (B-X I-X E-X O); sequence 1 uses forbidden O -> I-X and starts with I-X.
    tags = torch.tensor([[1, 2, 3, 0], [2, 0, 2, 3]])
    llh = crf(emissions, tags, reduction="none")
    assert torch.isfinite(llh).all()
    assert llh[1].item() < FORBIDDEN_SCORE / 2  # finite but hugely unlikely
    (-llh.sum()).backward()
    assert torch.isfinite(emissions.grad).all()
    for p in crf.parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all()
    # Forbidden transition parameters are masked out of the computation: zero gradient.
    assert (crf.transitions.grad[crf._forbidden_transitions] == 0).all()


def test_gradient_matches_finite_differences():
    crf = make_crf(constraints=allowed_transitions(LABELS_IOB, "IOB2"))
    emissions, tags, mask = make_inputs(seed=2)
    tags = torch.tensor([[0, 1, 2, 0], [3, 0, 0, 0], [1, 0, 0, 0], [0, 3, 0, 0]])
    emissions.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda em: crf(em, tags, mask), (emissions,))
    assert torch.autograd.gradcheck(lambda em: crf.log_partition(em, mask), (emissions,))


# ---------------------------------------------------------------- validation


def test_validation_errors_have_got_and_expected():
    crf = CRF(4)
    emissions, tags, mask = make_inputs(dtype=torch.float32)
    with pytest.raises(ValueError, match=r"emissions: got 2 dimensions \(4, 4\), expected 3"):
        crf(emissions[0], tags)
    with pytest.raises(ValueError, match=r"emissions: got 3 tags in the last dimension, expected 4"):
        crf.decode(emissions[:, :, :3])
    with pytest.raises(ValueError, match=r"tags: got shape \(4, 3\), expected \(4, 4\)"):
        crf(emissions, tags[:, :3])
    with pytest.raises(ValueError, match=r"mask: got shape \(4, 3\), expected \(4, 4\)"):
        crf(emissions, tags, mask[:, :3])
    bad_mask = mask.clone()
    bad_mask[2, 0] = False
    with pytest.raises(ValueError, match=r"mask: got the first timestep off for sequences \[2\], expected all on"):
        crf(emissions, tags, bad_mask)
    with pytest.raises(ValueError, match=r"mask: got the first timestep off"):
        crf.decode(emissions, bad_mask)
    gap = torch.ones(4, 4, dtype=torch.bool)
    gap[0, 1] = False
    with pytest.raises(ValueError, match=r"mask: got a gap"):
        crf.log_partition(emissions, gap)
    out_of_range = tags.clone()
    out_of_range[0, 0] = 4
    with pytest.raises(ValueError, match=r"tags: got values in \[0, 4\] under the mask, expected values in \[0, 4\)"):
        crf(emissions, out_of_range, mask)
    out_of_range[0, 0] = -1
    with pytest.raises(ValueError, match=r"tags: got values in \[-1, \d\] under the mask"):
        crf(emissions, out_of_range, mask)
    with pytest.raises(ValueError, match=r"reduction: got 'avg', expected one of"):
        crf(emissions, tags, mask, reduction="avg")
    with pytest.raises(ValueError, match=r"num_tags: got 0, expected a positive integer"):
        CRF(0)
    with pytest.raises(ValueError, match=r"constraints: got tag index 4, expected indices in \[0, 4\)"):
        CRF(4, constraints=allowed_transitions(["O"] * 8, "IOB2"))


def test_time_major_error_names_layout():
    crf = CRF(4, batch_first=False)
    emissions = torch.randn(5, 2, 4)
    with pytest.raises(ValueError, match=r"tags: got shape \(2, 5\), expected \(5, 2\) \(seq_len, batch\)"):
        crf(emissions, torch.zeros(2, 5, dtype=torch.long))


def test_uint8_mask_and_single_step():
    crf = make_crf()
    emissions, tags, mask = make_inputs()
    assert torch.allclose(crf(emissions, tags, mask.to(torch.uint8)), crf(emissions, tags, mask))
    one = crf(emissions[:, :1], tags[:, :1], reduction="none")
    expected = (
        crf.start_transitions[tags[:, 0]]
        + emissions[torch.arange(4), 0, tags[:, 0]]
        + crf.end_transitions[tags[:, 0]]
        - torch.logsumexp(crf.start_transitions + emissions[:, 0] + crf.end_transitions, 1)
    )
    assert torch.allclose(one, expected)


# ---------------------------------------------------------------- against pytorch-crf


@pytest.mark.filterwarnings("ignore:where received a uint8 condition tensor")
def test_matches_pytorch_crf():
    """Same parameters copied over: equal log-likelihood (1e-5) and identical Viterbi paths."""
    torchcrf = pytest.importorskip("torchcrf")
    gen = torch.Generator().manual_seed(3)
    for batch_first in (True, False):
        ours = CRF(9, batch_first=batch_first)
        ref = torchcrf.CRF(9, batch_first=batch_first)
        with torch.no_grad():
            for name in ("start_transitions", "end_transitions", "transitions"):
                getattr(ours, name).normal_(generator=gen)
                getattr(ref, name).copy_(getattr(ours, name))
        batch, seq_len = 6, 12
        emissions = torch.randn(batch, seq_len, 9, generator=gen)
        tags = torch.randint(9, (batch, seq_len), generator=gen)
        lengths = torch.tensor([12, 1, 7, 12, 3, 9])
        mask = torch.arange(seq_len).unsqueeze(0) < lengths.unsqueeze(1)
        if not batch_first:
            emissions, tags, mask = emissions.transpose(0, 1), tags.t(), mask.t()
        for reduction in ("none", "sum", "mean", "token_mean"):
            got = ours(emissions, tags, mask, reduction=reduction)
            want = ref(emissions, tags, mask, reduction=reduction)
            assert torch.allclose(got, want, atol=1e-5, rtol=1e-6), (reduction, got, want)
        assert ours.decode(emissions, mask) == ref.decode(emissions, mask)
        assert ours.decode(emissions) == ref.decode(emissions)
