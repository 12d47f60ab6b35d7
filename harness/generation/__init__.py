"""Decoding: the recipe's generation settings, logits processors (registry section ``logits_processor``), the
searches ``transformers`` lacks (diverse / GNMT beam search: :mod:`~harness.generation.search`; minimum Bayes-risk
selection: :mod:`~harness.generation.mbr`), sampling warpers for
models outside ``generate`` (:mod:`~harness.generation.sampling`) and constrained tag-sequence decoding.

A logits processor follows the ``transformers`` interface — ``__call__(input_ids, scores) -> scores``,
arguments checked in ``__init__``, the input left unchanged — and registers itself::

    @register("logits_processor", "my_processor")
    class MyProcessor(LogitsProcessor): ...

A recipe lists it under ``generation.logits_processors``; every generative evaluator passes it to
``model.generate``.
"""

from harness.generation.constrained import constrained_viterbi
from harness.generation.mbr import mbr_generate, mbr_select
from harness.generation.search import BeamSearchSettings, beam_search
from harness.generation.settings import GenerationSettings, build_generation

__all__ = ["BeamSearchSettings", "GenerationSettings", "beam_search", "build_generation", "constrained_viterbi",
           "mbr_generate", "mbr_select"]
