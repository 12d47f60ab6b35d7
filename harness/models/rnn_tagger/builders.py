"""Recipe builder ``sequence_tagger``: the BiLSTM-CRF tagger with a word-level vocabulary from the task's
training text, character vocabulary, singleton words and optional pretrained word vectors."""

from __future__ import annotations

from collections import Counter
from typing import Literal

from harness.data.base import Task, head_config
from harness.data.tokenizers import build_word_tokenizer
from harness.models.rnn.builders import Cell
from harness.registry import register

Head = Literal["crf", "softmax"]
CharEncoderKind = Literal["lstm", "cnn", "none"]


@register("model", "sequence_tagger", runner_args=("task",))
def sequence_tagger(
    task: Task,
    head: Head = "crf",
    cell: Cell = "lstm",
    embedding_size: int = 100,
    hidden_size: int = 100,
    num_layers: int = 1,
    dropout: float = 0.5,
    classifier_dropout: float = 0.0,
    char_encoder: CharEncoderKind = "lstm",
    char_embedding_size: int = 25,
    char_hidden_size: int = 25,
    char_kernel_size: int = 3,
    max_word_length: int = 30,
    constrained: bool = True,
    word_vectors: str | None = None,
    word_dropout: float = 0.0,
    singleton_unk: float = 0.0,
    residual: bool = False,
    layer_norm: bool = False,
    init_range: float = 0.1,
    forget_bias: float = 1.0,
    vocab_size: int | None = None,
    min_frequency: int = 1,
    lowercase: bool = False,
    digits_to_zero: bool = False,
):
    """The BiLSTM-CRF tagger (:class:`RNNTaggerForTokenClassification`): Lample et al. (2016) by default —
    100-d word embeddings, a 25 + 25 character BiLSTM, a 100 + 100 word BiLSTM, dropout 0.5, a CRF
    constrained to the data's tag scheme (``constrained``). ``head: softmax`` swaps the CRF for a per-word
    softmax; ``char_encoder: cnn`` gives Ma & Hovy's (2016) character CNN. ``dropout`` applies to the
    encoder's input and to each layer's output; ``classifier_dropout`` is any extra dropout in front of the
    emission layer (default none: the top layer's output has already had ``dropout``).

    ``word_vectors``: a text file of pretrained vectors (GloVe's ``word v1 .. vd`` lines, or word2vec's text
    format with its ``count dim`` header; ``.gz`` is fine) whose dimension must equal ``embedding_size``;
    each vocabulary word takes the vector of itself, else of its lowercased form, else of that with digits
    mapped to 0 (Lample et al.'s lookup). The vocabulary is the training words (``min_frequency``,
    ``vocab_size``); the tokenizer is word-level with no special tokens, one id per word.

    ``singleton_unk``: the probability that a training word seen only once (after ``lowercase`` and
    ``digits_to_zero``) is replaced by ``[UNK]`` in training (Lample et al.: 0.5); other words use
    ``word_dropout``.
    """
    from harness.models.rnn_tagger.modeling_rnn_tagger import RNNTaggerConfig, RNNTaggerForTokenClassification

    tokenizer = build_word_tokenizer(
        task.texts(), vocab_size=vocab_size, min_frequency=min_frequency, lowercase=lowercase,
        model_max_length=1_000_000, special_tokens_template=False, digits_to_zero=digits_to_zero,
    )
    labels = head_config(task.info, per_token=True)
    scheme = task.info.extra.get("scheme") if constrained and head == "crf" else None
    chars = None
    if char_encoder != "none":
        counts: dict[str, int] = {}
        for text in task.texts():
            for c in text:
                if c != " ":
                    counts[c] = counts.get(c, 0) + 1
        chars = sorted(counts, key=lambda c: (-counts[c], c))
    config = RNNTaggerConfig(
        vocab_size=len(tokenizer),
        embedding_size=embedding_size,
        hidden_size=hidden_size,
        num_layers=num_layers,
        cell=cell,
        bidirectional=True,
        dropout=dropout,
        classifier_dropout=classifier_dropout,
        residual=residual,
        layer_norm=layer_norm,
        init_range=init_range,
        forget_bias=forget_bias,
        pad_token_id=tokenizer.pad_token_id,
        unk_token_id=tokenizer.unk_token_id,
        char_vocab=chars,
        char_encoder=char_encoder,
        char_embedding_size=char_embedding_size,
        char_hidden_size=char_hidden_size,
        char_kernel_size=char_kernel_size,
        max_word_length=max_word_length,
        head=head,
        tag_scheme=scheme,
        word_dropout=word_dropout,
        singleton_unk=singleton_unk,
        **labels,
    )
    model = RNNTaggerForTokenClassification(config)
    if singleton_unk > 0:
        model.set_singleton_words(singleton_ids(tokenizer, task.texts()))
    if word_vectors:
        found = load_word_vectors(model.get_input_embeddings(), tokenizer.get_vocab(), word_vectors)
        print(f"word vectors: {found:,} of {len(tokenizer):,} vocabulary words found in {word_vectors}")
    return model, tokenizer


