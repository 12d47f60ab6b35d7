"""The recurrent family (vanilla RNN, GRU, LSTM, bidirectional encoders) as ``transformers`` models.

Importing this package registers ``model_type = "harness_rnn"`` with the Auto classes, so a saved model
loads with ``AutoConfig`` / ``AutoModel`` / ``AutoModelForCausalLM`` /
``AutoModelForSequenceClassification`` / ``AutoModelForTokenClassification``; the BiLSTM-CRF tagger
(``model_type = "harness_rnn_tagger"``) loads with ``AutoModelForTokenClassification``.
"""

from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
)

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
from harness.models.rnn.tagger import RNNTaggerConfig, RNNTaggerForTokenClassification

AutoConfig.register(RNNConfig.model_type, RNNConfig, exist_ok=True)
AutoModel.register(RNNConfig, RNNModel, exist_ok=True)
AutoModelForCausalLM.register(RNNConfig, RNNForCausalLM, exist_ok=True)
AutoModelForSequenceClassification.register(RNNConfig, RNNForSequenceClassification, exist_ok=True)
AutoModelForTokenClassification.register(RNNConfig, RNNForTokenClassification, exist_ok=True)
AutoConfig.register(RNNTaggerConfig.model_type, RNNTaggerConfig, exist_ok=True)
AutoModelForTokenClassification.register(RNNTaggerConfig, RNNTaggerForTokenClassification, exist_ok=True)

__all__ = [
    "RNNConfig",
    "RNNState",
    "RNNPreTrainedModel",
    "RNNModel",
    "RNNForCausalLM",
    "RNNForSequenceClassification",
    "RNNForTokenClassification",
    "RNNTaggerConfig",
    "RNNTaggerForTokenClassification",
    "reference_cell_step",
]
