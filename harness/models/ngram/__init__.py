"""Count-based n-gram language models: MLE, Laplace, add-k, interpolated Kneser-Ney and modified
Kneser-Ney, of any order, with ARPA export and import.

Why our own: nothing installable here does all of it. NLTK's ``nltk.lm`` is pure Python — its
``KneserNeyInterpolated(5)`` takes ~30 s to fit PTB and ~6 s to score *one* test sentence (it
recounts continuations per query) — and gives a word unseen in training probability 0, so the
perplexity of any text with one is ``inf``, even smoothed (NLTK 3.10.4; its ``<UNK>`` gets no
Kneser-Ney mass). KenLM is fast and correct but its estimator (``lmplz``) is a C++ program that needs
a CMake + Boost build; its PyPI package only queries models. Here counting and scoring are numpy
(sorted int64 keys, ``argsort`` to count, ``searchsorted`` to look up): a modified-KN 5-gram on PTB
builds in ~0.7 s and scores the test set in ~50 ms, and its perplexity equals ``lmplz``'s to 1e-8
(scripts/bench_ngram.py).

Public API::

    from harness.models.ngram import NgramLM
    lm = NgramLM(order=5, smoothing="modified_kneser_ney").fit(sentences)   # token lists or strings
    lm.perplexity(test_sentences); lm.score(test_sentences).log10           # per-token log10 p
    lm.logprobs("the cat sat")                                              # natural log, + </s>
    lm.sample(3, seed=0); lm.to_arpa("lm.arpa"); NgramLM.from_arpa("lm.arpa")

``ngram_lm`` is the recipe component (``model.component: ngram_lm``); its registry entry names the
``counting`` procedure (:mod:`harness.training.counting`), which fits it instead of the gradient loop.
"""

from __future__ import annotations

from typing import Literal

from harness.errors import HarnessError
from harness.registry import register
from harness.models.ngram.arpa import read_arpa, write_arpa
from harness.models.ngram.modeling_ngram import SMOOTHING, NgramLM, Scores, check_vocabulary
from harness.models.ngram.smoothing import BackoffTables, NgramWarning
from harness.models.ngram.vocab import BOS, EOS, UNK, Vocabulary

__all__ = ["NgramLM", "Scores", "ngram_lm", "read_arpa", "write_arpa", "check_vocabulary", "BackoffTables",
           "NgramWarning", "Vocabulary", "SMOOTHING", "UNK", "BOS", "EOS"]


@register("model", "ngram_lm", runner_args=("task",), procedure="counting")
def ngram_lm(
    task,
    order: int = 3,
    smoothing: Literal["mle", "laplace", "add_k", "kneser_ney", "modified_kneser_ney"] = "kneser_ney",
    k: float = 1.0,
    discount: float | list[float] | None = None,
    unk_threshold: int = 1,
) -> NgramLM:
    """An unfitted :class:`NgramLM` for a language-modelling task (``data.component: lm_text``).

    ``order``: N; ``smoothing``: see :mod:`harness.models.ngram.smoothing`; ``k``: add-k's pseudo-count;
    ``discount``: fixed Kneser-Ney discounts instead of the count-of-counts estimates (kneser_ney: one
    number or one per order; modified_kneser_ney: [D1, D2, D3+]); ``unk_threshold``: training words
    seen fewer times are read as ``<unk>`` (1 keeps all, as KenLM does).
    """
    if task is not None and not callable(getattr(task, "sentences", None)):
        name = getattr(getattr(task, "info", None), "name", type(task).__name__)
        raise HarnessError(f"ngram_lm needs a language-modelling data component (lm_text), got task {name!r}")
    return NgramLM(order=order, smoothing=smoothing, k=k, discount=discount, unk_threshold=unk_threshold)

