"""Masked-language-model objectives as collators: token masking (BERT) and span masking (SpanBERT).

* **MLM** (Devlin et al. 2019): each non-special token is selected with probability ``mlm_probability``
  (15 %); a selected token becomes ``[MASK]`` 80 % of the time, a random token 10 %, stays itself 10 %, and the
  model is scored on the selected positions only (labels elsewhere are -100). Drawn afresh for every batch
  (dynamic masking, RoBERTa). ``whole_word_mask``: the selection is by word, every sub-token of a chosen word
  together. This is ``transformers.DataCollatorForLanguageModeling``; :func:`mlm_collator` only sets it up.
* **Multi-mask / span MLM** (:class:`SpanMaskingCollator`, Joshi et al. 2020 "SpanBERT"; T5's span corruption
  draws spans the same way): several contiguous spans per sequence are masked, lengths drawn from a geometric
  distribution :math:`\\ell \\sim \\mathrm{Geo}(p)` truncated to ``max_span_length`` (SpanBERT: p = 0.2, at most
  10, mean ≈ 3.8), start positions uniform over the unmasked tokens, until the sequence's budget of
  ``mlm_probability × maskable tokens`` is spent (stochastic rounding: the expected rate is exactly
  ``mlm_probability``). The 80 / 10 / 10 replacement is decided per span, as in SpanBERT. ``transformers`` has
  no such collator.

Both return ``input_ids``, ``attention_mask`` and ``labels`` (the original ids at masked positions, -100
elsewhere). Evaluation splits are masked once, with a fixed seed (:func:`mask_statically`), so every
evaluation of a run scores the same positions.
"""

from __future__ import annotations

import numpy as np
import torch


def mlm_collator(tokenizer, mlm_probability: float = 0.15, whole_word_mask: bool = False,
                 mask_replace_prob: float = 0.8, random_replace_prob: float = 0.1,
                 pad_to_multiple_of: int | None = None, seed: int | None = None):
    """BERT's dynamic token masking (``DataCollatorForLanguageModeling``). With ``whole_word_mask`` the features
    carry ``offset_mapping`` (sub-tokens of one word touch) and ``transformers`` replaces every chosen word by
    [MASK] (no random / kept share: its collator sets ``mask_replace_prob`` to 1 for whole words)."""
    from transformers import DataCollatorForLanguageModeling

    collator = DataCollatorForLanguageModeling(
        tokenizer, mlm=True, whole_word_mask=whole_word_mask, mlm_probability=mlm_probability,
        mask_replace_prob=mask_replace_prob, random_replace_prob=random_replace_prob,
        pad_to_multiple_of=pad_to_multiple_of, seed=seed)
    return _PadWordFeatures(collator, pad_to_multiple_of) if whole_word_mask else collator