def singleton_ids(tokenizer, texts) -> list[int]:
    """The ids of the vocabulary words that occur exactly once in ``texts`` (as the tokenizer normalises
    them); special tokens and unknown words never count."""
    counts = Counter()
    for encoding in tokenizer.backend_tokenizer.encode_batch(list(texts), add_special_tokens=False):
        counts.update(encoding.ids)
    specials = set(tokenizer.all_special_ids)
    return sorted(i for i, n in counts.items() if n == 1 and i not in specials)


def load_word_vectors(embedding, vocab: dict[str, int], path: str) -> int:
    """Copy pretrained vectors from a text file into ``embedding`` rows; return how many rows were set.

    Errors name ``file:line`` (a row with the wrong number of values or a non-number). Rows of words the
    file lacks keep their random initialisation.
    """
    import gzip
    import re
    from pathlib import Path

    import torch

    from harness.errors import DataError

    file = Path(path).expanduser()
    if not file.is_file():
        raise DataError(f"model.word_vectors: file not found: {file}")
    dim = embedding.embedding_dim
    zero = re.compile(r"\d")
    candidates: dict[str, list[str]] = {}
    for word in vocab:
        for key in dict.fromkeys((word, word.lower(), zero.sub("0", word.lower()))):
            candidates.setdefault(key, [])
    vectors: dict[str, list[float]] = {}
    opener = gzip.open if file.suffix == ".gz" else open
    with opener(file, "rt", encoding="utf-8", errors="strict") as f:
        for n, line in enumerate(f, 1):
            parts = line.rstrip("\n\r").rstrip(" ").split(" ")
            if n == 1 and len(parts) == 2 and all(p.isdigit() for p in parts):
                if int(parts[1]) != dim:
                    raise DataError(f"{file}:1: vectors have dimension {parts[1]} but model.embedding_size is {dim}")
                continue  # word2vec text header: "count dim"
            if len(parts) == 1 and not parts[0]:
                continue
            if len(parts) < dim + 1:
                raise DataError(f"{file}:{n}: expected a word and {dim} values (model.embedding_size), got {len(parts) - 1} values")
            if len(parts) > dim + 1:  # a few GloVe entries hold spaces: the last dim fields are the values
                parts = [" ".join(parts[: len(parts) - dim])] + parts[len(parts) - dim :]
            if parts[0] in candidates and parts[0] not in vectors:
                try:
                    vectors[parts[0]] = [float(v) for v in parts[1:]]
                except ValueError:
                    raise DataError(f"{file}:{n}: a value of {parts[0]!r} is not a number") from None
    found = 0
    with torch.no_grad():
        for word, idx in vocab.items():
            for key in (word, word.lower(), zero.sub("0", word.lower())):
                if key in vectors:
                    embedding.weight[idx] = torch.tensor(vectors[key], dtype=embedding.weight.dtype)
                    found += 1
                    break
    return found


__all__ = ["sequence_tagger", "singleton_ids", "load_word_vectors"]
