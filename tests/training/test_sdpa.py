"""training.attention_backend: which fused attention kernels a run allows (harness/training/sdpa.py)."""

from __future__ import annotations

import pytest
import torch
from torch.nn.attention import SDPBackend

from harness.config.schema import validate
from harness.training.sdpa import CHOICES, attention_backends, backend_order
from testkit import tiny_recipe


def test_auto_leaves_cudnn_out_on_a_gpu_with_dynamic_shapes_only():
    order = backend_order("auto", "cuda", static_shapes=False)
    assert SDPBackend.CUDNN_ATTENTION not in order
    assert order == [SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]
    # fixed shapes (length buckets) build a few cuDNN graphs once; a CPU has no cuDNN attention
    assert backend_order("auto", "cuda", static_shapes=True) is None
    assert backend_order("auto", "cpu", static_shapes=False) is None
    assert backend_order("default", "cuda", static_shapes=False) is None


@pytest.mark.parametrize("choice,first", [("cudnn", SDPBackend.CUDNN_ATTENTION), ("flash", SDPBackend.FLASH_ATTENTION),
                                          ("efficient", SDPBackend.EFFICIENT_ATTENTION), ("math", SDPBackend.MATH)])
def test_a_named_kernel_goes_first_and_the_others_stay_as_fallbacks(choice, first):
    order = backend_order(choice, "cuda", static_shapes=False)
    assert order[0] == first and len(order) == 4 and len(set(order)) == 4


def test_the_context_switches_pytorchs_flags_and_restores_them():
    before = (torch.backends.cuda.cudnn_sdp_enabled(), torch._C._get_sdp_priority_order())
    with attention_backends("auto", "cuda", static_shapes=False):
        assert not torch.backends.cuda.cudnn_sdp_enabled()
        assert torch.backends.cuda.flash_sdp_enabled() and torch.backends.cuda.mem_efficient_sdp_enabled()
    assert (torch.backends.cuda.cudnn_sdp_enabled(), torch._C._get_sdp_priority_order()) == before
    with attention_backends("math", "cuda", static_shapes=False):
        assert torch._C._get_sdp_priority_order()[0] == SDPBackend.MATH.value
    assert (torch.backends.cuda.cudnn_sdp_enabled(), torch._C._get_sdp_priority_order()) == before
    with attention_backends("default", "cuda", static_shapes=False):  # PyTorch's own: nothing touched
        assert (torch.backends.cuda.cudnn_sdp_enabled(), torch._C._get_sdp_priority_order()) == before


def test_the_recipe_key_is_checked_and_defaults_to_auto():
    assert validate(tiny_recipe()).training.attention_backend == "auto"
    import typing

    from harness.config.schema import TrainingConfig

    assert typing.get_args(typing.get_type_hints(TrainingConfig)["attention_backend"]) == CHOICES
    from harness.errors import RecipeError

    with pytest.raises(RecipeError, match=r"training\.attention_backend: expected one of .*got 'cudn'"):
        validate(tiny_recipe(training={"attention_backend": "cudn"}))
