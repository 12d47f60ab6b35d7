"""The default: the loss the model computes itself (``outputs.loss``), as ``transformers`` heads do when
they get ``labels``."""

from __future__ import annotations

from harness.errors import TrainingError
from harness.losses.base import Loss
from harness.registry import register


@register("loss", "model")
class ModelOutputLoss(Loss):
    """``outputs = model(**batch); outputs.loss`` — whatever the model's head defines (cross-entropy for a
    classifier, MSE for regression, the CRF's negative log-likelihood for a CRF tagger, the shifted
    token cross-entropy for a causal LM)."""

    def forward(self, model, batch: dict, **model_kwargs):
        outputs = model(**batch, **model_kwargs)
        if getattr(outputs, "loss", None) is None:
            raise TrainingError(f"the model ({type(outputs).__name__}) returned no loss: the batch carries no "
                                f"labels it reads (batch keys: {', '.join(batch)}); choose a loss: section")
        return outputs.loss, outputs
