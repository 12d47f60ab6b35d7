"""Configuration of :class:`~harness.models.span_classifier.modeling_span_classifier.SpanClassifier`.

The encoder's config is a sub-config (as ``EncoderDecoderConfig`` holds its encoder's), so ``config.json`` is
self-contained and ``AutoModelForSequenceClassification.from_pretrained`` rebuilds the whole model.
"""

from __future__ import annotations

from transformers import AutoConfig, PretrainedConfig
from transformers.configuration_utils import SubConfigSpec

SPAN_POOLINGS = ("mean", "max", "first")


class SpanClassifierConfig(PretrainedConfig):
    r"""Configuration for ``SpanClassifier``.

    Args:
        encoder: the encoder's config (a ``PretrainedConfig`` or its dict with a ``model_type``).
        num_spans: how many token spans each example marks (``span_bounds`` of shape ``(batch, num_spans, 2)``).
        span_pooling: how a span's token states become one vector: ``mean``, ``max`` or ``first`` (its first token).
        classifier_dropout: dropout on the pooled features before the linear head.
        (``num_labels`` / ``id2label`` / ``label2id`` as every classifier's.)

    The head reads ``[h_cls; s_1; ...; s_k; s_1 * s_2]`` (the first token's state, each pooled span, and for two
    spans their element-wise product) — the span representation of the SuperGLUE baselines' WiC/WSC heads.
    """

    model_type = "harness_span_classifier"
    sub_configs_defaults = {"encoder": SubConfigSpec(config_class=AutoConfig, model_type="bert")}

    encoder: PretrainedConfig | dict | None = None
    num_spans: int = 2
    span_pooling: str = "mean"
    classifier_dropout: float = 0.1

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        if self.span_pooling not in SPAN_POOLINGS:
            raise ValueError(f"span_pooling must be one of {SPAN_POOLINGS}, got {self.span_pooling!r}")
        if isinstance(self.num_spans, bool) or not isinstance(self.num_spans, int) or self.num_spans < 1:
            raise ValueError(f"num_spans must be a positive integer, got {self.num_spans!r}")
        if not (isinstance(self.classifier_dropout, (int, float)) and 0 <= self.classifier_dropout < 1):
            raise ValueError(f"classifier_dropout must be in [0, 1), got {self.classifier_dropout!r}")

    @property
    def hidden_size(self) -> int:
        return self.encoder.hidden_size
