"""What a loss is to the training step: ``loss(model, batch, **model_kwargs) -> (loss, outputs)``.

A loss runs the forward pass itself, so it decides what the model sees: a classification loss takes the
labels out of the batch and scores the logits; a triplet loss (three texts per row) embeds anchor, positive
and negative with the same model. ``model_kwargs`` are what the step adds to the forward (truncated BPTT
passes the carried ``past_key_values``); ``outputs`` go back to the step.

A loss is an ``nn.Module`` without trainable parameters (the optimizer and the checkpoint hold the model's
only); the registry builds it from the recipe's ``loss:`` section.
"""

from __future__ import annotations

from typing import Any

import torch

from harness.errors import HarnessError


class Loss(torch.nn.Module):
    def forward(self, model, batch: dict, **model_kwargs) -> tuple[torch.Tensor, Any]:
        raise NotImplementedError

    def check(self) -> None:
        """Refuse trainable parameters: nothing would train or save them."""
        if any(p.requires_grad for p in self.parameters()):
            raise HarnessError(f"loss {type(self).__name__} has trainable parameters; a loss here may not "
                               "(put them in the model)")
