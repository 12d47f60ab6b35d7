"""Batch-hard triplet loss (Hermans et al. 2017, "In Defense of the Triplet Loss"): for every anchor in the
batch, its hardest positive (the farthest text with its label) against its hardest negative (the closest text
with another label):

    L = mean_a max(0, max_{p: y_p = y_a, p ≠ a} d(a, p) − min_{n: y_n ≠ y_a} d(a, n) + m)

``d``: ``euclidean`` or ``cosine`` (1 − cos) over all pairs of the batch; margin ``m`` (default 5, as
sentence-transformers' ``BatchHardTripletLoss``, whose value and gradient this matches when every anchor has a
positive; anchors without a positive or a negative in the batch are left out of the mean, where
sentence-transformers counts them with a positive distance of 0).

Labels: a batch of single texts with class ``labels``; or rows of (anchor, positive[, negative]), where a row's
anchor and positive share a label and its negative has its own — the batch is then mined across rows.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from harness.errors import HarnessError
from harness.losses.base import Loss
from harness.losses.embeddings import check_distance, distance_matrix, embed_columns
from harness.registry import register


def mining_inputs(embeddings: list[torch.Tensor], batch: dict, loss_name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``(N, H)`` embeddings and ``(N,)`` labels to mine over (see the module docstrings)."""
    if len(embeddings) == 1:
        labels = batch.get("labels")
        if labels is None or labels.is_floating_point():
            raise HarnessError(f"loss {loss_name}: single texts need integer class labels to mine over")
        return embeddings[0], labels.view(-1)
    rows = embeddings[0].shape[0]
    ids = torch.arange(rows, device=embeddings[0].device)
    labels = [ids, ids] + [ids + rows * (k + 1) for k in range(len(embeddings) - 2)]
    return torch.cat(embeddings), torch.cat(labels)


class MiningTripletLoss(Loss):
    """What the mining triplet losses share: margin and distance, the texts embedded and the labels to mine over;
    a subclass (its registry ``name``) writes ``compute(x, labels)``."""

    name: str

    def __init__(self, margin: float = 5.0, distance: str = "euclidean"):
        super().__init__()
        if not margin >= 0:
            raise ValueError(f"margin: expected a number >= 0, got {margin}")
        self.margin = float(margin)
        self.distance = check_distance(distance)

    def forward(self, model, batch: dict, **model_kwargs):
        embeddings = embed_columns(model, batch, self.name, columns=(1, 2, 3))
        x, labels = mining_inputs(embeddings, batch, self.name)
        return self.compute(x, labels), {"embeddings": embeddings}


@register("loss", "batch_hard_triplet")
class BatchHardTripletLoss(MiningTripletLoss):
    name = "batch_hard_triplet"

    def compute(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        d = distance_matrix(x, x, self.distance)  # (N, N)
        same = labels.unsqueeze(0) == labels.unsqueeze(1)
        positive = same & ~torch.eye(len(labels), dtype=torch.bool, device=x.device)
        usable = positive.any(1) & (~same).any(1)
        if not usable.any():
            raise HarnessError("loss batch_hard_triplet: no anchor in the batch has both a positive and a negative")
        hardest_positive = d.masked_fill(~positive, float("-inf")).max(1).values
        hardest_negative = d.masked_fill(same, float("inf")).min(1).values
        return F.relu(hardest_positive - hardest_negative + self.margin)[usable].mean()
