"""The embedding evaluator's metrics against brute force, and duplicate detection's dev-chosen threshold applied
to the test split."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from harness.errors import HarnessError
from harness.evaluation import embeddings as ev


def test_best_thresholds_match_brute_force():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 60)
    sims = np.round(labels * 0.3 + rng.normal(0, 0.3, 60), 2)  # ties included
    chosen = ev.best_thresholds(sims, labels)
    candidates = np.r_[sims, sims + 1e-3, sims - 1e-3, sims.max() + 1]

    def f1(t):
        p = sims >= t
        tp = (p & (labels == 1)).sum()
        return 2 * tp / (p.sum() + labels.sum())

    def acc(t):
        return ((sims >= t) == (labels == 1)).mean()

    assert f1(chosen["f1_threshold"]) == pytest.approx(max(f1(t) for t in candidates))
    assert acc(chosen["accuracy_threshold"]) == pytest.approx(max(acc(t) for t in candidates))
    metrics = ev.duplicate_metrics(sims, labels, chosen)
    assert metrics["f1"] == pytest.approx(f1(chosen["f1_threshold"]))


def test_retrieval_metrics_match_brute_force():
    rng = np.random.default_rng(1)
    queries, corpus = rng.normal(size=(7, 5)), rng.normal(size=(9, 5))
    relevant = np.array([0, 1, 2, 3, 4, 5, 8])
    metrics, ranks = ev.retrieval_metrics(queries, corpus, relevant)
    for i, q in enumerate(queries):
        cos = corpus @ q / np.linalg.norm(corpus, axis=1) / np.linalg.norm(q)
        order = list(np.argsort(-cos))
        assert ranks[i] == order.index(relevant[i]) + 1
    assert metrics["mrr@10"] == pytest.approx(np.mean([1 / r if r <= 10 else 0 for r in ranks]))
    assert metrics["recall@1"] == pytest.approx(np.mean(ranks == 1))


def test_sts_metrics_are_scipys():
    from scipy.stats import pearsonr, spearmanr

    a, b = np.array([0.1, 0.5, 0.2, 0.9]), np.array([0.0, 0.8, 0.1, 1.0])
    assert ev.sts_metrics(a, b) == {"spearman": pytest.approx(spearmanr(a, b)[0]), "pearson": pytest.approx(pearsonr(a, b)[0])}


class FixedAccelerator:
    def gather_for_metrics(self, x):
        return x

    def unwrap_model(self, m):
        return m


def test_duplicate_detection_applies_the_dev_threshold_to_test(monkeypatch):
    dev_sims, dev_labels = np.array([0.9, 0.8, 0.3, 0.2]), np.array([1, 1, 0, 0])
    test_sims, test_labels = np.array([0.5, 0.85, 0.1]), np.array([1, 1, 0])
    data = {"validation": (dev_sims, dev_labels), "test": (test_sims, test_labels)}

    def fake_embed(model, dataloader, accelerator):
        sims, labels = data[dataloader]
        # unit vectors at angle arccos(sim) to [1, 0]
        return [np.tile([1.0, 0.0], (len(sims), 1)), np.stack([sims, np.sqrt(1 - sims ** 2)], 1)], labels

    monkeypatch.setattr(ev, "embed_split", fake_embed)
    task = SimpleNamespace(kinds={"validation": "labels", "test": "labels"})
    evaluator = ev.EmbeddingEvaluator(task)
    with pytest.raises(HarnessError, match="thresholds chosen on a dev split"):
        evaluator.evaluate(None, "test", "test", FixedAccelerator())
    dev, _ = evaluator.evaluate(None, "validation", "validation", FixedAccelerator())
    assert dev["f1"] == 1.0 and 0.3 < dev["f1_threshold"] < 0.8
    test, _ = evaluator.evaluate(None, "test", "test", FixedAccelerator())
    # 0.5 is a duplicate the dev threshold (0.55) misses: the test split's own best threshold would not
    assert test["f1_threshold"] == dev["f1_threshold"] and test["recall"] == 0.5
    assert not evaluator.greater_is_better("f1_threshold") and evaluator.greater_is_better("f1")
