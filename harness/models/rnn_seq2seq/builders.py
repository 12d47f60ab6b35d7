"""The recipe builder ``rnn_seq2seq``: a recurrent encoder-decoder for a seq2seq task (translation, text-to-text).

Recipe::

    model:
      component: rnn_seq2seq
      cell: gru
      attention: bahdanau      # none | bahdanau (pre-attention) | luong (post-attention)
      luong_score: general     # dot | general | concat (luong only)
      deep_output: false       # luong only: the output layer also reads the previous token's embedding
      scale_scores: true       # luong dot / general only: scores / √d (unscaled, Adam saturates the attention)
      professor_forcing: false # true: a free-running pass and a discriminator (Lamb et al. 2016)
      tokenizer: bpe
"""

from __future__ import annotations

from typing import Literal

from harness.data.base import Task
from harness.errors import HarnessError
from harness.models.transformer.builders import train_tokenizer
from harness.registry import register


@register("model", "rnn_seq2seq", runner_args=("task",))
def rnn_seq2seq(
    task: Task,
    cell: Literal["gru", "lstm"] = "gru",
    embedding_size: int = 256,
    hidden_size: int = 512,
    encoder_layers: int = 1,
    decoder_layers: int = 1,
    bidirectional: bool = True,
    attention: Literal["none", "bahdanau", "luong"] = "bahdanau",
    luong_score: Literal["dot", "general", "concat"] = "general",
    input_feeding: bool = True,
    deep_output: bool = False,
    scale_scores: bool = True,
    attention_size: int | None = None,
    dropout: float = 0.3,
    tie_word_embeddings: bool = False,
    init_range: float | None = None,
    professor_forcing: bool = False,
    professor_forcing_weight: float = 1.0,
    discriminator_hidden_size: int | None = None,
    tokenizer: Literal["word", "bpe", "unigram"] = "bpe",
    vocab_size: int | None = None,
    min_frequency: int | None = None,
    lowercase: bool = False,
):
    """``RNNSeq2SeqForConditionalGeneration`` with fresh weights and a joint tokenizer trained on the task's sources
    and targets (``[CLS]`` starts the decoder, ``[SEP]`` ends a target)."""
    if task.auto_model_class != "AutoModelForSeq2SeqLM":
        raise HarnessError(f"model.component: rnn_seq2seq is an encoder-decoder; task {task.info.name!r} needs "
                           f"{task.auto_model_class}")
    from harness.models.rnn_seq2seq.modeling_rnn_seq2seq import RNNSeq2SeqConfig, RNNSeq2SeqForConditionalGeneration

    tok = train_tokenizer(task, tokenizer, vocab_size, min_frequency, lowercase, model_max_length=100_000)
    config = RNNSeq2SeqConfig(
        vocab_size=len(tok), embedding_size=embedding_size, hidden_size=hidden_size, encoder_layers=encoder_layers,
        decoder_layers=decoder_layers, cell=cell, bidirectional=bidirectional, attention=attention,
        luong_score=luong_score, input_feeding=input_feeding, deep_output=deep_output, scale_scores=scale_scores,
        attention_size=attention_size, dropout=dropout,
        tie_word_embeddings=tie_word_embeddings, init_range=init_range, professor_forcing=professor_forcing,
        professor_forcing_weight=professor_forcing_weight, discriminator_hidden_size=discriminator_hidden_size,
        pad_token_id=tok.pad_token_id,
        bos_token_id=tok.cls_token_id, eos_token_id=tok.sep_token_id, decoder_start_token_id=tok.cls_token_id)
    return RNNSeq2SeqForConditionalGeneration(config), tok


__all__ = ["rnn_seq2seq"]
