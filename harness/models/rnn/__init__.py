"""The recurrent family (vanilla RNN, GRU, LSTM, bidirectional encoders) as ``transformers`` models.

Importing this package registers the recipe builders ``rnn_lm``, ``rnn_classifier``, ``rnn_tagger``
(:mod:`.builders`) and the report hook that plots the gradient through time of a trained recurrent LM
(:mod:`.diagnostics`), without loading torch: the classes below load on first use, and importing
:mod:`.modeling_rnn` registers ``model_type = "harness_rnn"`` with the Auto classes (``AutoConfig``,
``AutoModel``, ``AutoModelForCausalLM``, ``AutoModelForSequenceClassification``,
``AutoModelForTokenClassification``). The BiLSTM-CRF tagger is its own package, :mod:`harness.models.rnn_tagger`.
"""

from __future__ import annotations

from harness import registry
from harness.models.rnn import builders  # noqa: F401  (registers the builders)

registry.declare_family("harness.models.rnn.modeling_rnn")

_LAZY = {"RNNConfig": "modeling_rnn", "RNNState": "modeling_rnn", "RNNPreTrainedModel": "modeling_rnn",
         "RNNModel": "modeling_rnn", "RNNForCausalLM": "modeling_rnn", "RNNForSequenceClassification": "modeling_rnn",
         "RNNForTokenClassification": "modeling_rnn", "reference_cell_step": "modeling_rnn"}
__all__ = list(_LAZY)

__getattr__ = registry.lazy_attributes(__name__, _LAZY)


@registry.register("report", "gradient_through_time")
def gradient_report(model, tokenized, splits, output_dir, tokenizer=None):
    """The run report's section for a trained recurrent LM (:func:`.diagnostics.gradient_report`), else None."""
    from harness.models.rnn.diagnostics import gradient_report

    return gradient_report(model, tokenized, splits, output_dir)
