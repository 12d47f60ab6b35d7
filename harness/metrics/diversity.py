r"""How varied and how repetitive generated text is: the measures of a decoding report.

Tokens are whitespace-separated words (generations are detokenized text; ``tokenize`` replaces the split).

* **distinct-n** (Li et al. 2016): the number of distinct n-grams over the total number of n-grams, pooled over
  all the texts given — 1.0 when no n-gram repeats anywhere, near 0 for a degenerate decoder.
* **repetition rate** (``rep-n``, Welleck et al. 2019): per text, :math:`1 - |\text{unique n-grams}| /
  |\text{n-grams}|` — the share of n-grams that repeat one earlier in the *same* text (a looping decoder scores
  high) — averaged over the texts that have at least one n-gram.
* **self-BLEU** (Zhu et al. 2018, Texygen): for each group of samples drawn for one input, the corpus BLEU of each
  sample against the others as references, averaged — 100 when every sample is the same, low when they differ.
  sacreBLEU computes the BLEU (``effective_order`` smoothing, as for sentence BLEU); the pairing is ours.
* **length ratio**: mean over pairs of hypothesis words / reference words (the seed's "beam search prefers
  shorter sequences" shows as a ratio below 1).

None of these is in ``evaluate`` or ``sacrebleu`` as such; each is a few lines over ``collections.Counter``.
"""

from __future__ import annotations

from collections import Counter
from typing import Callable, Sequence

Tokenize = Callable[[str], list]


def _ngrams(tokens: Sequence[str], n: int) -> list[tuple]:
    return [tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]


def _check_n(n: int) -> None:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n: expected an integer >= 1, got {n!r}")


def distinct_n(texts: Sequence[str], n: int = 1, tokenize: Tokenize = str.split) -> float:
    """Distinct n-grams / all n-grams over ``texts`` (0.0 when they hold no n-gram)."""
    _check_n(n)
    counts = Counter(g for text in texts for g in _ngrams(tokenize(text), n))
    total = sum(counts.values())
    return len(counts) / total if total else 0.0


def repetition_rate(texts: Sequence[str], n: int = 1, tokenize: Tokenize = str.split) -> float:
    """Mean over texts of the share of n-grams that repeat an earlier one of the same text."""
    _check_n(n)
    rates = []
    for text in texts:
        grams = _ngrams(tokenize(text), n)
        if grams:
            rates.append(1.0 - len(set(grams)) / len(grams))
    return sum(rates) / len(rates) if rates else 0.0


def self_bleu(groups: Sequence[Sequence[str]]) -> float:
    """Mean over groups (≥ 2 samples each; others are skipped) of the mean sentence BLEU of each sample against
    the group's other samples as references, 0–100. Raises ValueError when no group has two samples."""
    from sacrebleu.metrics import BLEU

    bleu = BLEU(effective_order=True)
    scores = []
    for group in groups:
        if len(group) < 2:
            continue
        per_sample = [bleu.sentence_score(h, [r for j, r in enumerate(group) if j != i]).score
                      for i, h in enumerate(group)]
        scores.append(sum(per_sample) / len(per_sample))
    if not scores:
        raise ValueError("self_bleu: needs at least one group of two or more samples")
    return sum(scores) / len(scores)


def length_ratio(hypotheses: Sequence[str], references: Sequence[str], tokenize: Tokenize = str.split) -> float:
    """Mean hypothesis length / reference length in words over pairs with a non-empty reference."""
    if len(hypotheses) != len(references):
        raise ValueError(f"length_ratio: {len(hypotheses)} hypotheses for {len(references)} references")
    ratios = [len(tokenize(h)) / len(tokenize(r)) for h, r in zip(hypotheses, references) if tokenize(r)]
    return sum(ratios) / len(ratios) if ratios else 0.0


__all__ = ["distinct_n", "repetition_rate", "self_bleu", "length_ratio"]
