"""The recipe's ``generation:`` section as a ``GenerationConfig``, a list of logits processors and, where
``transformers`` has no such search, the harness's own.

Every generative evaluator and every saved generative model reads the same settings: the section's
``GenerationConfig`` fields are laid over the model's own ``generation_config`` (which carries its
bos / eos / pad ids), and ``logits_processors`` are built from the registry (section
``logits_processor``; a processor that takes a ``tokenizer`` gets the run's).

Searches ``generate`` does not run (:data:`SEARCH_KEYS`) go to :func:`harness.generation.search.beam_search`
(``generate(custom_generate=harness_generate)``):
``num_beam_groups > 1`` (diverse beam search; ``transformers`` 5 moved it behind ``trust_remote_code``),
``length_normalization: gnmt`` (``length_penalty`` is then GNMT's α) and ``coverage_penalty``.
:meth:`GenerationSettings.generate` is the one call an evaluator makes.

``mbr:`` (minimum Bayes-risk decoding, :mod:`harness.generation.mbr`) draws ``num_candidates`` outputs per input
with ``candidate_strategy`` (``sampling``, ``epsilon``: epsilon sampling with ``epsilon``, ``beam``: the N-best
list) and keeps the one of highest expected ``utility`` against the others (:meth:`GenerationSettings.select`)::

    generation:
      max_new_tokens: 64
      mbr: {num_candidates: 16, candidate_strategy: epsilon, utility: chrf}
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from harness import registry
from harness.errors import RecipeError

#: ``generation:`` keys that choose the harness's beam search instead of ``generate``
SEARCH_KEYS = ("num_beam_groups", "diversity_penalty", "length_normalization", "coverage_penalty")

#: the ``generation.mbr`` keys and their defaults
MBR_DEFAULTS = {"num_candidates": 16, "candidate_strategy": "epsilon", "epsilon": 0.02, "utility": "chrf",
                "include_self": True, "utility_args": {}}
#: what MBR sets in the GenerationConfig itself (a recipe that also sets one of these contradicts it)
MBR_OWNS = ("do_sample", "num_beams", "num_return_sequences", "epsilon_cutoff", "top_k")


@dataclass
class GenerationSettings:
    config: object  # transformers.GenerationConfig
    processors: list = field(default_factory=list)
    search: object | None = None  # harness.generation.search.BeamSearchSettings: decode with beam_search
    mbr: dict | None = None  # the generation.mbr section with its defaults: choose among candidates (select)
    _utility: object = field(default=None, repr=False)

    def select(self, groups: list[list[str]]) -> list[str]:
        """MBR's choice from each input's candidate texts (the utility built once, on first use)."""
        from harness.generation.mbr import get_utility, mbr_select

        if self._utility is None:
            self._utility = get_utility(self.mbr["utility"], **self.mbr["utility_args"])
        return [r.text for r in mbr_select(groups, self._utility, include_self=self.mbr["include_self"])]

    def saved_config(self):
        """The ``GenerationConfig`` to save with the model: one a plain ``model.generate()`` runs. The harness
        search's keys are left out (``generate`` alone refuses ``num_beam_groups > 1``; pass
        ``custom_generate=harness_generate`` and them to get it back), and MBR's candidates become one draw."""
        config = copy.deepcopy(self.config)
        if self.search is not None:
            config.num_beam_groups, config.diversity_penalty = 1, 0.0
            for key in ("length_normalization", "coverage_penalty"):
                if hasattr(config, key):
                    delattr(config, key)
        if self.mbr is not None:
            config.num_return_sequences = 1
        return config

    def generate_kwargs(self) -> dict:
        """Keyword arguments for ``model.generate``."""
        from transformers import LogitsProcessorList

        kwargs = {"generation_config": self.config}
        if self.processors:
            kwargs["logits_processor"] = LogitsProcessorList(self.processors)
        return kwargs

    def generate(self, model, **inputs):
        """Token ids as ``model.generate`` returns them (``num_return_sequences`` rows per input); with
        :attr:`search`, ``generate`` runs the harness's beam search as its decoding loop (``custom_generate``), so
        the processors it builds from the config (``no_repeat_ngram_size``, ``repetition_penalty``, ...) apply."""
        if self.search is None:
            return model.generate(**inputs, **self.generate_kwargs())
        from harness.generation.search import harness_generate

        return model.generate(**inputs, **self.generate_kwargs(), custom_generate=harness_generate)


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


