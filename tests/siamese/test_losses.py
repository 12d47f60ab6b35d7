"""Our embedding losses against sentence-transformers' on the same embeddings: same value and same gradient.

The embeddings are fixed float64 tensors (a stand-in model returns them), fed through sentence-transformers' own
loss classes (``compute_loss_from_embeddings``) and through ours (``compute``) — and once through ours end to
end (``forward`` with a model and a batch)."""

from __future__ import annotations

import pytest
import torch
from sentence_transformers.sentence_transformer import losses as st_losses
from sentence_transformers.sentence_transformer.losses.batch_hard_triplet import BatchHardTripletLossDistanceFunction

from harness.errors import HarnessError
from harness.losses.batch_all_triplet import BatchAllTripletLoss
from harness.losses.batch_hard_triplet import BatchHardTripletLoss
from harness.losses.contrastive import ContrastiveLoss
from harness.losses.cosine_similarity import CosineSimilarityLoss
from harness.losses.multiple_negatives_ranking import MultipleNegativesRankingLoss
from harness.losses.triplet import TripletLoss

B, H = 6, 8


def embeddings(columns: int, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(B, H, generator=g, dtype=torch.float64, requires_grad=True) for _ in range(columns)]


def value_and_grads(fn, tensors):
    for t in tensors:
        t.grad = None
    value = fn(tensors)
    value.backward()
    return value.detach(), [t.grad.clone() for t in tensors]


def assert_same(ours, theirs, tensors):
    v1, g1 = value_and_grads(ours, tensors)
    v2, g2 = value_and_grads(theirs, tensors)
    assert v1.item() > 0
    torch.testing.assert_close(v1, v2)
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("distance,margin", [("euclidean", 5.0), ("cosine", 0.8)])
def test_triplet_given_negatives_matches_sentence_transformers(distance, margin):
    metric = {"euclidean": st_losses.TripletDistanceMetric.EUCLIDEAN,
              "cosine": st_losses.TripletDistanceMetric.COSINE}[distance]
    theirs = st_losses.TripletLoss(model=None, distance_metric=metric, triplet_margin=margin)
    ours = TripletLoss(margin=margin, distance=distance, negatives="given")
    assert_same(ours.compute, lambda e: theirs.compute_loss_from_embeddings(e, None), embeddings(3))


def test_triplet_defaults_are_sentence_transformers():
    theirs = st_losses.TripletLoss(model=None)
    assert TripletLoss().margin == theirs.triplet_margin == 5


def brute_force_in_batch(e, margin, mode):
    """Loop over anchors and negatives: the definitions written the slow way."""
    a, p = e[0], e[1]
    negatives = torch.cat(e[1:])
    total = 0.0
    for i in range(B):
        d_pos = torch.dist(a[i], p[i])
        ds = [torch.dist(a[i], negatives[j]) for j in range(len(negatives)) if j != i]
        terms = {"mean": [sum(ds) / len(ds)], "closest": [min(ds)], "mean+closest": [sum(ds) / len(ds), min(ds)]}[mode]
        total = total + sum(torch.clamp(d_pos - d + margin, min=0) for d in terms)
    return total / B


@pytest.mark.parametrize("mode", ["mean", "closest", "mean+closest"])
@pytest.mark.parametrize("columns", [2, 3])
def test_triplet_in_batch_negatives_match_brute_force(mode, columns):
    e = embeddings(columns, seed=1)
    ours = TripletLoss(margin=1.0, negatives=mode)
    assert_same(ours.compute, lambda t: brute_force_in_batch(t, 1.0, mode), e)


def test_mean_and_closest_differ_and_closest_is_harder():
    e = [t.detach() for t in embeddings(2, seed=2)]
    mean = TripletLoss(margin=1.0, negatives="mean").compute(e)
    closest = TripletLoss(margin=1.0, negatives="closest").compute(e)
    both = TripletLoss(margin=1.0, negatives="mean+closest").compute(e)
    assert closest > mean
    torch.testing.assert_close(both, mean + closest)


LABELS = torch.tensor([0, 1, 0, 2, 1, 2])


@pytest.mark.parametrize("distance", ["euclidean", "cosine"])
def test_batch_hard_matches_sentence_transformers(distance):
    fn = {"euclidean": BatchHardTripletLossDistanceFunction.euclidean_distance,
          "cosine": BatchHardTripletLossDistanceFunction.cosine_distance}[distance]
    margin = 5.0 if distance == "euclidean" else 0.5
    theirs = st_losses.BatchHardTripletLoss(model=None, distance_metric=fn, margin=margin)
    ours = BatchHardTripletLoss(margin=margin, distance=distance)
    assert_same(lambda e: ours.compute(e[0], LABELS), lambda e: theirs.compute_loss_from_embeddings(e, LABELS),
                embeddings(1, seed=3))


