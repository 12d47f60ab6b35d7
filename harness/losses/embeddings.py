"""What the embedding losses share (not a loss): embed every text column of a pairs / triplets batch with the one
shared model, and the distances they compare embeddings with.

A batch of :mod:`harness.data.pairs` holds each text column under its own prefix (``text0_input_ids``,
``text0_attention_mask``, ``text1_...``) and, for scored or labelled pairs, ``labels``; the model (a
:class:`~harness.models.siamese.SiameseModel`, or anything whose output has ``embeddings``) is called once per
column, as sentence-transformers' losses do.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from harness.data.pairs import column_inputs
from harness.errors import HarnessError

DISTANCES = ("euclidean", "cosine")


def embed_columns(model, batch: dict, loss_name: str, columns: tuple[int, ...] = (2, 3)) -> list[torch.Tensor]:
    """``[(B, H), ...]``: one embedding matrix per text column; ``columns``: the column counts the loss accepts."""
    inputs = column_inputs(batch)
    if len(inputs) not in columns:
        wanted = " or ".join(str(c) for c in columns)
        raise HarnessError(f"loss {loss_name}: expects {wanted} text columns per row, the batch has {len(inputs)} "
                           f"(keys: {', '.join(batch)})")
    out = []
    for features in inputs:
        embeddings = getattr(model(**features), "embeddings", None)
        if embeddings is None:
            raise HarnessError(f"loss {loss_name}: the model ({type(model).__name__}) returns no embeddings; use "
                               "model.component: siamese")
        out.append(embeddings)
    return out


def check_distance(distance: str) -> str:
    if distance not in DISTANCES:
        raise ValueError(f"distance: expected one of {', '.join(DISTANCES)}, got {distance!r}")
    return distance


def pairwise_distance(a: torch.Tensor, b: torch.Tensor, distance: str) -> torch.Tensor:
    """Row-wise distance ``(B, H), (B, H) -> (B,)``: ``euclidean`` ‖a − b‖₂, ``cosine`` 1 − cos(a, b)."""
    if distance == "euclidean":
        return torch.linalg.vector_norm(a - b, dim=-1)
    return 1 - F.cosine_similarity(a, b, dim=-1)


def distance_matrix(a: torch.Tensor, b: torch.Tensor, distance: str) -> torch.Tensor:
    """Every row of ``a`` ``(N, H)`` against every row of ``b`` ``(M, H)`` → ``(N, M)`` (the differences are
    formed explicitly, not through the Gram matrix: exact for near-equal rows, and fine at these batch sizes)."""
    if distance == "euclidean":
        # (N, 1, H) - (1, M, H) -> (N, M, H) -> (N, M)
        return torch.linalg.vector_norm(a.unsqueeze(1) - b.unsqueeze(0), dim=-1)
    return 1 - F.normalize(a, dim=-1) @ F.normalize(b, dim=-1).T


def batch_labels(batch: dict, loss_name: str, dtype=None) -> torch.Tensor:
    labels = batch.get("labels")
    if labels is None:
        raise HarnessError(f"loss {loss_name}: the batch has no labels (scores or 0/1 labels per pair); keys: "
                           f"{', '.join(batch)}")
    return labels if dtype is None else labels.to(dtype)
