"""The training step: what one micro-batch does — forward → loss → backward — as a replaceable unit.

The loop around it owns accumulation, clipping, the optimizer and scheduler steps, logging, evaluation and
checkpoints; a step only turns a batch into gradients and returns its loss (detached, on the device: the
loop reads it at log steps, never per micro-batch). A task names its default step (``Task.default_step``);
a recipe's ``step:`` section replaces it. A step that carries something from batch to batch (truncated
BPTT's recurrent state) hands it to the checkpoint as tensors (``state_tensors``), so a resumed run
continues exactly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness.registry import register

if TYPE_CHECKING:  # the step itself never needs torch: the model, the loss and the accelerator do the work
    import torch


class Step:
    #: True for a step that needs batches which continue each other (a streamed task: ``Task.stateful``)
    needs_stateful_task = False

    def start_epoch(self) -> None:
        """Called before the first batch of every epoch (not when resuming mid-epoch)."""

    def __call__(self, model, batch: dict, loss, accelerator) -> torch.Tensor:
        raise NotImplementedError

    def state_tensors(self) -> dict[str, torch.Tensor]:
        """What this step carries between batches, for the checkpoint (empty: nothing)."""
        return {}

    def load_state_tensors(self, tensors: dict[str, torch.Tensor], model) -> None:
        """Restore :meth:`state_tensors` from a checkpoint (``model``: the unwrapped model)."""


@register("step", "standard")
class StandardStep(Step):
    """forward → loss → backward."""

    def __call__(self, model, batch, loss, accelerator):
        value, _ = loss(model, batch)
        accelerator.backward(value)
        return value.detach()


@register("step", "truncated_bptt")
class TruncatedBPTTStep(Step):
    """Truncated backpropagation through time (Williams & Peng 1990; Zaremba et al. 2014): each batch
    continues the previous one row for row, the model starts from the state the previous batch ended in,
    detached, so gradients flow back through this window only. The state resets at every epoch's start.

    The model takes ``past_key_values`` and returns the new state there (an object with ``detach()``);
    for checkpoints its class offers ``to_tensors()`` and the model's ``cache_class.from_tensors``."""

    needs_stateful_task = True

    def __init__(self):
        self.carried = None
        self._pending: dict[str, torch.Tensor] | None = None

    def start_epoch(self) -> None:
        self.carried = None
        self._pending = None

    def __call__(self, model, batch, loss, accelerator):
        if self._pending is not None:
            unwrapped = accelerator.unwrap_model(model)
            self.carried = unwrapped.cache_class.from_tensors(
                {k: v.to(accelerator.device) for k, v in self._pending.items()})
            self._pending = None
        value, outputs = loss(model, batch, past_key_values=self.carried)
        self.carried = outputs.past_key_values.detach()
        accelerator.backward(value)
        return value.detach()

    def state_tensors(self) -> dict[str, torch.Tensor]:
        if self._pending is not None:
            return dict(self._pending)
        return {} if self.carried is None else self.carried.to_tensors()

    def load_state_tensors(self, tensors, model) -> None:
        if tensors and not hasattr(getattr(model, "cache_class", None), "from_tensors"):
            raise TypeError(f"{type(model).__name__} has no cache_class with from_tensors to restore the carried state")
        self._pending = dict(tensors) or None
        self.carried = None
