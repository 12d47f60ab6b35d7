"""Recipe builders (``model.component``) for the recurrent family.

Each builder makes a word-level tokenizer from the task's training text (:func:`build_word_tokenizer`:
``[PAD] [UNK] [CLS] [SEP] [MASK]`` first, then the words seen at least ``min_frequency`` times), sizes an
:class:`RNNConfig` from it and returns ``(model, tokenizer)`` with fresh weights. The run saves the
tokenizer beside the model; both load back with ``AutoTokenizer`` / ``AutoModelFor*`` once
``harness.models.rnn`` is imported.

Recipe use (the registered names: ``rnn_lm``, ``rnn_classifier``, ``rnn_tagger``)::

    model:
      component: rnn_classifier
      cell: lstm
      bidirectional: true
"""

from __future__ import annotations

from typing import Literal

from harness.data.base import Task, head_config
from harness.data.tokenizers import build_word_tokenizer
from harness.registry import register

Cell = Literal["rnn_tanh", "rnn_relu", "gru", "lstm"]
Pooling = Literal["last", "mean", "max"]


def _tokenizer(task: Task, vocab_size: int | None, min_frequency: int, lowercase: bool, model_max_length: int):
    return build_word_tokenizer(
        task.texts(), vocab_size=vocab_size, min_frequency=min_frequency, lowercase=lowercase,
        model_max_length=model_max_length,
    )


@register("model", "rnn_lm", runner_args=("task",))
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
    from harness.models.rnn.modeling_rnn import RNNConfig, RNNForCausalLM

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


@register("model", "rnn_classifier", runner_args=("task",))
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
    from harness.models.rnn.modeling_rnn import RNNConfig, RNNForSequenceClassification

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
        **head_config(task.info),
    )
    return RNNForSequenceClassification(config), tokenizer


@register("model", "rnn_tagger", runner_args=("task",))
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
    from harness.models.rnn.modeling_rnn import RNNConfig, RNNForTokenClassification

    tokenizer = _tokenizer(task, vocab_size, min_frequency, lowercase, model_max_length)
    labels = head_config(task.info, per_token=True)
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


__all__ = ["rnn_causal_lm", "rnn_classifier", "rnn_tagger"]
