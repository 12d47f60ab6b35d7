"""The recipe builder ``pretrained_span_classifier``: a
:class:`~harness.models.span_classifier.modeling_span_classifier.SpanClassifier` over a pretrained encoder, for a
span task (SuperGLUE WiC / WSC, whose batches carry ``span_bounds``)."""

from __future__ import annotations

from harness import registry
from harness.data.base import Task
from harness.errors import HarnessError
from harness.registry import register


@register("model", "pretrained_span_classifier", runner_args=("task",))
def pretrained_span_classifier(task: Task, checkpoint: str, span_pooling: str = "mean",
                               classifier_dropout: float = 0.1, trust_remote_code: bool = False):
    """The encoder of ``checkpoint`` (a Hub id or folder: BERT family, all-MiniLM-L6-v2, a run's saved encoder — or a
    span classifier saved by a run, loaded whole) with a span-pooling head sized for the task's labels.
    ``span_pooling``: mean / max / first over each span's tokens."""
    from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification, AutoTokenizer

    from harness.models.pretrained import check_vocabulary, resolve_checkpoint
    from harness.models.span_classifier.configuration_span_classifier import SpanClassifierConfig
    from harness.models.span_classifier.modeling_span_classifier import SpanClassifier

    if not hasattr(task, "spec") or getattr(task.spec, "kind", None) != "span":
        raise HarnessError(f"model.component: pretrained_span_classifier pools marked spans; task {task.info.name!r} "
                           "has none (use it with data.component: superglue, task wic or wsc)")
    registry.load_models()
    source = resolve_checkpoint(checkpoint)
    info = task.info
    labels = {"num_labels": info.num_labels, "id2label": info.id2label,
              "label2id": {v: k for k, v in info.id2label.items()}}
    tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=trust_remote_code)
    if AutoConfig.from_pretrained(source, trust_remote_code=trust_remote_code).model_type == SpanClassifierConfig.model_type:
        model = AutoModelForSequenceClassification.from_pretrained(source)
    else:
        encoder = AutoModel.from_pretrained(source, trust_remote_code=trust_remote_code)
        try:
            config = SpanClassifierConfig(encoder=encoder.config.to_dict(), span_pooling=span_pooling,
                                          classifier_dropout=classifier_dropout, **labels)
        except ValueError as e:
            raise HarnessError(f"model: {e}") from None
        model = SpanClassifier(config)
        model.encoder.load_state_dict(encoder.state_dict())
        model.harness_new_modules = ["classifier"]
    model.config.name_or_path = checkpoint
    check_vocabulary(model, tokenizer, "model.checkpoint")
    return model, tokenizer

