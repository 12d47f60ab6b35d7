"""The BiLSTM-CRF sequence tagger (Lample et al. 2016; Ma & Hovy 2016) as a ``transformers`` model.

Importing this package registers ``model_type = "harness_rnn_tagger"`` with ``AutoConfig`` and
``AutoModelForTokenClassification`` and the recipe builder ``sequence_tagger``.
"""

from harness.models.rnn_tagger import builders  # noqa: F401  (registers the sequence_tagger builder)
from harness.models.rnn_tagger.configuration_rnn_tagger import RNNTaggerConfig
from harness.models.rnn_tagger.modeling_rnn_tagger import CharEncoder, RNNTaggerForTokenClassification, char_ids
from harness.registry import register_auto

register_auto(RNNTaggerConfig, AutoModelForTokenClassification=RNNTaggerForTokenClassification)

__all__ = ["RNNTaggerConfig", "RNNTaggerForTokenClassification", "CharEncoder", "char_ids"]
