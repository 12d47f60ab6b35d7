"""Multiple-negatives ranking loss (Henderson et al. 2017; InfoNCE, van den Oord et al. 2018): each anchor must
pick its own positive out of every candidate in the batch — all rows' positives and, with a third column, all
rows' hard negatives — by a softmax over scaled similarities:

    L = −(1/B) Σ_i log [ exp(s · sim(a_i, p_i)) / Σ_{c ∈ candidates} exp(s · sim(a_i, c)) ]

``sim``: ``cosine`` (default) or ``dot``; scale ``s`` (default 20, i.e. temperature 0.05). Same value and
gradient as sentence-transformers' ``MultipleNegativesRankingLoss`` with its defaults. Rows: (anchor, positive)
pairs — every other row's positive is an in-batch negative — or (anchor, positive, negative) triplets.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from harness.losses.base import Loss
from harness.losses.embeddings import embed_columns
from harness.registry import register


@register("loss", "multiple_negatives_ranking")
class MultipleNegativesRankingLoss(Loss):
    def __init__(self, scale: float = 20.0, similarity: str = "cosine"):
        super().__init__()
        if not scale > 0:
            raise ValueError(f"scale: expected a number > 0, got {scale}")
        if similarity not in ("cosine", "dot"):
            raise ValueError(f"similarity: expected cosine or dot, got {similarity!r}")
        self.scale = float(scale)
        self.similarity = similarity

    def forward(self, model, batch: dict, **model_kwargs):
        embeddings = embed_columns(model, batch, "multiple_negatives_ranking", columns=(2, 3))
        return self.compute(embeddings), {"embeddings": embeddings}

    def compute(self, embeddings: list[torch.Tensor]) -> torch.Tensor:
        anchor, candidates = embeddings[0], torch.cat(embeddings[1:])
        if self.similarity == "cosine":
            anchor, candidates = F.normalize(anchor, dim=-1), F.normalize(candidates, dim=-1)
        scores = self.scale * anchor @ candidates.T  # (B, C·B); row i's positive is column i
        return F.cross_entropy(scores, torch.arange(len(anchor), device=anchor.device))
