"""A span-pooling classifier over any ``AutoModel`` encoder (SuperGLUE's WiC and WSC), as a ``transformers`` model.

Importing this package registers the recipe builder ``pretrained_span_classifier`` (:mod:`.builders`) without
loading torch; importing :mod:`.modeling_span_classifier` registers ``model_type = "harness_span_classifier"`` with
``AutoConfig`` and ``AutoModelForSequenceClassification``, so a saved model comes back through the Auto class the
task names.
"""

from __future__ import annotations

from harness import registry
from harness.models.span_classifier import builders  # noqa: F401  (registers the builder)

registry.declare_family("harness.models.span_classifier.modeling_span_classifier")
