"""Cosine-similarity regression for scored pairs (Reimers & Gurevych 2019, the STS objective of Sentence-BERT):
the cosine of the two embeddings is fitted to the gold score by mean squared error,

    L = mean_i ( cos(u_i, v_i) − y_i )²

with ``y`` the pair's score scaled into [0, 1] by the task (STS: score / 5). Same value and gradient as
sentence-transformers' ``CosineSimilarityLoss`` with its defaults. Rows: (sentence1, sentence2) with a score.
"""

from __future__ import annotations

import torch.nn.functional as F

from harness.losses.base import Loss
from harness.losses.embeddings import batch_labels, embed_columns
from harness.registry import register


@register("loss", "cosine_similarity")
class CosineSimilarityLoss(Loss):
    def forward(self, model, batch: dict, **model_kwargs):
        labels = batch_labels(batch, "cosine_similarity")
        embeddings = embed_columns(model, batch, "cosine_similarity", columns=(2,))
        return self.compute(embeddings, labels), {"embeddings": embeddings}

    def compute(self, embeddings, labels):
        cos = F.cosine_similarity(embeddings[0], embeddings[1], dim=-1)
        return F.mse_loss(cos, labels.to(cos.dtype).view(-1))
