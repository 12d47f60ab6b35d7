"""Which fused attention kernels a run may use: ``training.attention_backend``.

``torch.nn.functional.scaled_dot_product_attention`` (what transformers' ``sdpa`` attention calls) picks a kernel
per call. On Hopper GPUs PyTorch tries cuDNN's fused attention first, and cuDNN builds an execution graph for
every new input shape. Measured on an H200 (torch 2.11, ``scripts/bench_gpu.sh``): about 200 ms per new shape,
the same in our loop and the Trainer's, 36 of the first 300 SST-2 steps, half of the Trainer's loop time. With
dynamic padding nearly every batch length is new for hundreds of steps, so ``auto`` leaves cuDNN out unless the
batches have a few fixed shapes (``training.length_buckets``): the memory-efficient and flash kernels need no
per-shape build. On a CPU nothing changes (cuDNN attention is a CUDA kernel).

No library sets this per run: PyTorch offers the switch (:func:`torch.nn.attention.sdpa_kernel`) and leaves the
choice to its caller.
"""

from __future__ import annotations

import contextlib

#: ``training.attention_backend`` values: ``auto``; ``default`` (PyTorch's own order); or the kernel to try first
CHOICES = ("auto", "default", "cudnn", "flash", "efficient", "math")


def backend_order(choice: str, device_type: str, static_shapes: bool) -> list | None:
    """The ``SDPBackend`` priority list for ``choice`` (None: PyTorch's own order). A named kernel goes first and
    the others stay behind it, so a call it cannot serve (flash with a padding mask) falls back instead of
    failing."""
    from torch.nn.attention import SDPBackend

    order = [SDPBackend.CUDNN_ATTENTION, SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]
    if choice == "default":
        return None
    if choice == "auto":
        if device_type != "cuda" or static_shapes:
            return None
        return [b for b in order if b != SDPBackend.CUDNN_ATTENTION]
    first = {"cudnn": SDPBackend.CUDNN_ATTENTION, "flash": SDPBackend.FLASH_ATTENTION,
             "efficient": SDPBackend.EFFICIENT_ATTENTION, "math": SDPBackend.MATH}[choice]
    return [first] + [b for b in order if b != first]


def attention_backends(choice: str, device_type: str, static_shapes: bool):
    """A context in which attention calls follow :func:`backend_order` (a no-op for PyTorch's own order)."""
    order = backend_order(choice, device_type, static_shapes)
    if order is None:
        return contextlib.nullcontext()
    from torch.nn.attention import sdpa_kernel

    return sdpa_kernel(order, set_priority=True)
