"""Recipe builders (``model.component``) for the recurrent family.

Each builder makes a word-level tokenizer from the task's training text (:func:`build_word_tokenizer`:
``[PAD] [UNK] [CLS] [SEP] [MASK]`` first, then the words seen at least ``min_frequency`` times), sizes an
:class:`RNNConfig` from it and returns ``(model, tokenizer)`` with fresh weights. The run saves the
tokenizer beside the model; both load back with ``AutoTokenizer`` / ``AutoModelFor*`` once
``harness.models.rnn`` is imported.

Recipe use (dotted path, or a short name once registered in ``harness.config.components``)::

    model:
      component: harness.models.rnn.builders:rnn_classifier
      cell: lstm
      bidirectional: true
"""

from __future__ import annotations

from collections import Counter
from typing import Literal

from harness.data.base import Task
from harness.data.tokenizers import build_word_tokenizer
from harness.models.rnn.configuration_rnn import RNNConfig
from harness.models.rnn.modeling_rnn import RNNForCausalLM, RNNForSequenceClassification, RNNForTokenClassification
from harness.models.rnn.tagger import RNNTaggerConfig, RNNTaggerForTokenClassification

Cell = Literal["rnn_tanh", "rnn_relu", "gru", "lstm"]
Pooling = Literal["last", "mean", "max"]


def _tokenizer(task: Task, vocab_size: int | None, min_frequency: int, lowercase: bool, model_max_length: int):
    return build_word_tokenizer(
        task.texts(), vocab_size=vocab_size, min_frequency=min_frequency, lowercase=lowercase,
        model_max_length=model_max_length,
    )


def _labels(task: Task) -> dict:
    info = task.info
    id2label = info.id2label or {0: "LABEL_0"}
    return {
        "num_labels": info.num_labels,
        "problem_type": info.problem_type,
        "id2label": id2label,
        "label2id": {v: k for k, v in id2label.items()},
    }


def rnn_causal_lm(
    task: Task,
    cell: Cell = "lstm",
    embedding_size: int = 200,
    hidden_size: int = 200,
    num_layers: int = 2,
    dropout: float = 0.0,
    residual: bool = False,
    layer_norm: bool = False,
    tie_word_embeddings: bool = False,
    init_range: float = 0.1,
    forget_bias: float = 1.0,
    vocab_size: int | None = None,
    min_frequency: int = 1,
    lowercase: bool = False,
    model_max_length: int = 100_000,
):
    """``RNNForCausalLM`` (Zaremba et al.'s small PTB model by default: 2 x 200 LSTM, U(-0.1, 0.1)).

    ``[CLS]`` / ``[SEP]`` — which the tokenizer puts around every text — serve as BOS / EOS, so
    ``generate`` stops at ``[SEP]``. ``vocab_size`` caps the vocabulary (most frequent words kept).
    """
    tokenizer = _tokenizer(task, vocab_size, min_frequency, lowercase, model_max_length)
    config = RNNConfig(
        vocab_size=len(tokenizer),
        embedding_size=embedding_size,
        hidden_size=hidden_size,
        num_layers=num_layers,
        cell=cell,
        dropout=dropout,
        residual=residual,
        layer_norm=layer_norm,
        tie_word_embeddings=tie_word_embeddings,
        init_range=init_range,
        forget_bias=forget_bias,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.cls_token_id,
        eos_token_id=tokenizer.sep_token_id,
    )
    return RNNForCausalLM(config), tokenizer


def rnn_classifier(
    task: Task,
    cell: Cell = "lstm",
    embedding_size: int = 128,
    hidden_size: int = 128,
    num_layers: int = 1,
    bidirectional: bool = True,
    pooling: Pooling = "last",
    dropout: float = 0.1,
    classifier_dropout: float | None = None,
    residual: bool = False,
    layer_norm: bool = False,
    init_range: float = 0.1,
    forget_bias: float = 1.0,
    vocab_size: int | None = None,
    min_frequency: int = 1,
    lowercase: bool = False,
    model_max_length: int = 512,
):
    """``RNNForSequenceClassification`` sized for ``task.info`` (labels, regression or classification)."""
    tokenizer = _tokenizer(task, vocab_size, min_frequency, lowercase, model_max_length)
    config = RNNConfig(
        vocab_size=len(tokenizer),
        embedding_size=embedding_size,
        hidden_size=hidden_size,
        num_layers=num_layers,
        cell=cell,
        bidirectional=bidirectional,
        pooling=pooling,
        dropout=dropout,
        classifier_dropout=classifier_dropout,
        residual=residual,
        layer_norm=layer_norm,
        init_range=init_range,
        forget_bias=forget_bias,
        pad_token_id=tokenizer.pad_token_id,
        **_labels(task),
    )
    return RNNForSequenceClassification(config), tokenizer


def rnn_tagger(
    task: Task,
    cell: Cell = "lstm",
    embedding_size: int = 100,
    hidden_size: int = 100,
    num_layers: int = 1,
    bidirectional: bool = True,
    dropout: float = 0.5,
    classifier_dropout: float | None = None,
    residual: bool = False,
    layer_norm: bool = False,
    init_range: float = 0.1,
    forget_bias: float = 1.0,
    vocab_size: int | None = None,
    min_frequency: int = 1,
    lowercase: bool = False,
    model_max_length: int = 512,
):
    """``RNNForTokenClassification`` (a BiLSTM tagger by default) sized for ``task.info``'s tag set."""
    tokenizer = _tokenizer(task, vocab_size, min_frequency, lowercase, model_max_length)
    labels = _labels(task)
    labels["problem_type"] = None  # a per-token head: the sequence-level problem type does not apply
    config = RNNConfig(
        vocab_size=len(tokenizer),
        embedding_size=embedding_size,
        hidden_size=hidden_size,
        num_layers=num_layers,
        cell=cell,
        bidirectional=bidirectional,
        dropout=dropout,
        classifier_dropout=classifier_dropout,
        residual=residual,
        layer_norm=layer_norm,
        init_range=init_range,
        forget_bias=forget_bias,
        pad_token_id=tokenizer.pad_token_id,
        **labels,
    )
    return RNNForTokenClassification(config), tokenizer


Head = Literal["crf", "softmax"]
CharEncoderKind = Literal["lstm", "cnn", "none"]


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
    tokenizer = build_word_tokenizer(
        task.texts(), vocab_size=vocab_size, min_frequency=min_frequency, lowercase=lowercase,
        model_max_length=1_000_000, special_tokens_template=False, digits_to_zero=digits_to_zero,
    )
    labels = _labels(task)
    labels["problem_type"] = None
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


__all__ = ["rnn_causal_lm", "rnn_classifier", "rnn_tagger", "sequence_tagger", "load_word_vectors"]
