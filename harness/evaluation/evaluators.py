"""Evaluators: how each task family is scored. A task names its evaluator (``Task.evaluator``); the registry
builds it (section ``evaluator``) with the task, the tokenizer and the run's generation settings.

``evaluate(model, dataloader, split, accelerator) -> (metrics, predictions)``: metrics are empty for a split
without gold labels (a benchmark's test set), whose predictions are still returned for the prediction file.
``greater_is_better(metric)`` gives the direction of a metric for best-checkpoint selection.

=================  ===================================================================================
``classification`` logits → the task's predictions → its metric module (GLUE, classification, regression)
``tagging``        word-level tags (a CRF decodes itself; ``decoding: constrained`` decodes the scores
                   under the scheme's rules) → seqeval
``perplexity``     exp(mean token NLL) of a causal LM's next tokens or a masked LM's masked ones; a stateful
                   model carries its state through the split
``generation``     ``model.generate`` with the recipe's ``generation:`` settings → strings → the task's
                   ``compute_metrics(texts, references, split)``
=================  ===================================================================================
"""

from __future__ import annotations

import functools

import numpy as np

from harness.evaluation.runner import generate_texts, perplexity, predict, predict_tags
from harness.generation import constrained_viterbi
from harness.registry import register

_RUNNER_ARGS = ("task", "tokenizer", "generation")


class Evaluator:
    #: metric names (or name fragments) for which lower is better
    lower_is_better: tuple[str, ...] = ("loss", "perplexity", "error")

    def __init__(self, task, tokenizer=None, generation=None):
        self.task = task
        self.tokenizer = tokenizer
        self.generation = generation
        #: the gold answers each split was last scored against (the report draws predictions against them)
        self.references: dict[str, object] = {}

    def evaluate(self, model, dataloader, split: str, accelerator) -> tuple[dict[str, float], object]:
        raise NotImplementedError

    def greater_is_better(self, metric: str) -> bool:
        name = metric.rsplit("/", 1)[-1]
        return not any(word in name for word in self.lower_is_better)


@register("evaluator", "classification", runner_args=_RUNNER_ARGS)
class ClassificationEvaluator(Evaluator):
    """Sequence classification and regression: gathered logits → ``task.predictions_from_logits`` →
    ``task.compute_metrics`` against the gathered labels, plus the mean loss."""

    def evaluate(self, model, dataloader, split, accelerator):
        logits, labels, loss = predict(model, dataloader, accelerator)
        predictions = self.task.predictions_from_logits(logits)
        metrics: dict[str, float] = {}
        if labels is not None and len(labels) and not np.all(labels == -1):
            self.references[split] = labels
            metrics = self.task.compute_metrics(predictions, labels, split)
            if loss is not None:
                metrics["loss"] = float(loss)
        return metrics, predictions


@register("evaluator", "tagging", runner_args=_RUNNER_ARGS)
class TaggingEvaluator(Evaluator):
    """Word-level tagging: per-position tags (or, for ``decoding: constrained``, log-probabilities decoded
    by :func:`~harness.generation.constrained_viterbi` over each sentence's words) → one tag per word →
    ``task.compute_metrics`` (seqeval) against the words' gold tags."""

    def evaluate(self, model, dataloader, split, accelerator):
        task = self.task
        rows, loss = predict_tags(model, dataloader, accelerator, scores=getattr(task, "wants_scores", False))
        labels = [task.id2label[i] for i in range(len(task.id2label))]
        decode = functools.partial(constrained_viterbi, labels=labels, scheme=task.info.extra["scheme"])
        words = task.word_predictions(split, rows, decode=decode)
        metrics = task.compute_metrics(words, None, split) if task.has_gold(split) else {}
        if metrics and loss is not None:
            metrics["loss"] = float(loss)
        return metrics, words


@register("evaluator", "perplexity", runner_args=_RUNNER_ARGS)
class PerplexityEvaluator(Evaluator):
    """Language models: perplexity, mean loss and predicted-token count (no predictions)."""

    def evaluate(self, model, dataloader, split, accelerator):
        shifted = getattr(self.task, "labels_shifted", True)
        return perplexity(model, dataloader, accelerator, self.task.stateful, shifted), np.zeros((0,))


@register("evaluator", "generation", runner_args=_RUNNER_ARGS)
class GenerationEvaluator(Evaluator):
    """Generative tasks: ``model.generate`` on each example's input (the task's eval collator makes the
    batches — left-padded prompts for a decoder-only model), decoded strings, and the task's
    ``compute_metrics(texts, task.references(split), split)`` where the split has references."""

    def evaluate(self, model, dataloader, split, accelerator):
        if self.generation is None or self.tokenizer is None:
            raise ValueError("the generation evaluator needs the run's tokenizer and generation settings")
        texts = generate_texts(model, dataloader, accelerator, self.tokenizer, self.generation)
        references = self.task.references(split)
        metrics = self.task.compute_metrics(texts, references, split) if references is not None else {}
        return metrics, texts
