"""Generated classification data, so tiny recipes and tests run with no files at all.

Sentences are random draws from a small lexicon of positive, negative and neutral words; the label
is the sentiment with more words in the sentence (ties are broken by adding one more word). The
rule is learnable by any bag-of-words model, so a few hundred steps reach high accuracy — enough
to see that a training loop learns.
"""

from __future__ import annotations

import random

from datasets import Dataset, DatasetDict

from harness.data.base import CLASSIFICATION, CLASSIFICATION_METRICS, ClassificationTask, TaskInfo
from harness.errors import DataError
from harness.registry import register

POSITIVE = ["good", "great", "fine", "lovely", "superb", "happy", "bright", "warm", "clever", "kind"]
NEGATIVE = ["bad", "awful", "poor", "dull", "sad", "grim", "cold", "weak", "ugly", "rude"]
NEUTRAL = ["the", "a", "film", "story", "cast", "plot", "scene", "music", "and", "was", "very", "quite", "it", "is"]


def _sentence(rng: random.Random, min_len: int, max_len: int) -> tuple[str, int]:
    words = [rng.choice(NEUTRAL + POSITIVE + NEGATIVE) for _ in range(rng.randint(min_len, max_len))]
    pos = sum(w in POSITIVE for w in words)
    neg = sum(w in NEGATIVE for w in words)
    if pos == neg:
        words.insert(rng.randrange(len(words) + 1), rng.choice(POSITIVE if rng.random() < 0.5 else NEGATIVE))
        pos = sum(w in POSITIVE for w in words)
        neg = sum(w in NEGATIVE for w in words)
    return " ".join(words), int(pos > neg)


@register("data", "synthetic_classification", metrics=lambda args: CLASSIFICATION_METRICS)
def synthetic_classification(
    num_train: int = 512,
    num_validation: int = 128,
    num_test: int = 0,
    min_length: int = 4,
    max_length: int = 12,
    seed: int = 0,
) -> ClassificationTask:
    """A two-class sentiment-like task generated from ``seed`` (same seed, same data)."""
    if num_train < 1 or num_validation < 1:
        raise DataError(f"synthetic_classification: num_train and num_validation must be ≥ 1, got {num_train}, {num_validation}")
    if not 1 <= min_length <= max_length:
        raise DataError(f"synthetic_classification: need 1 ≤ min_length ≤ max_length, got {min_length}, {max_length}")
    rng = random.Random(seed)
    splits = {}
    for name, n in (("train", num_train), ("validation", num_validation), ("test", num_test)):
        if n == 0:
            continue
        rows = [_sentence(rng, min_length, max_length) for _ in range(n)]
        labels = [y for _, y in rows] if name != "test" else [-1] * n
        splits[name] = Dataset.from_dict({"idx": list(range(n)), "sentence": [s for s, _ in rows], "label": labels})
    info = TaskInfo(
        name="synthetic",
        problem_type=CLASSIFICATION,
        label_names=["negative", "positive"],
        text_columns=("sentence",),
        metric="classification",
        main_metric="accuracy",
    )
    return ClassificationTask(info, DatasetDict(splits))
