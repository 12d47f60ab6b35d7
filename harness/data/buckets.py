"""Length buckets: every batch padded to the smallest of a few fixed lengths that holds it
(``training.length_buckets``), so a compiled model (``training.compile``) sees a handful of shapes — one
static graph each — instead of one shape per batch, or dynamic-shape kernels.

transformers' collators pad to each batch's longest row, or to one ``max_length``, or to a multiple of a
number; none picks from a set of lengths. This wraps a ``transformers`` collator that has ``padding`` and
``max_length`` (``DataCollatorWithPadding``, ``DataCollatorForTokenClassification``; a collator of our own
that holds one as ``base``) and sets both per batch.

``auto`` buckets are the (at most 8) multiples of 8 (tensor-core friendly) that minimise the padded token count
of the train split when each row is padded to the smallest bucket holding it — an exact dynamic programme over
the candidate lengths, the last one holding the longest row. With length-grouped batches a batch's longest row
follows the rows' distribution, so this is the padding the buckets add to training.
"""

from __future__ import annotations

import math

from harness.errors import HarnessError

#: ``auto``: at most this many buckets; their lengths are multiples of ``MULTIPLE``
MAX_BUCKETS, MULTIPLE = 8, 8


def choose_buckets(lengths: list[int], max_buckets: int = MAX_BUCKETS, multiple: int = MULTIPLE) -> list[int]:
    """At most ``max_buckets`` increasing multiples of ``multiple``, the last ≥ ``max(lengths)``, that minimise
    ``sum(smallest bucket ≥ length for each length)`` (exact: a dynamic programme over the candidates)."""
    if not lengths:
        raise HarnessError("training.length_buckets: the train split is empty; there are no lengths to choose from")
    top = math.ceil(max(lengths) / multiple)
    counts = [0] * (top + 1)  # counts[c]: rows whose bucket would be c·multiple if c were the next one up
    for n in lengths:
        counts[max(1, math.ceil(n / multiple))] += 1
    below = [0] * (top + 1)  # rows with candidate index ≤ c
    for c in range(1, top + 1):
        below[c] = below[c - 1] + counts[c]
    inf = float("inf")
    # cost[k][c]: least padded total of the rows up to candidate c with k buckets, the last one at c
    cost = [[inf] * (top + 1) for _ in range(max_buckets + 1)]
    back = [[0] * (top + 1) for _ in range(max_buckets + 1)]
    for c in range(1, top + 1):
        cost[1][c] = c * multiple * below[c]
    for k in range(2, max_buckets + 1):
        for c in range(1, top + 1):
            for p in range(1, c):
                value = cost[k - 1][p] + c * multiple * (below[c] - below[p])
                if value < cost[k][c]:
                    cost[k][c], back[k][c] = value, p
    k = min(range(1, max_buckets + 1), key=lambda j: (cost[j][top], j))  # the fewest buckets at the least cost
    buckets, c = [], top
    while k >= 1 and c >= 1:
        buckets.append(c * multiple)
        c, k = back[k][c], k - 1
    return sorted(buckets)


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
