"""Losses, one per file, each registered under the ``loss`` section of the registry.

A recipe picks one with ``loss: {component: cross_entropy, label_smoothing: 0.1}``; without a ``loss``
section the model's own ``outputs.loss`` trains it (``model``). To add one, write ``losses/<name>.py``
with a :class:`~harness.losses.base.Loss` subclass decorated ``@register("loss", "<name>")`` and import
it here.
"""

from harness.losses import (batch_all_triplet, batch_hard_triplet, contrastive, cosine_similarity,
                            cross_entropy, model_output, multiple_negatives_ranking, triplet)
from harness.losses.base import Loss
from harness.losses.cross_entropy import CrossEntropyLoss
from harness.losses.model_output import ModelOutputLoss

__all__ = ["Loss", "ModelOutputLoss", "CrossEntropyLoss", "cross_entropy", "model_output", "batch_all_triplet",
           "batch_hard_triplet", "contrastive", "cosine_similarity", "multiple_negatives_ranking", "triplet"]
