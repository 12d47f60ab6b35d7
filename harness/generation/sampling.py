"""Sampling warpers for models that do not run ``transformers``' ``generate`` (the n-gram LM): the same
``transformers`` classes ``generate`` applies when ``do_sample`` is true, built from the same settings, in the same
order (temperature, top-k, top-p, min-p, typical, epsilon, eta), so "temperature 0.7, top-p 0.9" means one thing
for every generative model of the project.

Only settings given explicitly apply: where ``generate`` would fill ``top_k = 50`` into an unset field, a sampler
here draws from the whole (tempered) distribution, which is what sampling from a count-based model means.
"""

from __future__ import annotations

from typing import Any, Mapping

#: the GenerationConfig fields that reshape a sampling distribution, in the order ``generate`` applies them
SAMPLING_FIELDS = ("temperature", "top_k", "top_p", "min_p", "typical_p", "epsilon_cutoff", "eta_cutoff")


def sampling_warpers(settings: Mapping[str, Any] | Any | None = None):
    """A ``LogitsProcessorList`` of ``transformers``' warpers for ``settings`` (a mapping, or a
    ``GenerationConfig``; fields left None or at their neutral value add nothing)."""
    from transformers import LogitsProcessorList
    from transformers.generation.logits_process import (EpsilonLogitsWarper, EtaLogitsWarper, MinPLogitsWarper,
                                                        TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper,
                                                        TypicalLogitsWarper)

    if settings is None:
        settings = {}
    get = settings.get if isinstance(settings, Mapping) else (lambda k: getattr(settings, k, None))
    unknown = set(settings) - set(SAMPLING_FIELDS) if isinstance(settings, Mapping) else set()
    if unknown:
        raise ValueError(f"sampling settings: unknown {', '.join(sorted(unknown))} (known: {', '.join(SAMPLING_FIELDS)})")
    warpers = []
    if get("temperature") is not None and get("temperature") != 1.0:
        warpers.append(TemperatureLogitsWarper(float(get("temperature"))))
    if get("top_k"):
        warpers.append(TopKLogitsWarper(int(get("top_k"))))
    if get("top_p") is not None and get("top_p") < 1.0:
        warpers.append(TopPLogitsWarper(float(get("top_p"))))
    if get("min_p") is not None:
        warpers.append(MinPLogitsWarper(float(get("min_p"))))
    if get("typical_p") is not None and get("typical_p") < 1.0:
        warpers.append(TypicalLogitsWarper(float(get("typical_p"))))
    if get("epsilon_cutoff") is not None and 0.0 < get("epsilon_cutoff") < 1.0:
        warpers.append(EpsilonLogitsWarper(float(get("epsilon_cutoff"))))
    if get("eta_cutoff") is not None and 0.0 < get("eta_cutoff") < 1.0:
        warpers.append(EtaLogitsWarper(float(get("eta_cutoff"))))
    return LogitsProcessorList(warpers)


__all__ = ["SAMPLING_FIELDS", "sampling_warpers"]
