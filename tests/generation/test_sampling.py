"""The sampling warpers built from generation settings (for models outside generate): transformers' own classes,
in generate's order, only for the settings given; checked on ramp logits, as transformers tests its warpers."""

from __future__ import annotations

import pytest
import torch
from transformers import GenerationConfig

from harness.generation.sampling import sampling_warpers


def ramp(batch=2, vocab=10):
    return torch.arange(vocab, dtype=torch.float32).repeat(batch, 1) / 2  # token v scores v / 2


def kept(scores):
    return [int(i) for i in torch.isfinite(scores[0]).nonzero().flatten()]


@pytest.mark.parametrize("settings, expected", [
    ({}, list(range(10))),
    ({"top_k": 3}, [7, 8, 9]),
    ({"top_p": 0.5}, [8, 9]),  # softmax(v / 2): p9 = 0.39, p8 = 0.24: 0.63 >= 0.5
    ({"temperature": 0.5, "top_k": 2}, [8, 9]),
    ({"epsilon_cutoff": 0.05}, [5, 6, 7, 8, 9]),  # p5 = e^2.5 / 227.2 = 0.054, p4 = 0.033
    ({"min_p": 0.5}, [8, 9]),  # p8 / p9 = e^-0.5 = 0.61
])
def test_ramp_logits_keep_the_expected_tokens_and_are_not_changed_in_place(settings, expected):
    scores = ramp()
    before = scores.clone()
    warped = sampling_warpers(settings)(torch.zeros(2, 1, dtype=torch.long), scores)
    assert torch.equal(scores, before)  # the input is left as it was
    assert kept(warped) == expected


def test_the_order_and_neutral_values_follow_generate():
    names = [type(w).__name__ for w in sampling_warpers({"top_p": 0.9, "temperature": 0.7, "top_k": 5})]
    assert names == ["TemperatureLogitsWarper", "TopKLogitsWarper", "TopPLogitsWarper"]
    assert len(sampling_warpers({"temperature": 1.0, "top_k": 0, "top_p": 1.0})) == 0
    config = GenerationConfig(do_sample=True, temperature=0.5, eta_cutoff=0.01)
    assert [type(w).__name__ for w in sampling_warpers(config)] == ["TemperatureLogitsWarper", "EtaLogitsWarper"]
    with pytest.raises(ValueError, match="unknown top_q"):
        sampling_warpers({"top_q": 0.5})
