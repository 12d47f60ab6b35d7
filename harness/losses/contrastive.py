"""Contrastive loss for labelled pairs (Hadsell, Chopra & LeCun 2006): similar pairs (y = 1) are pulled
together, dissimilar ones (y = 0) pushed at least the margin m apart:

    L = mean_i ½ [ y_i d(u_i, v_i)² + (1 − y_i) max(0, m − d(u_i, v_i))² ]

``d``: ``cosine`` (1 − cos, the default) or ``euclidean``; ``m`` default 0.5 — sentence-transformers'
``ContrastiveLoss`` defaults, whose value and gradient this matches. Rows: (sentence1, sentence2) with 0/1 labels.
"""

from __future__ import annotations

import torch.nn.functional as F

from harness.errors import HarnessError
from harness.losses.base import Loss
from harness.losses.embeddings import batch_labels, check_distance, embed_columns, pairwise_distance
from harness.registry import register


@register("loss", "contrastive")
class ContrastiveLoss(Loss):
    def __init__(self, margin: float = 0.5, distance: str = "cosine"):
        super().__init__()
        if not margin > 0:
            raise ValueError(f"margin: expected a number > 0, got {margin}")
        self.margin = float(margin)
        self.distance = check_distance(distance)

    def forward(self, model, batch: dict, **model_kwargs):
        labels = batch_labels(batch, "contrastive")
        if labels.is_floating_point() and not bool(((labels == 0) | (labels == 1)).all()):
            raise HarnessError("loss contrastive: labels must be 0 or 1 (a scored task: set data.label_threshold to "
                               "turn scores into labels, or use loss cosine_similarity)")
        embeddings = embed_columns(model, batch, "contrastive", columns=(2,))
        return self.compute(embeddings, labels), {"embeddings": embeddings}

    def compute(self, embeddings, labels):
        u, v = embeddings
        # (B,); Euclidean as torch's pairwise_distance (‖u − v + 1e-6‖₂, as sentence-transformers measures it here)
        d = F.pairwise_distance(u, v) if self.distance == "euclidean" else pairwise_distance(u, v, "cosine")
        y = labels.to(d.dtype).view(-1)
        return (0.5 * (y * d.pow(2) + (1 - y) * F.relu(self.margin - d).pow(2))).mean()
