"""Decoding: the recipe's generation settings, logits processors (registry section ``logits_processor``), the
searches ``transformers`` lacks (diverse / GNMT beam search: :mod:`~harness.generation.search`; minimum Bayes-risk
selection: :mod:`~harness.generation.mbr`), sampling warpers for
models outside ``generate`` (:mod:`~harness.generation.sampling`) and constrained tag-sequence decoding.

A logits processor follows the ``transformers`` interface — ``__call__(input_ids, scores) -> scores``,
arguments checked in ``__init__``, the input left unchanged — and registers itself::

    @register("logits_processor", "my_processor")
    class MyProcessor(LogitsProcessor): ...

A recipe lists it under ``generation.logits_processors``; every generative evaluator passes it to
``model.generate``. (A module that registers a processor is imported here, eagerly, so the registry finds it.)
"""

from harness import registry

#: batch keys that belong to the training target, not to what ``generate`` reads
TARGET_KEYS = ("labels", "shift_labels", "decoder_input_ids", "decoder_attention_mask")

#: public name → its module; loaded on first use, so that checking a recipe's generation section
#: (``harness.generation.settings``) does not import torch
_EXPORTS = {
    "constrained_viterbi": "constrained", "mbr_generate": "mbr", "mbr_select": "mbr", "BeamSearchSettings": "search",
    "beam_search": "search", "GenerationSettings": "settings", "build_generation": "settings",
}
__getattr__ = registry.lazy_attributes(__name__, _EXPORTS)
__all__ = ["TARGET_KEYS", *sorted(_EXPORTS)]
