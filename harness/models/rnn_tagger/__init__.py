"""The BiLSTM-CRF sequence tagger (Lample et al. 2016; Ma & Hovy 2016) as a ``transformers`` model.

Importing this package registers the recipe builder ``sequence_tagger`` without loading torch; the classes
below load on first use, and importing :mod:`.modeling_rnn_tagger` registers
``model_type = "harness_rnn_tagger"`` with ``AutoConfig`` and ``AutoModelForTokenClassification``.
"""

from __future__ import annotations

import importlib

from harness import registry
from harness.models.rnn_tagger import builders  # noqa: F401  (registers the sequence_tagger builder)

registry.declare_family("harness.models.rnn_tagger.modeling_rnn_tagger")

_LAZY = {"RNNTaggerConfig": "configuration_rnn_tagger", "RNNTaggerForTokenClassification": "modeling_rnn_tagger",
         "CharEncoder": "modeling_rnn_tagger", "char_ids": "modeling_rnn_tagger"}
__all__ = list(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f"harness.models.rnn_tagger.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'harness.models.rnn_tagger' has no attribute {name!r}")
