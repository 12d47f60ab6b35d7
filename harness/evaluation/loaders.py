"""The one way an evaluation split becomes batches: the task's row order (``arrange``), its evaluation
collator, no shuffling, and a private generator (an evaluation never draws from the global RNG, so a
resumed run's dropout stream is the uninterrupted one's)."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader


def eval_loader(task, rows, tokenizer, batch_size: int, num_processes: int = 1, pad_to_multiple_of: int | None = None,
                seed: int = 0, pin_memory: bool = False, length_buckets: list[int] | None = None) -> DataLoader:
    """An unprepared ``DataLoader`` over tokenized ``rows`` of ``task`` (``accelerator.prepare`` it); ``pin_memory``
    for a CUDA device (:func:`harness.training.distributed.pin_memory`); ``length_buckets``: batches padded to
    those lengths (:mod:`harness.data.buckets`)."""
    from harness.data.buckets import bucketed

    arranged = task.arrange(rows, batch_size, num_processes)
    return DataLoader(arranged, batch_size=batch_size, shuffle=False,
                      collate_fn=bucketed(task.eval_collator(tokenizer, pad_to_multiple_of=pad_to_multiple_of),
                                          length_buckets),
                      generator=torch.Generator().manual_seed(seed), pin_memory=pin_memory)
