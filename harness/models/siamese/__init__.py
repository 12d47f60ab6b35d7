"""The Siamese bi-encoder (a shared encoder + pooling + optional normalisation) as a ``transformers`` model.

Importing this package registers the recipe builder ``siamese`` (:mod:`.builders`) without loading torch;
importing :mod:`.modeling_siamese` registers ``model_type = "harness_siamese"`` with ``AutoConfig`` and
``AutoModel``. :mod:`.sentence_transformers_io` reads and writes the sentence-transformers folder layout.
"""

from __future__ import annotations

from harness import registry
from harness.models.siamese import builders  # noqa: F401  (registers the builder)

registry.declare_family("harness.models.siamese.modeling_siamese")

_LAZY = {"SiameseConfig": "configuration_siamese", "SiameseModel": "modeling_siamese",
         "SiameseOutput": "modeling_siamese", "pool": "modeling_siamese",
         "export_sentence_transformers": "sentence_transformers_io",
         "read_sentence_transformers": "sentence_transformers_io"}
__all__ = list(_LAZY)

__getattr__ = registry.lazy_attributes(__name__, _LAZY)
