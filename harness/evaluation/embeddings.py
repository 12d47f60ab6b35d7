"""The embedding evaluator of pairs / triplets tasks (:mod:`harness.data.pairs`): every text of a split embedded
by the model (a Siamese bi-encoder), then scored by what the split holds (``task.kinds[split]``):

* ``scores`` (STS): Spearman and Pearson correlation of the pairs' cosine similarity with the gold scores
  (sentence-transformers' ``EmbeddingSimilarityEvaluator``, cosine columns; scipy computes them).
* ``labels`` (duplicate detection, MRPC): F1 and accuracy of "cosine ≥ threshold". On a non-test split the
  thresholds that maximise F1 and accuracy are chosen (and reported, with average precision); a test split is
  scored at the thresholds last chosen on the dev split — never at its own best, which would be fitted to it.
* ``triplets`` (retrieval): each anchor is a query, the distinct positive (and negative) texts of the split are
  the corpus, the row's own positive the one relevant document; MRR@10 and recall@1/5/10 by cosine.

(sentence-transformers has these evaluators for its own model class; the metrics here are written out over the
harness's loaders — gathered across processes — with scipy / scikit-learn doing the statistics.)
"""

from __future__ import annotations

import numpy as np
import torch

from harness.config.schema import is_test_split
from harness.data.pairs import column_inputs
from harness.errors import HarnessError
from harness.evaluation.evaluators import _RUNNER_ARGS, Evaluator
from harness.registry import register

RECALL_AT = (1, 5, 10)


@torch.inference_mode()
def embed_split(model, dataloader, accelerator) -> tuple[list[np.ndarray], np.ndarray | None]:
    """Every text column of a split embedded (``[(N, H), ...]``, each example once across processes) and its
    labels (None when the split has none)."""
    was_training = model.training
    model.eval()
    columns: list[list[np.ndarray]] = []
    labels: list[np.ndarray] = []
    for batch in dataloader:
        inputs = column_inputs(batch)
        if not columns:
            columns = [[] for _ in inputs]
        for i, features in enumerate(inputs):
            embeddings = getattr(model(**features), "embeddings", None)
            if embeddings is None:
                raise HarnessError(f"the embedding evaluator needs a model that returns embeddings (got "
                                   f"{type(accelerator.unwrap_model(model)).__name__}); use model.component: siamese")
            columns[i].append(accelerator.gather_for_metrics(embeddings.float().contiguous()).cpu().numpy())
        if "labels" in batch:
            labels.append(accelerator.gather_for_metrics(batch["labels"]).cpu().numpy())
    if was_training:
        model.train()
    return [np.concatenate(c) for c in columns], (np.concatenate(labels) if labels else None)


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    return (a * b).sum(1)


