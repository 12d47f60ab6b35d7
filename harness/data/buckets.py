"""Length buckets: every batch padded to the smallest of a few fixed lengths that holds it
(``training.length_buckets``), so a compiled model (``training.compile``) sees a handful of shapes — one
static graph each — instead of one shape per batch, or dynamic-shape kernels.

transformers' collators pad to each batch's longest row, or to one ``max_length``, or to a multiple of a
number; none picks from a set of lengths. This wraps a ``transformers`` collator that has ``padding`` and
``max_length`` (``DataCollatorWithPadding``, ``DataCollatorForTokenClassification``; a collator of our own
that holds one as ``base``) and sets both per batch.

``auto`` buckets are quantiles of the train split's token counts (eighths), each rounded up to a multiple of 8
(tensor-core friendly), the last one holding the longest row: with length-grouped batches a batch's longest row
follows the same distribution, so each bucket takes about an eighth of the batches and the padding added is
less than a bucket's width.
"""

from __future__ import annotations

import math

from harness.errors import HarnessError

#: ``auto``: at most this many buckets; their lengths are multiples of ``MULTIPLE``
MAX_BUCKETS, MULTIPLE = 8, 8


def choose_buckets(lengths: list[int], max_buckets: int = MAX_BUCKETS, multiple: int = MULTIPLE) -> list[int]:
    """Up to ``max_buckets`` increasing lengths from the quantiles of ``lengths``; the last ≥ ``max(lengths)``."""
    if not lengths:
        raise HarnessError("training.length_buckets: the train split is empty; there are no lengths to choose from")
    ordered = sorted(lengths)
    n = len(ordered)
    picks = {ordered[min(n - 1, math.ceil(n * k / max_buckets) - 1)] for k in range(1, max_buckets + 1)}
    return sorted({multiple * math.ceil(p / multiple) for p in picks})


def _padder(collator):
    """The ``transformers`` collator inside ``collator`` that pads (it has ``padding`` and ``max_length``)."""
    for candidate in (collator, getattr(collator, "base", None)):
        if candidate is not None and hasattr(candidate, "padding") and hasattr(candidate, "max_length"):
            return candidate
    return None


class BucketedCollator:
    """``collator`` with every batch padded to the smallest of ``buckets`` holding its longest ``input_ids``
    (longer than the last: its own length, so nothing is cut)."""

    def __init__(self, collator, buckets: list[int]):
        self.collator, self.buckets = collator, list(buckets)
        self.padder = _padder(collator)
        if self.padder is None:
            raise HarnessError(
                f"training.length_buckets: this task's collator ({type(collator).__name__}) pads its own way and "
                "cannot pad to fixed lengths (supported: tasks batched by transformers' DataCollatorWithPadding or "
                "DataCollatorForTokenClassification, such as GLUE, SuperGLUE pair tasks and NER); remove the key")

    def length(self, features) -> int:
        longest = max(len(f["input_ids"]) for f in features)
        return next((b for b in self.buckets if b >= longest), longest)

    def __call__(self, features):
        self.padder.padding, self.padder.max_length = "max_length", self.length(features)
        return self.collator(features)


def bucketed(collator, buckets: list[int] | None):
    """``collator`` padded to ``buckets`` (None: as it is)."""
    return collator if buckets is None else BucketedCollator(collator, buckets)


def supports_buckets(collator) -> bool:
    return _padder(collator) is not None
