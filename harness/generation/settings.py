"""The recipe's ``generation:`` section as a ``GenerationConfig`` and a list of logits processors.

Every generative evaluator and every saved generative model reads the same settings: the section's
``GenerationConfig`` fields are laid over the model's own ``generation_config`` (which carries its
bos / eos / pad ids), and ``logits_processors`` are built from the registry (section
``logits_processor``; a processor that takes a ``tokenizer`` gets the run's).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from harness import registry
from harness.errors import RecipeError


@dataclass
class GenerationSettings:
    config: object  # transformers.GenerationConfig
    processors: list = field(default_factory=list)

    def generate_kwargs(self) -> dict:
        """Keyword arguments for ``model.generate``."""
        from transformers import LogitsProcessorList

        kwargs = {"generation_config": self.config}
        if self.processors:
            kwargs["logits_processor"] = LogitsProcessorList(self.processors)
        return kwargs


def build_generation(section: dict | None, model=None, tokenizer=None) -> GenerationSettings:
    """Settings from a validated ``generation`` section (None: the model's own defaults)."""
    from transformers import GenerationConfig

    section = dict(section or {})
    specs = section.pop("logits_processors", []) or []
    base = getattr(model, "generation_config", None)
    config = copy.deepcopy(base) if base is not None else GenerationConfig()
    config.update(**section)
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
    return GenerationSettings(config, processors)