def sts_metrics(similarity: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    from scipy.stats import pearsonr, spearmanr

    return {"spearman": float(spearmanr(similarity, scores)[0]), "pearson": float(pearsonr(similarity, scores)[0])}


def best_thresholds(similarity: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """The cosine thresholds (midpoints between neighbouring scores) with the best accuracy and the best F1 of
    "similarity ≥ threshold means duplicate"."""
    order = np.argsort(-similarity, kind="stable")
    s, y = similarity[order], labels[order].astype(int)
    n, positives = len(y), int(y.sum())
    # predicting the top k as duplicates, k = 1..n: true positives and false positives
    tp = np.cumsum(y)
    fp = np.arange(1, n + 1) - tp
    # only cut where the score changes (ties go together)
    cut = np.r_[s[1:] != s[:-1], True]
    k = np.nonzero(cut)[0]
    accuracy = (tp[k] + (n - positives - fp[k])) / n
    f1 = 2 * tp[k] / np.maximum(positives + k + 1, 1)
    def threshold(i):
        j = k[i]
        return float((s[j] + s[j + 1]) / 2) if j + 1 < n else float(s[j] - 1e-6)
    best_acc, best_f1 = int(np.argmax(accuracy)), int(np.argmax(f1))
    # predicting nothing as duplicate is also a choice for accuracy
    if (n - positives) / n > accuracy[best_acc]:
        return {"accuracy_threshold": float(s[0] + 1e-6), "f1_threshold": threshold(best_f1)}
    return {"accuracy_threshold": threshold(best_acc), "f1_threshold": threshold(best_f1)}


def duplicate_metrics(similarity: np.ndarray, labels: np.ndarray, thresholds: dict[str, float]) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, average_precision_score, f1_score, precision_score, recall_score

    labels = labels.astype(int)
    by_f1 = (similarity >= thresholds["f1_threshold"]).astype(int)
    by_acc = (similarity >= thresholds["accuracy_threshold"]).astype(int)
    return {"f1": float(f1_score(labels, by_f1, zero_division=0)),
            "precision": float(precision_score(labels, by_f1, zero_division=0)),
            "recall": float(recall_score(labels, by_f1, zero_division=0)),
            "accuracy": float(accuracy_score(labels, by_acc)),
            "average_precision": float(average_precision_score(labels, similarity)) if 0 < labels.sum() < len(labels)
            else float("nan"),
            **thresholds}


def retrieval_metrics(queries: np.ndarray, corpus: np.ndarray, relevant: np.ndarray) -> tuple[dict[str, float], np.ndarray]:
    """MRR@10 and recall@k of ``relevant[i]`` (a row of ``corpus``) among every corpus row for query ``i``,
    by cosine; also the 1-based rank of each relevant row (ties counted against it)."""
    q = queries / np.maximum(np.linalg.norm(queries, axis=1, keepdims=True), 1e-12)
    c = corpus / np.maximum(np.linalg.norm(corpus, axis=1, keepdims=True), 1e-12)
    scores = q @ c.T  # (Q, C)
    own = scores[np.arange(len(q)), relevant]
    rank = (scores >= own[:, None]).sum(1)  # 1 = first
    metrics = {"mrr@10": float(np.where(rank <= 10, 1.0 / rank, 0.0).mean())}
    metrics.update({f"recall@{k}": float((rank <= k).mean()) for k in RECALL_AT})
    return metrics, rank.astype(float)


@register("evaluator", "embedding_similarity", runner_args=_RUNNER_ARGS)
class EmbeddingEvaluator(Evaluator):
    """STS correlation, duplicate detection at the dev split's threshold, or retrieval (module docstring)."""

    def __init__(self, task, tokenizer=None, generation=None):
        super().__init__(task, tokenizer, generation)
        self.thresholds: dict[str, float] | None = None  # chosen on the last non-test split of 0/1 pairs

    def evaluate(self, model, dataloader, split, accelerator):
        columns, labels = embed_split(model, dataloader, accelerator)
        kind = self.task.kinds[split]
        if kind == "triplets":
            return self._retrieval(split, columns)
        similarity = cosine_rows(columns[0], columns[1])
        if labels is None or not len(labels):
            return {}, similarity
        self.references[split] = labels
        if kind == "scores":
            return sts_metrics(similarity, labels), similarity
        if not is_test_split(split):
            self.thresholds = best_thresholds(similarity, labels)
        elif self.thresholds is None:
            raise HarnessError(f"evaluation: duplicate detection on {split!r} applies the thresholds chosen on a dev "
                               "split, and none was scored before it (evaluation.splits: [validation, test])")
        return duplicate_metrics(similarity, labels, self.thresholds), similarity

    def _retrieval(self, split, columns):
        raw = self.task.splits[split]
        texts = list(raw["text1"]) + (list(raw["text2"]) if "text2" in raw.column_names else [])
        embeddings = np.concatenate(columns[1:])
        first: dict[str, int] = {}
        for i, t in enumerate(texts):
            first.setdefault(t, i)
        keep = sorted(first.values())
        position = {i: p for p, i in enumerate(keep)}
        relevant = np.array([position[first[t]] for t in raw["text1"]])
        metrics, ranks = retrieval_metrics(columns[0], embeddings[keep], relevant)
        return metrics, ranks

    def greater_is_better(self, metric: str) -> bool:
        return not metric.endswith("threshold") and super().greater_is_better(metric)
