"""What the launcher asked for against what Accelerate made of it (``configs/accelerate/*.yaml``).

``accelerate launch --config_file configs/accelerate/fsdp.yaml`` (or a DeepSpeed one) tells the run through the
environment (``ACCELERATE_USE_FSDP`` / ``ACCELERATE_USE_DEEPSPEED``); the Accelerator turns it on only where the
processes sit on accelerators. Accelerate 1.15 enables FSDP only when the distributed type is a multi-accelerator
one (``AcceleratorState.__init__``: MULTI_GPU, MULTI_XPU, MULTI_NPU, ...) — never MULTI_CPU, although torch's own
FSDP2 (``fully_shard``) does run over gloo on CPU — so several CPU processes under the FSDP config would
silently train as plain DDP. :func:`check_launch` refuses that instead of letting a run claim a sharding it
does not have. Nothing here exists in Accelerate (it accepts the mismatch without a word).
"""

from __future__ import annotations

import os

from harness.errors import HarnessError

#: launcher environment flag → (the distributed type it asks for, the name users know it by)
_ASKED = {"ACCELERATE_USE_FSDP": ("FSDP", "FSDP"), "ACCELERATE_USE_DEEPSPEED": ("DEEPSPEED", "DeepSpeed")}


def asked_for(environ=None) -> list[tuple[str, str]]:
    """The sharded modes the launcher's environment asks for: ``[(distributed type, name)]``."""
    env = os.environ if environ is None else environ
    return [mode for flag, mode in _ASKED.items() if env.get(flag, "false").lower() in ("true", "1")]


def check_launch(accelerator, environ=None) -> None:
    """Raise :class:`HarnessError` when the launcher asked for FSDP or DeepSpeed and the Accelerator runs
    something else (several CPU processes: gloo DDP); say which config fits instead."""
    actual = getattr(accelerator.distributed_type, "value", str(accelerator.distributed_type))
    for wanted, name in asked_for(environ):
        if actual != wanted:
            raise HarnessError(
                f"accelerate launch: the config asks for {name} (ACCELERATE_USE_{wanted}=true) but Accelerate runs "
                f"these {accelerator.num_processes} process(es) as {actual} on {accelerator.device.type}: it shards "
                f"with {name} only on GPUs (or other accelerators), not on CPU processes. On CPU use data parallel "
                "instead (accelerate launch --multi_gpu --num_processes N harness/run.py RECIPE); on GPUs check that "
                "torch sees them (torch.cuda.is_available())")


def pin_memory(device) -> bool:
    """Page-locked host batches, so that the copies to a CUDA device can be asynchronous; nothing elsewhere
    (pinning on a CPU run only costs a copy)."""
    return getattr(device, "type", str(device)) == "cuda"


def dataloader_settings():
    """Accelerate's loader settings: batches go to a CUDA device with ``non_blocking`` copies (from the pinned
    memory of :func:`pin_memory`; the copy overlaps the previous step's kernels). On CPU: Accelerate's defaults."""
    import torch
    from accelerate.utils import DataLoaderConfiguration

    return DataLoaderConfiguration(non_blocking=torch.cuda.is_available())
