"""The recipe's ``generation:`` section as a ``GenerationConfig``, a list of logits processors and, where
``transformers`` has no such search, the harness's own.

Every generative evaluator and every saved generative model reads the same settings: the section's
``GenerationConfig`` fields are laid over the model's own ``generation_config`` (which carries its
bos / eos / pad ids), and ``logits_processors`` are built from the registry (section
``logits_processor``; a processor that takes a ``tokenizer`` gets the run's).

Searches ``generate`` does not run (:data:`SEARCH_KEYS`) go to :func:`harness.generation.search.beam_search`:
``num_beam_groups > 1`` (diverse beam search; ``transformers`` 5 moved it behind ``trust_remote_code``),
``length_normalization: gnmt`` (``length_penalty`` is then GNMT's α) and ``coverage_penalty``.
:meth:`GenerationSettings.generate` is the one call an evaluator makes.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from harness import registry
from harness.errors import RecipeError

#: ``generation:`` keys that choose the harness's beam search instead of ``generate``
SEARCH_KEYS = ("num_beam_groups", "diversity_penalty", "length_normalization", "coverage_penalty")


@dataclass
class GenerationSettings:
    config: object  # transformers.GenerationConfig
    processors: list = field(default_factory=list)
    search: object | None = None  # harness.generation.search.BeamSearchSettings: decode with beam_search

    def generate_kwargs(self) -> dict:
        """Keyword arguments for ``model.generate``."""
        from transformers import LogitsProcessorList

        kwargs = {"generation_config": self.config}
        if self.processors:
            kwargs["logits_processor"] = LogitsProcessorList(self.processors)
        return kwargs

    def generate(self, model, **inputs):
        """Token ids as ``model.generate`` returns them (``num_return_sequences`` rows per input), from
        ``generate`` or, with :attr:`search`, from the harness's beam search."""
        if self.search is None:
            return model.generate(**inputs, **self.generate_kwargs())
        from transformers import LogitsProcessorList

        from harness.generation.search import beam_search

        processors = LogitsProcessorList(self.processors) if self.processors else None
        return beam_search(model, inputs["input_ids"], inputs.get("attention_mask"), self.search,
                           logits_processor=processors).sequences


def search_requested(section: dict) -> bool:
    """Whether a validated ``generation`` section asks for the harness's beam search."""
    return ((section.get("num_beam_groups") or 1) > 1 or bool(section.get("coverage_penalty"))
            or section.get("length_normalization") is not None)


def search_settings(section: dict, config):
    """:class:`~harness.generation.search.BeamSearchSettings` from the section's search keys and the merged
    ``GenerationConfig`` (beams, lengths, return sequences, ids). ValueError names the argument."""
    from harness.generation.search import BeamSearchSettings

    extra = {k: section[k] for k in SEARCH_KEYS if section.get(k) is not None}
    alpha = section.get("length_penalty")
    if "length_normalization" not in extra and alpha is not None:
        extra["length_normalization"] = "power"  # generate's own meaning of length_penalty
    return BeamSearchSettings.from_generation_config(config, length_penalty=alpha or 0.0, **extra)


def build_generation(section: dict | None, model=None, tokenizer=None) -> GenerationSettings:
    """Settings from a validated ``generation`` section (None: the model's own defaults)."""
    from transformers import GenerationConfig

    section = dict(section or {})
    specs = section.pop("logits_processors", []) or []
    search = search_requested(section)
    plain = {k: v for k, v in section.items() if k not in SEARCH_KEYS}
    base = getattr(model, "generation_config", None)
    config = copy.deepcopy(base) if base is not None else GenerationConfig()
    config.update(**plain)
    if tokenizer is not None and config.pad_token_id is None:
        config.pad_token_id = tokenizer.pad_token_id
    processors = []
    for i, spec in enumerate(specs):
        args = dict(spec)
        entry = registry.entry("logits_processor", args.pop("component"))
        if "tokenizer" in entry.runner_args:
            args["tokenizer"] = tokenizer
        try:
            processors.append(entry.target(**args))
        except (TypeError, ValueError) as e:
            raise RecipeError(f"generation.logits_processors[{i}] ({entry.name}): {e}") from None
    beam = None
    if search:
        try:
            beam = search_settings(section, config)
        except ValueError as e:
            raise RecipeError(f"generation: {e}") from None
    return GenerationSettings(config, processors, beam)
