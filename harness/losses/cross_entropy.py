"""Cross-entropy on the model's logits, with label smoothing and class weights.

For logits ``z`` over ``C`` classes and a gold class ``y``, with smoothing ``ε`` (Szegedy et al. 2016):

    L = -(1 - ε) · log softmax(z)_y  -  ε / C · Σ_c log softmax(z)_c

averaged over the positions whose label is not ``ignore_index`` (-100: padding, special tokens, the
non-first sub-tokens of a word); with ``weight`` each position counts ``weight[y]`` (PyTorch's
weighted mean). Shapes: a sequence classifier's ``(batch, C)`` against ``(batch,)``; a tagger's or
language model's ``(batch, length, C)`` against ``(batch, length)``. A language model's labels are its
inputs: ``shift: true`` scores position ``t`` against label ``t + 1``; a batch that carries ``shift_labels``
(a streamed LM) is already aligned; an encoder-decoder's labels are aligned with its decoder positions (its
batches carry the shifted ``decoder_input_ids``: teacher forcing). A model output's ``auxiliary_loss`` (a training
term the model computes beside its logits: professor forcing's adversarial losses) is added.
(``torch.nn.functional.cross_entropy`` does the arithmetic; this file only takes the labels out of the forward and
lines them up.)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from harness.errors import HarnessError
from harness.losses.base import Loss
from harness.registry import register


@register("loss", "cross_entropy")
class CrossEntropyLoss(Loss):
    def __init__(self, label_smoothing: float = 0.0, weight: list[float] | None = None, ignore_index: int = -100,
                 shift: bool = False):
        super().__init__()
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing: expected a number in [0, 1), got {label_smoothing}")
        self.label_smoothing = label_smoothing
        self.ignore_index = ignore_index
        self.shift = shift
        self.register_buffer("weight", None if weight is None else torch.tensor(weight, dtype=torch.float32),
                             persistent=False)

    def forward(self, model, batch: dict, **model_kwargs):
        inputs = dict(batch)
        if "shift_labels" in inputs:
            labels, shift = inputs.pop("shift_labels"), False
        elif "labels" in inputs:
            labels, shift = inputs.pop("labels"), self.shift
        else:
            raise HarnessError(f"loss cross_entropy: the batch has no labels (keys: {', '.join(batch)})")
        if labels.is_floating_point():
            raise HarnessError("loss cross_entropy: the labels are floats (a regression task); leave the loss "
                               "section out to use the model's own (MSE) loss")
        outputs = model(**inputs, **model_kwargs)
        logits = outputs.logits
        if shift:
            # (B, L-1, C) against (B, L-1): position t predicts token t+1
            logits, labels = logits[:, :-1], labels[:, 1:]
        classes = logits.shape[-1]
        if self.weight is not None and self.weight.numel() != classes:
            raise HarnessError(f"loss.weight: {self.weight.numel()} class weights for {classes} classes")
        weight = None if self.weight is None else self.weight.to(logits.device)
        # (N, C) against (N,)
        loss = F.cross_entropy(logits.reshape(-1, classes).float(), labels.reshape(-1).to(logits.device),
                               weight=weight, ignore_index=self.ignore_index, label_smoothing=self.label_smoothing)
        auxiliary = getattr(outputs, "auxiliary_loss", None)
        if auxiliary is not None:  # a model's own extra training term (professor forcing), already weighted
            loss = loss + auxiliary
        return loss, outputs
