"""Gradual unfreezing (Howard & Ruder 2018, ULMFiT §3.3) as a callback: ``callbacks: [{component:
gradual_unfreezing, every_epochs: 1}]`` or ``every_steps: N``.

Training starts with only the head trainable (the classifier and everything else outside the numbered
blocks and the embeddings: a pooler); every ``every_epochs`` epochs (or ``every_steps`` optimizer steps) one
more block becomes trainable, from the top down, and the embeddings come last. Where each parameter sits is
read from its name (:mod:`harness.training.layerwise`), so any BERT-family checkpoint works.

The optimizer is built before training starts, while every parameter is still trainable, so it holds them
all from the first step: a frozen parameter has ``requires_grad`` off and no gradient, which AdamW skips
(no update, no weight decay, no moment state). Unfreezing turns ``requires_grad`` back on — nothing is
re-created, so the state of blocks unfrozen earlier is kept, and the stage follows from the step and epoch
counters alone, so a resumed run freezes exactly what the interrupted one had frozen at that step. Only the
parameters trainable when training begins are managed (a PEFT recipe's frozen base stays frozen).
transformers' Trainer has no such callback; this one is written here. Tested in one process only: under DDP
on several processes, weights that are registered but frozen for a while would need DDP's
``find_unused_parameters``, which the runner does not set.
"""

from __future__ import annotations

from harness.errors import HarnessError
from harness.registry import register
from harness.training.callbacks import Callback


@register("callback", "gradual_unfreezing")
class GradualUnfreezing(Callback):
    def __init__(self, every_epochs: int | None = None, every_steps: int | None = None):
        if every_epochs is not None and every_steps is not None:
            raise HarnessError("callbacks.gradual_unfreezing: give every_epochs or every_steps, not both")
        if every_steps is None and every_epochs is None:
            every_epochs = 1
        for key, value in (("every_epochs", every_epochs), ("every_steps", every_steps)):
            if value is not None and (not isinstance(value, int) or value < 1):
                raise HarnessError(f"callbacks.gradual_unfreezing.{key}: expected an integer ≥ 1, got {value!r}")
        self.every_epochs, self.every_steps = every_epochs, every_steps
        self.stage: int | None = None  # 0: head only; k: head + top k blocks; blocks + 1: everything
        self._units: dict[str, object] | None = None  # managed parameter name -> its unit
        self._blocks = 0

    def stage_at(self, global_step: int, epoch: int) -> int:
        return global_step // self.every_steps if self.every_steps else epoch // self.every_epochs

    def _model(self, loop):
        return loop.accelerator.unwrap_model(loop.model)

    def on_train_begin(self, loop) -> None:
        from harness.training.layerwise import HEAD, num_blocks, unit_of

        model = self._model(loop)
        self._blocks = num_blocks(model)
        if not self._blocks:
            raise HarnessError(f"callbacks.gradual_unfreezing: {type(model).__name__} has no numbered blocks in its "
                               "parameter names (expected e.g. encoder.layer.N)")
        managed = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        inner = getattr(loop.optimizer, "optimizer", loop.optimizer)
        held = {id(p) for g in inner.param_groups for p in g["params"]}
        missing = [n for n, p in managed if id(p) not in held]
        if missing:
            raise HarnessError(f"callbacks.gradual_unfreezing: the optimizer does not hold {missing[0]} "
                               f"(and {len(missing) - 1} more); it must be built with every parameter to unfreeze")
        self._units = {n: unit_of(n) for n, _ in managed}
        if not any(u == HEAD for u in self._units.values()):
            raise HarnessError("callbacks.gradual_unfreezing: no trainable head outside the blocks and embeddings")
        self.stage = None
        self._apply(loop)

    def on_step_begin(self, loop) -> None:
        self._apply(loop)

    def trainable_units(self, stage: int) -> set:
        """The head, the top ``stage`` blocks, and the embeddings once every block is unfrozen."""
        from harness.training.layerwise import EMBEDDINGS, HEAD

        units: set = {HEAD} | {i for i in range(self._blocks) if i >= self._blocks - stage}
        if stage > self._blocks:
            units.add(EMBEDDINGS)
        return units

    def _apply(self, loop) -> None:
        stage = min(self.stage_at(loop.state.global_step, loop.state.epoch), self._blocks + 1)
        if stage == self.stage:
            return
        units = self.trainable_units(stage)
        for name, p in self._model(loop).named_parameters():
            if name in self._units:
                p.requires_grad_(self._units[name] in units)
        self.stage = stage
        top = self._blocks - stage
        what = ("the head only" if stage == 0 else "everything" if stage > self._blocks
                else f"the head and blocks {top}-{self._blocks - 1}")
        loop.accelerator.print(f"gradual unfreezing: from step {loop.state.global_step}, training {what}")

    def state_dict(self) -> dict:
        return {"stage": self.stage}

    def load_state_dict(self, state: dict) -> None:
        pass  # the stage follows from the restored step and epoch (on_train_begin recomputes it)
