"""The recipe builder ``transformer``: a from-scratch Transformer with the head the task asks for.

The task's Auto class picks the architecture — one recipe shape for every objective:

================================  =========================================================================
task (``task.auto_model_class``)  model
================================  =========================================================================
``AutoModelForCausalLM``          decoder only, causal (GPT-like): ``TransformerForCausalLM`` (``lm_text``)
``AutoModelForMaskedLM``          encoder (BERT-like): ``TransformerForMaskedLM`` (``mlm_text``)
``AutoModelForSequenceClassification``  encoder + pooler + classifier (GLUE, text classification)
``AutoModelForTokenClassification``     encoder + per-token classifier (NER)
``AutoModelForSeq2SeqLM``         encoder-decoder (Vaswani et al.): ``TransformerForConditionalGeneration``
================================  =========================================================================

The tokenizer is trained on the task's training text with ``tokenizers``: ``word`` (whitespace words, the
word-level perplexities of PTB), ``bpe`` (byte-level BPE, GPT-2's) or ``unigram`` (SentencePiece's unigram
LM); it is saved with the model. ``[CLS]`` / ``[SEP]`` serve as BOS / EOS (and as the decoder's start token).

Recipe::

    model:
      component: transformer
      hidden_size: 256
      num_layers: 4
      num_heads: 4
      position_embedding: rotary    # learned | sinusoidal | rotary
      norm: pre                     # pre (GPT-2) | post (Vaswani, BERT)
      tokenizer: bpe
      vocab_size: 8000
"""

from __future__ import annotations

import inspect
from typing import Literal

from harness.data.base import Task, head_config
from harness.data.tokenizers import build_subword_tokenizer, build_word_tokenizer
from harness.errors import HarnessError
from harness.registry import register

_HEADS = {
    "AutoModelForCausalLM": "TransformerForCausalLM",
    "AutoModelForMaskedLM": "TransformerForMaskedLM",
    "AutoModelForSequenceClassification": "TransformerForSequenceClassification",
    "AutoModelForTokenClassification": "TransformerForTokenClassification",
    "AutoModelForSeq2SeqLM": "TransformerForConditionalGeneration",
}


def check_recipe(args: dict, training) -> list[str]:
    """Validation-time checks (``harness validate``): the width the heads must divide, an input longer than the
    learned position table."""
    defaults = {n: p.default for n, p in inspect.signature(transformer).parameters.items()}
    value = {n: args.get(n, defaults.get(n)) for n in defaults}
    errors = []
    hidden, heads = value["hidden_size"], value["num_heads"]
    if all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (hidden, heads)) and hidden % heads:
        errors.append(f"model.hidden_size: {hidden} is not divisible by model.num_heads ({heads}); each head is "
                      "hidden_size / num_heads wide")
    length, table = training.max_length, value["max_position_embeddings"]
    if value["position_embedding"] == "learned" and isinstance(length, int) and isinstance(table, int) and length > table:
        errors.append(f"training.max_length: {length} tokens are more than the {table} learned positions "
                      "(model.max_position_embeddings); raise that or use model.position_embedding: sinusoidal / rotary")
    return errors


def train_tokenizer(task: Task, kind: str, vocab_size: int | None, min_frequency: int | None, lowercase: bool,
                    model_max_length: int):
    """A tokenizer trained on the task's training text (``word`` / ``bpe`` / ``unigram``)."""
    if kind == "word":
        return build_word_tokenizer(task.texts(), vocab_size=vocab_size, min_frequency=min_frequency or 1,
                                    lowercase=lowercase, model_max_length=model_max_length)
    tokenizer = build_subword_tokenizer(task.texts(), kind, vocab_size=vocab_size or 8000,
                                        min_frequency=min_frequency or 2, lowercase=lowercase,
                                        model_max_length=model_max_length)
    return tokenizer


@register("model", "transformer", runner_args=("task",), check=check_recipe)
def transformer(
    task: Task,
    hidden_size: int = 256,
    num_layers: int = 4,
    num_decoder_layers: int | None = None,
    num_heads: int = 4,
    intermediate_size: int | None = None,
    activation: Literal["gelu", "gelu_new", "relu", "silu"] = "gelu",
    dropout: float = 0.1,
    attention_dropout: float | None = None,
    max_position_embeddings: int = 512,
    position_embedding: Literal["learned", "sinusoidal", "rotary"] = "learned",
    rope_theta: float = 10000.0,
    norm: Literal["pre", "post"] = "pre",
    scale_embeddings: bool = False,
    type_vocab_size: int | None = None,
    tie_word_embeddings: bool = True,
    bias: bool = True,
    initializer_range: float = 0.02,
    classifier_dropout: float | None = None,
    tokenizer: Literal["word", "bpe", "unigram"] = "word",
    vocab_size: int | None = None,
    min_frequency: int | None = None,
    lowercase: bool = False,
):
    """A Transformer with fresh weights for ``task`` (module docstring). ``num_layers``: blocks of the stack (of the
    encoder, for an encoder-decoder; ``num_decoder_layers`` for its decoder); ``dropout`` on embeddings and
    sub-layer outputs, ``attention_dropout`` on the attention weights (default: ``dropout``); ``type_vocab_size``:
    segment embeddings (default 2 for sentence-pair tasks, else none); ``vocab_size`` caps the trained vocabulary
    (word: the most frequent words; subword: the merges / pieces, default 8000)."""
    from harness.models.transformer import modeling_transformer as modeling
    from harness.models.transformer.configuration_transformer import TransformerConfig

    head = _HEADS.get(task.auto_model_class)
    if head is None:
        raise HarnessError(f"model.component: transformer has no head for task {task.info.name!r} "
                           f"({task.auto_model_class}); it builds: {', '.join(_HEADS)}")
    tok = train_tokenizer(task, tokenizer, vocab_size, min_frequency, lowercase, max_position_embeddings)
    if type_vocab_size is None:
        type_vocab_size = 2 if len(getattr(task.info, "text_columns", ())) == 2 and \
            head == "TransformerForSequenceClassification" else 0
    labels = {}
    if head in ("TransformerForSequenceClassification", "TransformerForTokenClassification"):
        labels = head_config(task.info, per_token=head == "TransformerForTokenClassification")
    config = TransformerConfig(
        vocab_size=len(tok),
        hidden_size=hidden_size,
        num_hidden_layers=num_layers,
        num_decoder_layers=num_decoder_layers,
        num_attention_heads=num_heads,
        intermediate_size=intermediate_size,
        hidden_act=activation,
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout if attention_dropout is None else attention_dropout,
        max_position_embeddings=max_position_embeddings,
        position_embedding_type=position_embedding,
        rope_theta=rope_theta,
        norm_position=norm,
        scale_embeddings=scale_embeddings,
        type_vocab_size=type_vocab_size,
        tie_word_embeddings=tie_word_embeddings,
        bias=bias,
        initializer_range=initializer_range,
        classifier_dropout=classifier_dropout,
        is_decoder=head == "TransformerForCausalLM",
        is_encoder_decoder=head == "TransformerForConditionalGeneration",
        pad_token_id=tok.pad_token_id,
        bos_token_id=tok.cls_token_id,
        eos_token_id=tok.sep_token_id,
        decoder_start_token_id=tok.cls_token_id if head == "TransformerForConditionalGeneration" else None,
        **labels,
    )
    model = getattr(modeling, head)(config)
    return model, tok


__all__ = ["transformer", "train_tokenizer", "check_recipe"]
