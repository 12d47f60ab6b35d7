"""Words ↔ integer ids for the n-gram models, and the flat id stream every count and score runs on.

Ids 0, 1, 2 are always ``<unk>``, ``<s>``, ``</s>`` (KenLM's order); the words follow by descending
training count, ties alphabetical, so a vocabulary built twice from the same text is the same.

The *predicted* vocabulary — the support of every distribution ``p(· | h)`` — is every word except
``<s>``: ``<s>`` only ever starts a history, ``</s>`` and ``<unk>`` are predicted like words.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from itertools import repeat
from typing import Iterable, Sequence

import numpy as np

from harness.errors import DataError, HarnessError

UNK, BOS, EOS = "<unk>", "<s>", "</s>"
UNK_ID, BOS_ID, EOS_ID = 0, 1, 2
SPECIALS = (UNK, BOS, EOS)


@dataclass
class Encoded:
    """Sentences as one flat stream ``<s> w1 … wm [</s>] <s> …``.

    ``pos[t]`` is the position of token ``t`` inside its sentence (0 at ``<s>``): token ``t`` is
    predicted when ``pos[t] > 0``, and an n-gram of order m ends at ``t`` when ``pos[t] >= m - 1``.
    """

    ids: np.ndarray  # (T,) int64 word ids, OOV words already mapped to UNK_ID
    pos: np.ndarray  # (T,) int64 position inside the sentence
    oov: np.ndarray  # (T,) bool, the token was not in the vocabulary (literal "<unk>" is not OOV)
    offsets: np.ndarray  # (S + 1,) int64 start of each sentence in the stream, then T

    @property
    def predicted(self) -> np.ndarray:
        return self.pos > 0


def as_tokens(sentence) -> Sequence[str]:
    """A sentence given as a string is split on whitespace; a list of tokens is taken as it is."""
    return sentence.split() if isinstance(sentence, str) else sentence


class Vocabulary:
    """An ordered word list whose first three entries are ``<unk>``, ``<s>``, ``</s>``."""

    def __init__(self, words: Sequence[str]):
        words = list(words)
        if tuple(words[:3]) != SPECIALS:
            raise HarnessError(f"a vocabulary must start with {list(SPECIALS)}, got {words[:3]}")
        index = {w: i for i, w in enumerate(words)}
        if len(index) != len(words):
            dupes = [w for w, c in Counter(words).items() if c > 1][:5]
            raise DataError(f"vocabulary lists a word more than once: {dupes}")
        self.words = words
        self.index = index

    @classmethod
    def from_counts(cls, counts: Counter, unk_threshold: int = 1) -> "Vocabulary":
        """Every word seen at least ``unk_threshold`` times (the others will read as ``<unk>``)."""
        kept = [w for w, c in counts.items() if c >= unk_threshold and w not in SPECIALS]
        kept.sort(key=lambda w: (-counts[w], w))
        return cls([*SPECIALS, *kept])

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: str) -> bool:
        return word in self.index

    def __eq__(self, other) -> bool:
        return isinstance(other, Vocabulary) and self.words == other.words

    @property
    def predicted_size(self) -> int:
        """|V| of the formulas: every word that can be predicted, i.e. all but ``<s>``."""
        return len(self.words) - 1

    def id(self, word: str) -> int:
        return self.index.get(word, UNK_ID)

    def encode(self, tokens: Iterable[str]) -> np.ndarray:
        """Ids of ``tokens`` (unknown words → ``<unk>``)."""
        tokens = list(tokens)
        return np.fromiter(map(self.index.get, tokens, repeat(UNK_ID)), dtype=np.int64, count=len(tokens))

    def encode_sentences(self, sentences: Iterable, eos: bool = True, what: str = "sentence") -> Encoded:
        """``<s> w1 … wm </s>`` per sentence (``</s>`` only when ``eos``), as one flat stream.

        ``<s>`` or ``</s>`` written inside a sentence is refused: they are the model's own markers.
        """
        flat: list[str] = []
        sizes: list[int] = []
        extend, append = flat.extend, flat.append
        for sentence in sentences:
            tokens = as_tokens(sentence)
            append(BOS)
            extend(tokens)
            if eos:
                append(EOS)
            sizes.append(len(tokens) + 1 + eos)
        # (T,) ids with -1 where the word is not in the vocabulary
        ids = np.fromiter(map(self.index.get, flat, repeat(-1)), dtype=np.int64, count=len(flat))
        offsets = np.zeros(len(sizes) + 1, dtype=np.int64)
        np.cumsum(sizes, out=offsets[1:])
        pos = np.arange(len(flat), dtype=np.int64) - np.repeat(offsets[:-1], sizes)
        # markers that were in the text itself: <s> anywhere but a sentence start, </s> anywhere
        # but the final slot we appended
        last = np.zeros(len(flat), dtype=bool)
        if eos and len(sizes):
            last[offsets[1:] - 1] = True
        bad = ((ids == BOS_ID) & (pos > 0)) | ((ids == EOS_ID) & ~last)
        if bad.any():
            t = int(np.flatnonzero(bad)[0])
            s = int(np.searchsorted(offsets, t, side="right") - 1)
            raise DataError(
                f"{what} {s + 1}: token {flat[t]!r} at word {int(pos[t])} is reserved for sentence boundaries; "
                f"the model adds <s> and </s> itself (remove them from the text)"
            )
        oov = ids < 0
        ids[oov] = UNK_ID
        return Encoded(ids=ids, pos=pos, oov=oov, offsets=offsets)
