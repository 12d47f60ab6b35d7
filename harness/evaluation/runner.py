"""Evaluate a model on one split across processes: gather logits, let the task score them."""

from __future__ import annotations

import numpy as np
import torch

from harness.data.base import Task


@torch.no_grad()
def predict(model, dataloader, accelerator) -> tuple[np.ndarray, np.ndarray | None, float | None]:
    """Logits and labels for every example of the split (each exactly once across processes),
    and the mean loss when labels are present."""
    was_training = model.training
    model.eval()
    all_logits, all_labels, losses, counts = [], [], [], []
    for batch in dataloader:
        outputs = model(**batch)
        logits = outputs.logits
        labels = batch.get("labels")
        _gather_loss(outputs, labels, accelerator, losses, counts)
        if labels is not None:
            logits, labels = accelerator.gather_for_metrics((logits, labels))
            all_labels.append(labels.float().cpu().numpy() if labels.is_floating_point() else labels.cpu().numpy())
        else:
            logits = accelerator.gather_for_metrics(logits)
        all_logits.append(logits.float().cpu().numpy())
    if was_training:
        model.train()
    logits = np.concatenate(all_logits) if all_logits else np.zeros((0,))
    labels = np.concatenate(all_labels) if all_labels else None
    mean_loss = sum(losses) / sum(counts) if counts and sum(counts) else None
    return logits, labels, mean_loss


def _gather_loss(outputs, labels, accelerator, losses: list, counts: list) -> None:
    """Append this batch's loss x batch size and batch size, summed over processes (each example once)."""
    if labels is not None and getattr(outputs, "loss", None) is not None:
        n = torch.tensor(labels.shape[0], device=outputs.logits.device)
        loss, n = accelerator.gather_for_metrics((outputs.loss.detach().float().reshape(1) * n, n.reshape(1)))
        losses.append(loss.sum().item())
        counts.append(n.sum().item())


@torch.no_grad()
def predict_tags(model, dataloader, accelerator, scores: bool = False) -> tuple[list[np.ndarray], float | None]:
    """Predicted tag ids at the real (unpadded) positions of every row, in order, and the mean loss.

    A model with a ``decode_tags(logits, attention_mask)`` method (a CRF tagger: Viterbi) decodes its own
    logits (unless, with ``scores``, its ``structured_decoding`` is False: a softmax head); any other token
    classifier is read by argmax, or, with ``scores``, returned as per-position
    log-probabilities ``(positions, tags)`` for the task to decode. Rows of different lengths are padded
    (-100, or NaN for scores) across processes before the gather, and the padding is dropped again here.
    """
    was_training = model.training
    model.eval()
    unwrapped = accelerator.unwrap_model(model)
    decode = getattr(unwrapped, "decode_tags", None)
    if scores and not getattr(unwrapped, "structured_decoding", True):
        decode = None  # its own decoder is a per-word argmax: the task decodes the scores instead
    rows: list[np.ndarray] = []
    losses, counts = [], []
    with_scores = scores and decode is None
    pad = float("nan") if with_scores else -100
    for batch in dataloader:
        outputs = model(**batch)
        mask = batch.get("attention_mask")
        if decode is not None:
            out = decode(outputs.logits, mask)
        else:
            out = outputs.logits.float().log_softmax(-1) if with_scores else outputs.logits.argmax(-1)
            if mask is not None:
                padding = (mask == 0).unsqueeze(-1) if with_scores else mask == 0
                out = out.masked_fill(padding, pad)
        _gather_loss(outputs, batch.get("labels"), accelerator, losses, counts)
        out = accelerator.gather_for_metrics(accelerator.pad_across_processes(out.contiguous(), dim=1, pad_index=pad))
        for row in out.cpu().numpy():
            rows.append(row[~np.isnan(row[:, 0])] if with_scores else row[row != -100])
    if was_training:
        model.train()
    mean_loss = sum(losses) / sum(counts) if counts and sum(counts) else None
    return rows, mean_loss


@torch.no_grad()
def perplexity(model, dataloader, accelerator, stateful: bool) -> dict[str, float]:
    """Token-level perplexity over a split: exp(total NLL / predicted tokens), summed over every
    process. A stateful model carries its recurrent state from batch to batch, as in training."""
    was_training = model.training
    model.eval()
    nll = torch.zeros((), dtype=torch.float64, device=accelerator.device)
    count = torch.zeros((), dtype=torch.float64, device=accelerator.device)
    state = None
    for batch in dataloader:
        outputs = model(**batch, past_key_values=state) if stateful else model(**batch)
        if stateful:
            state = outputs.past_key_values
        if "shift_labels" in batch:
            n = (batch["shift_labels"] != -100).sum()
        else:
            n = (batch["labels"][:, 1:] != -100).sum()
        nll += outputs.loss.double() * n
        count += n
    if was_training:
        model.train()
    nll, count = accelerator.reduce(nll, reduction="sum"), accelerator.reduce(count, reduction="sum")
    mean = (nll / count).item()
    return {"perplexity": float(np.exp(mean)), "loss": mean, "tokens": int(count.item())}


def evaluate_split(model, dataloader, task: Task, accelerator, split: str) -> tuple[dict[str, float], np.ndarray]:
    """``({metric: value, "loss": ...}, predictions)`` for a labelled split; metrics are empty for
    an unlabelled one (a benchmark's test set), whose predictions are still returned. Language
    models report perplexity and no predictions; taggers return one list of word tags per sentence."""
    if task.info.problem_type == "language_modeling":
        return perplexity(model, dataloader, accelerator, task.stateful), np.zeros((0,))
    if task.info.problem_type == "token_classification":  # word-level tags, scored against the words' gold tags
        rows, loss = predict_tags(model, dataloader, accelerator, scores=getattr(task, "wants_scores", False))
        words = task.word_predictions(split, rows)
        metrics = task.compute_metrics(words, None, split) if task.has_gold(split) else {}
        if metrics and loss is not None:
            metrics["loss"] = float(loss)
        return metrics, words
    logits, labels, loss = predict(model, dataloader, accelerator)
    predictions = task.predictions_from_logits(logits)
    metrics: dict[str, float] = {}
    if labels is not None and len(labels) and not np.all(labels == -1):
        metrics = task.compute_metrics(predictions, labels, split)
        if loss is not None:
            metrics["loss"] = float(loss)
    return metrics, predictions