class _PadWordFeatures:
    """Pads ``offset_mapping`` to the batch's length before the whole-word collator (``tokenizer.pad`` pads the
    other columns but not nested offsets)."""

    def __init__(self, collator, pad_to_multiple_of: int | None):
        self.collator, self.multiple = collator, pad_to_multiple_of

    def __call__(self, features: list[dict]) -> dict:
        length = max(len(f["input_ids"]) for f in features)
        if self.multiple:
            length = -(-length // self.multiple) * self.multiple
        padded = []
        for f in features:
            f = dict(f)
            missing = length - len(f["input_ids"])
            if "offset_mapping" in f:
                f["offset_mapping"] = [tuple(o) for o in f["offset_mapping"]] + [(0, 0)] * missing
            padded.append(f)
        return self.collator(padded)


class SpanMaskingCollator:
    """SpanBERT's span masking (module docstring). ``features``: dicts with ``input_ids`` (and optionally
    ``special_tokens_mask``); padded with the tokenizer."""

    def __init__(self, tokenizer, mlm_probability: float = 0.15, geometric_p: float = 0.2, max_span_length: int = 10,
                 mask_replace_prob: float = 0.8, random_replace_prob: float = 0.1,
                 pad_to_multiple_of: int | None = None, seed: int | None = None):
        if not 0.0 < mlm_probability < 1.0:
            raise ValueError(f"mlm_probability: expected a number in (0, 1), got {mlm_probability}")
        if not 0.0 < geometric_p <= 1.0:
            raise ValueError(f"span_geometric_p: expected a number in (0, 1], got {geometric_p}")
        if max_span_length < 1:
            raise ValueError(f"max_span_length: expected a positive integer, got {max_span_length}")
        if mask_replace_prob < 0 or random_replace_prob < 0 or mask_replace_prob + random_replace_prob > 1:
            raise ValueError(f"mask_replace_prob + random_replace_prob must be within [0, 1], got "
                             f"{mask_replace_prob} + {random_replace_prob}")
        if tokenizer.mask_token_id is None:
            raise ValueError("span masking needs a tokenizer with a mask token")
        self.tokenizer = tokenizer
        self.p, self.geometric_p, self.max_span = mlm_probability, geometric_p, max_span_length
        self.mask_replace_prob, self.random_replace_prob = mask_replace_prob, random_replace_prob
        self.pad_to_multiple_of = pad_to_multiple_of
        self.rng = np.random.default_rng(seed) if seed is not None else None

    def _rng(self) -> np.random.Generator:
        if self.rng is not None:
            return self.rng
        # the global torch generator drives it, so the harness's seeding and checkpointed RNG state apply
        return np.random.default_rng(int(torch.randint(0, 2**62, (1,)).item()))

    def span_lengths(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """Lengths from the geometric distribution truncated to ``1 … max_span_length`` and renormalised, as
        SpanBERT samples them (mean ≈ 3.8 for p = 0.2, at most 10) — not clipped, which would pile the tail's
        13 % onto the longest length."""
        lengths = np.arange(1, self.max_span + 1)
        weights = self.geometric_p * (1 - self.geometric_p) ** (lengths - 1)
        return rng.choice(lengths, size=n, p=weights / weights.sum())

    def mask_row(self, ids: np.ndarray, maskable: np.ndarray, rng: np.random.Generator):
        """Mask one sequence: ``(input_ids, labels)`` as numpy arrays."""
        candidates = np.flatnonzero(maskable)
        n = len(candidates)
        target = self.p * n
        budget = int(target) + int(rng.random() < target - int(target))  # stochastic rounding: E[budget] = p·n
        masked = np.zeros(len(ids), dtype=bool)
        spans = []
        count = 0
        while count < budget:
            free = candidates[~masked[candidates]]
            start = free[rng.integers(len(free))]
            length = int(self.span_lengths(rng, 1)[0])
            span = [i for i in range(start, min(start + length, len(ids))) if maskable[i] and not masked[i]]
            span = span[: budget - count]  # the last span is cut to the budget
            masked[span] = True
            count += len(span)
            spans.append(span)
        labels = np.where(masked, ids, -100)
        out = ids.copy()
        for span in spans:  # 80 / 10 / 10 per span
            r = rng.random()
            if r < self.mask_replace_prob:
                out[span] = self.tokenizer.mask_token_id
            elif r < self.mask_replace_prob + self.random_replace_prob:
                out[span] = rng.integers(len(self.tokenizer), size=len(span))
        return out, labels

    def __call__(self, features: list[dict]) -> dict:
        rng = self._rng()
        specials = [f.get("special_tokens_mask") for f in features]
        padded = self.tokenizer.pad([{"input_ids": f["input_ids"]} for f in features], return_tensors="pt",
                                    pad_to_multiple_of=self.pad_to_multiple_of)
        ids = padded["input_ids"].numpy().copy()
        real = padded["attention_mask"].numpy().astype(bool)
        labels = np.full_like(ids, -100)
        for row, special in enumerate(specials):
            if special is None:
                special = self.tokenizer.get_special_tokens_mask(list(features[row]["input_ids"]),
                                                                 already_has_special_tokens=True)
            maskable = real[row].copy()
            maskable[: len(special)] &= ~np.asarray(special, dtype=bool)
            ids[row], labels[row] = self.mask_row(ids[row], maskable, rng)
        return {"input_ids": torch.from_numpy(ids), "attention_mask": padded["attention_mask"],
                "labels": torch.from_numpy(labels)}


def mask_statically(rows, collator, batch_size: int = 256) -> dict[str, list]:
    """Apply a (seeded) masking collator to every row once: columns ``input_ids``, ``attention_mask``, ``labels``
    without padding (an evaluation split's fixed masks)."""
    out = {"input_ids": [], "attention_mask": [], "labels": []}
    for start in range(0, len(rows), batch_size):
        chunk = [rows[i] for i in range(start, min(start + batch_size, len(rows)))]
        batch = collator(chunk)
        for row, feature in enumerate(chunk):
            n = len(feature["input_ids"])
            for key in out:
                out[key].append(batch[key][row, :n].tolist())
    return out


__all__ = ["mlm_collator", "SpanMaskingCollator", "mask_statically"]
