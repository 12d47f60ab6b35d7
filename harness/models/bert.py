"""BERT-architecture classifiers initialised from a fresh config (random weights), with a word-level
tokenizer built from the task's training text: the tiny recipes' model (tests, CI) and a no-pretraining
baseline. Pretrained checkpoints are :mod:`harness.models.pretrained`'s."""

from __future__ import annotations

from harness.data.base import Task
from harness.data.tokenizers import build_word_tokenizer
from harness.registry import register


@register("model", "bert_from_scratch", runner_args=("task",))
def bert_classifier(
    task: Task,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 2,
    intermediate_size: int | None = None,
    dropout: float = 0.1,
    max_position_embeddings: int = 512,
    min_frequency: int = 1,
    lowercase: bool = False,
):
    """``BertForSequenceClassification`` from a fresh ``BertConfig`` (random init)."""
    from transformers import BertConfig, BertForSequenceClassification

    tokenizer = build_word_tokenizer(
        task.texts(), min_frequency=min_frequency, lowercase=lowercase, model_max_length=max_position_embeddings
    )
    info = task.info
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        intermediate_size=intermediate_size or 4 * hidden_size,
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
        max_position_embeddings=max_position_embeddings,
        pad_token_id=tokenizer.pad_token_id,
        num_labels=info.num_labels,
        problem_type=info.problem_type,
        id2label=info.id2label or {0: "LABEL_0"},
        label2id={v: k for k, v in (info.id2label or {0: "LABEL_0"}).items()},
    )
    return BertForSequenceClassification(config), tokenizer
