"""A classifier that pools marked token spans of an encoder's output (no such head exists in ``transformers``:
its sequence classifiers read only the first token).

``SpanClassifier(input_ids, attention_mask, token_type_ids, span_bounds, labels)``: ``span_bounds`` ``(B, k, 2)``
holds each span's token positions ``[first, end)``; each span's states are pooled (mean by default), and
``[h_cls; s_1; ...; s_k; s_1 * s_2]`` goes through dropout and a linear layer to ``num_labels`` logits; with
``labels`` the loss is cross-entropy. Returns ``SequenceClassifierOutput``.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import AutoModel, PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput

from harness.models.span_classifier.configuration_span_classifier import SpanClassifierConfig
from harness.registry import register_auto


def pool_spans(hidden: torch.Tensor, bounds: torch.Tensor, mode: str = "mean") -> torch.Tensor:
    """``hidden`` (B, L, H), ``bounds`` (B, k, 2) token ranges ``[first, end)`` → (B, k, H). An empty span
    (end <= first) is an error: its pool would be undefined."""
    if bounds.dim() != 3 or bounds.shape[-1] != 2:
        raise ValueError(f"span_bounds must have shape (batch, spans, 2), got {tuple(bounds.shape)}")
    if bool((bounds[..., 1] <= bounds[..., 0]).any()):
        raise ValueError("span_bounds: every span needs end > first")
    positions = torch.arange(hidden.shape[1], device=hidden.device)
    # (B, k, L): which positions each span covers
    mask = (positions[None, None, :] >= bounds[..., :1]) & (positions[None, None, :] < bounds[..., 1:])
    if mode == "first":
        return hidden.gather(1, bounds[..., 0:1].expand(-1, -1, hidden.shape[-1]))
    if mode == "max":
        masked = hidden[:, None, :, :].masked_fill(~mask[..., None], torch.finfo(hidden.dtype).min)
        return masked.max(2).values
    weights = mask.to(hidden.dtype)
    return torch.einsum("bkl,blh->bkh", weights, hidden) / weights.sum(-1, keepdim=True)


class SpanClassifierPreTrainedModel(PreTrainedModel):
    config_class = SpanClassifierConfig
    base_model_prefix = "span_classifier"
    main_input_name = "input_ids"
    supports_gradient_checkpointing = True
    _supports_sdpa = True

    def _init_weights(self, module: nn.Module) -> None:
        """The head's linear layer: BERT's initialisation (normal, std 0.02, zero bias); the encoder (a
        ``PreTrainedModel``) initialises its own weights."""
        if isinstance(module, nn.Linear) and module is getattr(self, "classifier", None):
            std = getattr(self.config.encoder, "initializer_range", 0.02)
            module.weight.data.normal_(mean=0.0, std=std)
            if module.bias is not None:
                module.bias.data.zero_()


class SpanClassifier(SpanClassifierPreTrainedModel):
    def __init__(self, config: SpanClassifierConfig):
        super().__init__(config)
        if config.encoder is None:
            raise ValueError("SpanClassifierConfig.encoder: the encoder's config is required")
        self.num_labels = config.num_labels
        self.encoder = AutoModel.from_config(config.encoder)
        hidden = config.encoder.hidden_size
        features = hidden * (1 + config.num_spans + (1 if config.num_spans == 2 else 0))
        self.dropout = nn.Dropout(config.classifier_dropout)
        self.classifier = nn.Linear(features, config.num_labels)
        self.post_init()

    def get_input_embeddings(self):
        return self.encoder.get_input_embeddings()

    def set_input_embeddings(self, value):
        self.encoder.set_input_embeddings(value)

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, span_bounds=None, labels=None,
                inputs_embeds=None, **kwargs):
        if span_bounds is None:
            raise ValueError("SpanClassifier needs span_bounds (batch, spans, 2): the token range of each span")
        inputs = {"attention_mask": attention_mask}
        inputs.update({"inputs_embeds": inputs_embeds} if inputs_embeds is not None else {"input_ids": input_ids})
        if token_type_ids is not None:
            inputs["token_type_ids"] = token_type_ids
        hidden = self.encoder(**inputs, **kwargs).last_hidden_state
        spans = pool_spans(hidden, span_bounds.long(), self.config.span_pooling)  # (B, k, H)
        parts = [hidden[:, 0], *spans.unbind(1)]
        if spans.shape[1] == 2:
            parts.append(spans[:, 0] * spans[:, 1])
        logits = self.classifier(self.dropout(torch.cat(parts, dim=-1)))
        loss = None
        if labels is not None:
            loss = nn.functional.cross_entropy(logits.float(), labels.view(-1))
        return SequenceClassifierOutput(loss=loss, logits=logits)


register_auto(SpanClassifierConfig, AutoModelForSequenceClassification=SpanClassifier)
