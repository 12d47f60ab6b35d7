"""Transformers written from scratch (encoder, decoder, encoder-decoder) as ``transformers`` models.

Importing this package registers the recipe builder ``transformer`` (:mod:`.builders`) without loading torch;
the classes below load on first use, and importing :mod:`.modeling_transformer` registers
``model_type = "harness_transformer"`` with the Auto classes (``AutoConfig``, ``AutoModel``,
``AutoModelForMaskedLM``, ``AutoModelForSequenceClassification``, ``AutoModelForTokenClassification``,
``AutoModelForCausalLM``, ``AutoModelForSeq2SeqLM``). The attention layers and position encodings are
:mod:`harness.modules.attention` and :mod:`harness.modules.positions`.
"""

from __future__ import annotations

from harness import registry
from harness.models.transformer import builders  # noqa: F401  (registers the builder)

registry.declare_family("harness.models.transformer.modeling_transformer")

_LAZY = {name: "modeling_transformer" for name in (
    "TransformerPreTrainedModel", "TransformerModel", "TransformerForMaskedLM", "TransformerForSequenceClassification",
    "TransformerForTokenClassification", "TransformerForCausalLM", "TransformerSeq2SeqModel",
    "TransformerForConditionalGeneration", "shift_right")}
_LAZY["TransformerConfig"] = "configuration_transformer"
__all__ = list(_LAZY)

__getattr__ = registry.lazy_attributes(__name__, _LAZY)


@registry.register("report", "attention_maps")
def attention_report(model, tokenized, splits, output_dir, tokenizer=None):
    """The run report's attention-map section for a trained Transformer (:mod:`.diagnostics`), else None."""
    from harness.models.transformer.diagnostics import attention_report

    return attention_report(model, tokenized, splits, output_dir, tokenizer)
