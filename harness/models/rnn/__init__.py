"""The recurrent family (vanilla RNN, GRU, LSTM, bidirectional encoders) as ``transformers`` models.

Importing this package registers ``model_type = "harness_rnn"`` with the Auto classes (``AutoConfig`` /
``AutoModel`` / ``AutoModelForCausalLM`` / ``AutoModelForSequenceClassification`` /
``AutoModelForTokenClassification``), the recipe builders ``rnn_lm``, ``rnn_classifier``, ``rnn_tagger``
(:mod:`.builders`), and the report hook that plots the gradient through time of a trained recurrent LM
(:mod:`.diagnostics`). The BiLSTM-CRF tagger is its own package, :mod:`harness.models.rnn_tagger`.
"""

from harness.models.rnn import builders, diagnostics  # noqa: F401  (register the builders and the report hook)
from harness.models.rnn.configuration_rnn import RNNConfig
from harness.models.rnn.modeling_rnn import (
    RNNForCausalLM,
    RNNForSequenceClassification,
    RNNForTokenClassification,
    RNNModel,
    RNNPreTrainedModel,
    RNNState,
    reference_cell_step,
)
from harness.registry import register_auto

register_auto(
    RNNConfig,
    AutoModel=RNNModel,
    AutoModelForCausalLM=RNNForCausalLM,
    AutoModelForSequenceClassification=RNNForSequenceClassification,
    AutoModelForTokenClassification=RNNForTokenClassification,
)

__all__ = [
    "RNNConfig",
    "RNNState",
    "RNNPreTrainedModel",
    "RNNModel",
    "RNNForCausalLM",
    "RNNForSequenceClassification",
    "RNNForTokenClassification",
    "reference_cell_step",
]
