"""The recurrent encoder-decoder (no attention / Bahdanau pre-attention / Luong post-attention) as a
``transformers`` model.

Importing this package registers the recipe builder ``rnn_seq2seq`` without loading torch; importing
:mod:`.modeling_rnn_seq2seq` registers ``model_type = "harness_rnn_seq2seq"`` with ``AutoConfig`` and
``AutoModelForSeq2SeqLM``.
"""

from __future__ import annotations

from harness import registry
from harness.models.rnn_seq2seq import builders  # noqa: F401  (registers the builder)

registry.declare_family("harness.models.rnn_seq2seq.modeling_rnn_seq2seq")

_LAZY = {name: "modeling_rnn_seq2seq" for name in (
    "Seq2SeqRNNState", "RNNSeq2SeqPreTrainedModel", "RNNSeq2SeqForConditionalGeneration", "RNNEncoder", "RNNDecoder")}
_LAZY["RNNSeq2SeqConfig"] = "configuration_rnn_seq2seq"
__all__ = list(_LAZY)

__getattr__ = registry.lazy_attributes(__name__, _LAZY)
