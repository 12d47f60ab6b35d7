"""The BiLSTM-CRF sequence tagger (Lample et al. 2016; Ma & Hovy 2016) as a ``transformers`` model.

Importing this package registers the recipe builder ``sequence_tagger`` without loading torch; the classes
below load on first use (with :mod:`.modeling_rnn_tagger`, which registers
``model_type = "harness_rnn_tagger"`` with ``AutoConfig`` and ``AutoModelForTokenClassification``).
"""

from __future__ import annotations

from harness import registry
from harness.models.rnn_tagger import builders  # noqa: F401  (registers the sequence_tagger builder)

registry.declare_family("harness.models.rnn_tagger.modeling_rnn_tagger")

_LAZY = {"RNNTaggerConfig": "modeling_rnn_tagger", "RNNTaggerForTokenClassification": "modeling_rnn_tagger",
         "CharEncoder": "modeling_rnn_tagger", "char_ids": "modeling_rnn_tagger"}
__all__ = list(_LAZY)

__getattr__ = registry.lazy_attributes(__name__, _LAZY)
