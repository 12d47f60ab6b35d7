"""Tag sequences under a tagging scheme's rules: the best *valid* path for a tagger without a CRF.

A softmax tagger (a BiLSTM with a softmax head, any BERT-family token classifier) scores each word on
its own, so its per-word argmax can produce sequences the scheme forbids (IOB2: ``O → I-PER``,
``B-PER → I-LOC``, a sentence starting with ``I-X``). :func:`constrained_viterbi` returns, for each
sentence, ``argmax_y sum_t log p(y_t | x)`` over the sequences the scheme allows: Viterbi with every
allowed transition scored 0 and every forbidden one excluded. (Not in ``transformers`` or ``seqeval``;
the Viterbi is :class:`harness.modules.crf.CRF`'s with zero transition scores.)
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from harness.modules.crf import CRF


def constrained_viterbi(word_scores: Sequence[np.ndarray], labels: Sequence[str], scheme: str,
                        chunk: int = 256) -> list[np.ndarray]:
    """The best valid tag-id path of each sentence. ``word_scores[i]``: ``(words, tags)`` log-probabilities
    of sentence ``i`` (tag ids index ``labels``); ``scheme``: IOB1, IOB2, IOBES or BIOUL. Sentences are
    decoded in length-sorted chunks of ``chunk``; an empty sentence gives an empty path."""
    crf = CRF.from_scheme(list(labels), scheme)
    for p in crf.parameters():
        torch.nn.init.zeros_(p)
    out: list[np.ndarray] = [np.zeros(0, dtype=np.int64)] * len(word_scores)
    order = [i for i in sorted(range(len(word_scores)), key=lambda i: len(word_scores[i])) if len(word_scores[i])]
    for a in range(0, len(order), chunk):
        idx = order[a : a + chunk]
        longest = max(len(word_scores[i]) for i in idx)
        # (chunk, longest, tags), (chunk, longest)
        emissions = torch.zeros(len(idx), longest, len(labels))
        mask = torch.zeros(len(idx), longest, dtype=torch.bool)
        for b, i in enumerate(idx):
            n = len(word_scores[i])
            # floor the log-probabilities well above the CRF's forbidden score
            emissions[b, :n] = torch.as_tensor(word_scores[i], dtype=torch.float32).clamp(min=-1e3)
            mask[b, :n] = True
        with torch.no_grad():
            paths = crf.decode(emissions, mask)
        for b, i in enumerate(idx):
            out[i] = np.asarray(paths[b], dtype=np.int64)
    return out