def mbr_settings(section: dict) -> tuple[dict | None, dict]:
    """The ``mbr`` subsection with its defaults, and the GenerationConfig fields its candidates need.
    ValueError ``"<key>: ..."`` for a bad value or a field the recipe sets that MBR sets itself."""
    from harness.generation.mbr import CANDIDATE_STRATEGIES, UTILITIES

    given = section.get("mbr")
    if given is None:
        return None, {}
    if not isinstance(given, dict):
        raise ValueError(f"mbr: expected a section ({', '.join(MBR_DEFAULTS)}), got {given!r}")
    unknown = sorted(set(given) - set(MBR_DEFAULTS))
    if unknown:
        raise ValueError(f"mbr.{unknown[0]}: unknown key (known: {', '.join(MBR_DEFAULTS)})")
    mbr = {**MBR_DEFAULTS, **given}
    n, strategy = mbr["num_candidates"], mbr["candidate_strategy"]
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"mbr.num_candidates: expected an integer >= 1, got {n!r}")
    if strategy not in CANDIDATE_STRATEGIES:
        raise ValueError(f"mbr.candidate_strategy: expected one of {', '.join(CANDIDATE_STRATEGIES)}, got {strategy!r}")
    if mbr["utility"] not in UTILITIES:
        raise ValueError(f"mbr.utility: expected one of {', '.join(sorted(UTILITIES))}, got {mbr['utility']!r}")
    if not isinstance(mbr["include_self"], bool):
        raise ValueError(f"mbr.include_self: expected true or false, got {mbr['include_self']!r}")
    if not isinstance(mbr["utility_args"], dict):
        raise ValueError(f"mbr.utility_args: expected a mapping, got {mbr['utility_args']!r}")
    eps = mbr["epsilon"]
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not 0 < eps < 1:
        raise ValueError(f"mbr.epsilon: expected a number in (0, 1), got {eps!r}")
    clash = [k for k in MBR_OWNS if section.get(k) is not None]
    if clash:
        raise ValueError(f"{clash[0]}: mbr sets it from its candidate_strategy; leave it out")
    if any(section.get(k) is not None for k in SEARCH_KEYS):
        raise ValueError("mbr: the harness beam search keys (num_beam_groups, length_normalization, "
                         "coverage_penalty) do not combine with mbr")
    if strategy == "beam":
        fields = {"do_sample": False, "num_beams": n, "num_return_sequences": n}
    else:
        fields = {"do_sample": True, "top_k": 0, "num_return_sequences": n}
        if strategy == "epsilon":
            fields["epsilon_cutoff"] = float(eps)
    return mbr, fields


def build_generation(section: dict | None, model=None, tokenizer=None) -> GenerationSettings:
    """Settings from a validated ``generation`` section (None: the model's own defaults)."""
    from transformers import GenerationConfig

    section = dict(section or {})
    specs = section.pop("logits_processors", []) or []
    try:
        mbr, candidates = mbr_settings(section)
    except ValueError as e:
        raise RecipeError(f"generation.{e}") from None
    section.pop("mbr", None)
    search = search_requested(section)
    custom = ("length_normalization", "coverage_penalty")  # read by harness_generate, not GenerationConfig fields
    plain = {**{k: v for k, v in section.items() if k not in custom}, **candidates}
    base = getattr(model, "generation_config", None)
    config = copy.deepcopy(base) if base is not None else GenerationConfig()
    config.update(**plain)
    for key in custom:
        if section.get(key) is not None:
            setattr(config, key, section[key])
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
    return GenerationSettings(config, processors, beam, mbr)
