"""Running a model over a split across processes — logits, tag paths, perplexity, generated texts — and
:class:`Evaluation`, which scores every evaluation split of a run with the task's evaluator.

These are the primitives the evaluators (:mod:`harness.evaluation.evaluators`) are built from; each returns
every example exactly once however many processes share the split (``gather_for_metrics``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np
import torch

from harness.generation import TARGET_KEYS


@torch.inference_mode()  # no autograd records, no version counters (faster than no_grad)
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
            all_labels.append(_kept(labels.float() if labels.is_floating_point() else labels))
        else:
            logits = accelerator.gather_for_metrics(logits)
        all_logits.append(_kept(logits.float()))
    if was_training:
        model.train()
    # one copy to the host per split (rows of a few numbers stayed on the device: no sync per batch)
    logits = torch.cat(all_logits).cpu().numpy() if all_logits else np.zeros((0,))
    labels = torch.cat(all_labels).cpu().numpy() if all_labels else None
    return logits, labels, _mean_loss(losses, counts)


def _kept(t: torch.Tensor) -> torch.Tensor:
    """A batch's gathered output, left where it is when it is a row per example (classes, a score: small), else
    copied to the host now (per-token outputs of a whole split need not fit on the device)."""
    return t if t.dim() <= 2 else t.cpu()


def _gather_loss(outputs, labels, accelerator, losses: list, counts: list) -> None:
    """Append this batch's loss x batch size and batch size, summed over processes (each example once), as
    device tensors: read once per split by :func:`_mean_loss`, not once per batch."""
    if labels is not None and getattr(outputs, "loss", None) is not None:
        device = outputs.logits.device
        n = torch.tensor(labels.shape[0], device=device)
        wide = torch.float32 if device.type == "mps" else torch.float64  # (MPS has no float64)
        loss, n = accelerator.gather_for_metrics((outputs.loss.detach().to(wide).reshape(1) * n, n.reshape(1)))
        losses.append(loss.sum())
        counts.append(n.sum())


def _mean_loss(losses: list, counts: list) -> float | None:
    """The split's mean loss from :func:`_gather_loss`'s sums (one host sync)."""
    if not counts:
        return None
    total, count = torch.stack(losses).sum().item(), torch.stack(counts).sum().item()
    return total / count if count else None


@torch.inference_mode()  # no autograd records, no version counters (faster than no_grad)
def predict_tags(model, dataloader, accelerator, scores: bool = False) -> tuple[list[np.ndarray], float | None]:
    """Predicted tag ids at the real (unpadded) positions of every row, in order, and the mean loss.

    A model with a ``decode_tags(logits, attention_mask)`` method (a CRF tagger: Viterbi) decodes its own
    logits (unless, with ``scores``, its ``structured_decoding`` is False: a softmax head); any other token
    classifier is read by argmax, or, with ``scores``, returned as per-position
    log-probabilities ``(positions, tags)`` for the caller to decode. Rows of different lengths are padded
    (-100, or NaN for scores) across processes before the gather, and the padding is dropped again here.
    """
    was_training = model.training
    model.eval()
    unwrapped = accelerator.unwrap_model(model)
    decode = getattr(unwrapped, "decode_tags", None)
    if scores and not getattr(unwrapped, "structured_decoding", True):
        decode = None  # its own decoder is a per-word argmax: the caller decodes the scores instead
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
    return rows, _mean_loss(losses, counts)


@torch.inference_mode()  # no autograd records, no version counters (faster than no_grad)
def perplexity(model, dataloader, accelerator, stateful: bool, shifted: bool = True) -> dict[str, float]:
    """Token-level perplexity over a split: exp(total NLL / predicted tokens), summed over every
    process. A stateful model carries its recurrent state from batch to batch, as in training. ``shifted``:
    a causal LM's ``labels`` are its inputs (position t scores label t + 1); a masked LM's (``shifted=False``)
    sit at the positions they score."""
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
            n = (batch["labels"][:, 1:] != -100).sum() if shifted else (batch["labels"] != -100).sum()
        nll += outputs.loss.double() * n
        count += n
    if was_training:
        model.train()
    nll, count = accelerator.reduce(nll, reduction="sum"), accelerator.reduce(count, reduction="sum")
    mean = (nll / count).item()
    return {"perplexity": float(np.exp(mean)), "loss": mean, "tokens": int(count.item())}




@torch.inference_mode()  # no autograd records, no version counters (faster than no_grad)
def generate_texts(model, dataloader, accelerator, tokenizer, settings) -> list:
    """``model.generate`` over every batch with the run's :class:`~harness.generation.GenerationSettings`,
    decoded to strings (special tokens dropped; a decoder-only model's prompt cut off). One string per
    example, or a list of ``num_return_sequences`` strings (with ``generation.mbr``: MBR's choice among them, one
    string); each example once across processes."""
    unwrapped = accelerator.unwrap_model(model)
    was_training = unwrapped.training
    unwrapped.eval()
    per_example = int(getattr(settings.config, "num_return_sequences", None) or 1)
    texts: list = []
    for batch in dataloader:
        inputs = {k: v for k, v in batch.items() if k not in TARGET_KEYS}
        ids = settings.generate(unwrapped, **inputs)
        if not getattr(unwrapped.config, "is_encoder_decoder", False):
            ids = ids[:, inputs["input_ids"].shape[1]:]
        decoded = tokenizer.batch_decode(ids, skip_special_tokens=True)
        if per_example > 1:
            decoded = [decoded[i:i + per_example] for i in range(0, len(decoded), per_example)]
            if settings.mbr is not None:  # MBR: the candidates' consensus, one text per example
                decoded = settings.select(decoded)
        texts.extend(accelerator.gather_for_metrics(decoded, use_gather_object=True))
    if was_training:
        unwrapped.train()
    return texts


class Evaluation:
    """Every evaluation split of a run, each with its prepared loader, scored by the task's evaluator.

    ``evaluation(model)`` returns ``{"<split>/<metric>": value}`` for the splits evaluated during training
    (``during``: the scored splits but the test ones, by default) — what the loop tracks; :meth:`final` scores
    every scored split once, on the chosen checkpoint, and writes ``predictions_<split>`` files for the
    prediction splits."""

    def __init__(self, evaluator, loaders: Mapping, scored: list[str], accelerator, during: list[str] | None = None):
        self.evaluator = evaluator
        self.loaders = dict(loaders)
        self.scored = list(scored)
        self.during = list(scored if during is None else during)
        self.accelerator = accelerator
        self.predictions: dict[str, object] = {}  # each split's predictions from the final evaluation

    def split(self, model, split: str):
        return self.evaluator.evaluate(model, self.loaders[split], split, self.accelerator)

    def __call__(self, model) -> dict[str, float]:
        results: dict[str, float] = {}
        for split in self.during:
            metrics, _ = self.split(model, split)
            results.update({f"{split}/{k}": v for k, v in metrics.items()})
        return results

    def final(self, model, predict_splits=(), out_dir: Path | None = None) -> dict[str, float]:
        """Metrics of the scored splits; prediction files for ``predict_splits`` into ``out_dir``."""
        metrics: dict[str, float] = {}
        for split in dict.fromkeys(self.scored + list(predict_splits)):
            split_metrics, predictions = self.split(model, split)
            self.predictions[split] = predictions
            if split in self.scored:
                metrics.update({f"{split}/{k}": v for k, v in split_metrics.items()})
            if split in predict_splits and out_dir is not None and self.accelerator.is_main_process:
                self.evaluator.task.write_predictions(Path(out_dir) / f"predictions_{split}.tsv", split, predictions)
        return metrics