@pytest.mark.parametrize("distance", ["euclidean", "cosine"])
def test_batch_all_matches_sentence_transformers(distance):
    fn = {"euclidean": BatchHardTripletLossDistanceFunction.euclidean_distance,
          "cosine": BatchHardTripletLossDistanceFunction.cosine_distance}[distance]
    margin = 5.0 if distance == "euclidean" else 0.5
    theirs = st_losses.BatchAllTripletLoss(model=None, distance_metric=fn, margin=margin)
    ours = BatchAllTripletLoss(margin=margin, distance=distance)
    assert_same(lambda e: ours.compute(e[0], LABELS), lambda e: theirs.compute_loss_from_embeddings(e, LABELS),
                embeddings(1, seed=4))


@pytest.mark.parametrize("columns", [2, 3])
def test_multiple_negatives_ranking_matches_sentence_transformers(columns):
    theirs = st_losses.MultipleNegativesRankingLoss(model=None)
    ours = MultipleNegativesRankingLoss()
    assert ours.scale == theirs.scale == 20
    assert_same(ours.compute, lambda e: theirs.compute_loss_from_embeddings(e, None), embeddings(columns, seed=5))


def test_cosine_similarity_matches_sentence_transformers():
    scores = torch.tensor([0.0, 0.2, 0.4, 0.6, 0.8, 1.0], dtype=torch.float64)
    theirs = st_losses.CosineSimilarityLoss(model=None)
    ours = CosineSimilarityLoss()
    assert_same(lambda e: ours.compute(e, scores), lambda e: theirs.compute_loss_from_embeddings(e, scores),
                embeddings(2, seed=6))


@pytest.mark.parametrize("distance", ["cosine", "euclidean"])
def test_contrastive_matches_sentence_transformers(distance):
    labels = torch.tensor([1, 0, 1, 0, 0, 1])
    metric = {"cosine": st_losses.SiameseDistanceMetric.COSINE_DISTANCE,
              "euclidean": st_losses.SiameseDistanceMetric.EUCLIDEAN}[distance]
    margin = 0.5 if distance == "cosine" else 3.0
    theirs = st_losses.ContrastiveLoss(model=None, distance_metric=metric, margin=margin)
    ours = ContrastiveLoss(margin=margin, distance=distance)
    assert_same(lambda e: ours.compute(e, labels), lambda e: theirs.compute_loss_from_embeddings(e, labels),
                embeddings(2, seed=7))
    assert ContrastiveLoss().margin == st_losses.ContrastiveLoss(model=None).margin


class Lookup(torch.nn.Module):
    """A stand-in model: each input id row's embedding is a fixed table's row (the first id)."""

    def __init__(self, table):
        super().__init__()
        self.table = table

    def forward(self, input_ids, attention_mask=None, **kwargs):
        from types import SimpleNamespace

        return SimpleNamespace(embeddings=self.table[input_ids[:, 0]])


def test_losses_embed_each_text_column_of_a_batch_with_the_model():
    e = embeddings(3, seed=8)
    table = torch.cat([t.detach() for t in e])
    ids = [torch.arange(B).unsqueeze(1) + k * B for k in range(3)]
    batch = {f"text{k}_{key}": (ids[k] if key == "input_ids" else torch.ones_like(ids[k]))
             for k in range(3) for key in ("input_ids", "attention_mask")}
    value, outputs = TripletLoss(negatives="closest")(Lookup(table), batch)
    torch.testing.assert_close(value, TripletLoss(negatives="closest").compute([t.detach() for t in e]))
    assert len(outputs["embeddings"]) == 3
    # pairs given to a given-negative triplet loss: one clear error naming what is missing
    pairs = {k: v for k, v in batch.items() if not k.startswith("text2")}
    with pytest.raises(HarnessError, match="expects 3 text columns per row, the batch has 2"):
        TripletLoss()(Lookup(table), pairs)
    with pytest.raises(HarnessError, match="no labels"):
        CosineSimilarityLoss()(Lookup(table), pairs)
    # rows of pairs are mined across rows: anchor i and positive i share a label
    hard, _ = BatchHardTripletLoss(margin=1.0)(Lookup(table), pairs)
    x = torch.cat([e[0], e[1]]).detach()
    torch.testing.assert_close(hard, BatchHardTripletLoss(margin=1.0).compute(x, torch.arange(B).repeat(2)))


@pytest.mark.parametrize("cls,kwargs,match", [
    (TripletLoss, {"negatives": "hardest"}, "negatives:"),
    (TripletLoss, {"distance": "manhattan"}, "distance:"),
    (TripletLoss, {"margin": -1}, "margin:"),
    (MultipleNegativesRankingLoss, {"scale": 0}, "scale:"),
    (ContrastiveLoss, {"margin": 0}, "margin:"),
])
def test_refused_arguments_name_the_key(cls, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cls(**kwargs)
