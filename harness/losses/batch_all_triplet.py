"""Batch-all triplet loss (Hermans et al. 2017): every valid triplet of the batch — anchor a, a positive p ≠ a
with its label, a negative n with another label — averaged over the triplets that are still active:

    L = Σ_{(a,p,n) valid} max(0, d(a, p) − d(a, n) + m)  /  #{(a,p,n) valid : d(a, p) − d(a, n) + m > 0}

``d``: ``euclidean`` or ``cosine`` (1 − cos); margin ``m`` (default 5). Same value and gradient as
sentence-transformers' ``BatchAllTripletLoss`` (which divides by the count plus 1e-16, so a batch with no active
triplet gives 0). Labels as in :mod:`harness.losses.batch_hard_triplet`: single texts with class labels, or rows
of (anchor, positive[, negative]) mined across rows.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from harness.losses.batch_hard_triplet import MiningTripletLoss
from harness.losses.embeddings import distance_matrix
from harness.registry import register


@register("loss", "batch_all_triplet")
class BatchAllTripletLoss(MiningTripletLoss):
    name = "batch_all_triplet"

    def compute(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        d = distance_matrix(x, x, self.distance)  # (N, N)
        same = labels.unsqueeze(0) == labels.unsqueeze(1)
        positive = same & ~torch.eye(len(labels), dtype=torch.bool, device=x.device)
        # (N, N, N): [a, p, n] valid when p is a's positive and n has another label
        valid = positive.unsqueeze(2) & ~same.unsqueeze(1)
        losses = F.relu(d.unsqueeze(2) - d.unsqueeze(1) + self.margin) * valid
        active = (losses > 1e-16).sum()
        return losses.sum() / (active + 1e-16)
