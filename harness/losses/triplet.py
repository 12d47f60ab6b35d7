"""Triplet loss (Schroff et al. 2015; Hermans et al. 2017) with a margin, over given or in-batch negatives.

For an anchor a, its positive p and a negative n, with a distance d (``euclidean`` ‖x − y‖₂ or ``cosine``
1 − cos(x, y)) and margin m:

    L = max(0, d(a, p) − d(a, n) + m)

averaged over the batch. Where the negative comes from (``negatives``):

* ``given``: each row's own third text (rows of anchor / positive / negative) — sentence-transformers'
  ``TripletLoss`` (same value and gradient; its default margin 5 for Euclidean distance is ours).
* ``mean``: the **mean negative** — every other text of the batch is a negative of anchor i (the other rows'
  positives, plus every row's given negative when there is a third column), and d(a, n) is the average
  distance to them: L_mean = max(0, d(a_i, p_i) − mean_{n ∈ N_i} d(a_i, n) + m). Every negative contributes
  to the gradient: a stable signal that keeps pushing the whole batch away.
* ``closest``: the **closest negative** — the hardest one: L_closest = max(0, d(a_i, p_i) − min_{n ∈ N_i}
  d(a_i, n) + m). Only the nearest negative moves: fast on what is still confused, noisier.
* ``mean+closest``: both terms, L = L_mean + L_closest.

Pair rows (anchor, positive) train with the in-batch choices; a batch of one row has no in-batch negative and
is refused. (sentence-transformers has no in-batch mean / closest variant; the arithmetic is written here.)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from harness.errors import HarnessError
from harness.losses.base import Loss
from harness.losses.embeddings import check_distance, distance_matrix, embed_columns, pairwise_distance
from harness.registry import register

NEGATIVES = ("given", "mean", "closest", "mean+closest")


@register("loss", "triplet")
class TripletLoss(Loss):
    def __init__(self, margin: float = 5.0, distance: str = "euclidean", negatives: str = "given"):
        super().__init__()
        if not margin >= 0:
            raise ValueError(f"margin: expected a number >= 0, got {margin}")
        if negatives not in NEGATIVES:
            raise ValueError(f"negatives: expected one of {', '.join(NEGATIVES)}, got {negatives!r}")
        self.margin = float(margin)
        self.distance = check_distance(distance)
        self.negatives = negatives

    def forward(self, model, batch: dict, **model_kwargs):
        embeddings = embed_columns(model, batch, "triplet", columns=(3,) if self.negatives == "given" else (2, 3))
        return self.compute(embeddings), {"embeddings": embeddings}

    def compute(self, embeddings: list[torch.Tensor]) -> torch.Tensor:
        anchor, positive = embeddings[0], embeddings[1]
        # (B,)
        d_pos = pairwise_distance(anchor, positive, self.distance)
        if self.negatives == "given":
            d_neg = pairwise_distance(anchor, embeddings[2], self.distance)
            return F.relu(d_pos - d_neg + self.margin).mean()
        rows = anchor.shape[0]
        if rows < 2:
            raise HarnessError(f"loss triplet: negatives {self.negatives} needs at least 2 rows per batch (the other "
                               "rows are the negatives); raise training.batch_size")
        # candidates: every positive, then every given negative: (B, C·B)
        d_all = distance_matrix(anchor, torch.cat(embeddings[1:]), self.distance)
        own = torch.eye(rows, dtype=torch.bool, device=anchor.device)
        # a row's own positive is not its negative; its own given negative is
        is_negative = torch.cat([~own] + [torch.ones_like(own)] * (len(embeddings) - 2), dim=1)
        loss = anchor.new_zeros(())
        if self.negatives in ("mean", "mean+closest"):
            d_mean = (d_all * is_negative).sum(1) / is_negative.sum(1)
            loss = loss + F.relu(d_pos - d_mean + self.margin).mean()
        if self.negatives in ("closest", "mean+closest"):
            d_closest = d_all.masked_fill(~is_negative, float("inf")).min(1).values
            loss = loss + F.relu(d_pos - d_closest + self.margin).mean()
        return loss
