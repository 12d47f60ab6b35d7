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
transformers' Trainer has no such callback; this one is written here.

Several processes (DDP): the model is wrapped while every parameter is trainable, so the callback declares
``changes_trainable_parameters`` and the runner builds the Accelerator with DDP's ``find_unused_parameters``
(:func:`harness.run.ddp_settings`): frozen parameters get no gradient on any process and stay put, unfrozen
ones are all-reduced, and the processes' weights stay identical (tests/training/test_unfreezing_ddp.py, two
processes on gloo). A loop built by hand must pass ``DistributedDataParallelKwargs(find_unused_parameters=True)``
to its Accelerator itself.

What trained: the build-time count of trainable parameters (every managed one) is not what this strategy
trains, so each stage change is printed and written to the run's history (``{"step", "epoch", "unfreezing":
{"stage", "trainable_parameters", "trainable_share"}}``), the optimizer steps taken in each stage are counted
(kept across a resume), and :meth:`GradualUnfreezing.summary` puts into ``metrics.json``
``train/trainable_parameters`` (the parameters trained at some step: the last stage reached),
``train/trainable_parameters_first_step`` and ``train/trainable_parameters_mean`` (the mean over optimizer
steps of the count trainable in that step).
"""

from __future__ import annotations

from harness.errors import HarnessError
from harness.registry import register
from harness.training.callbacks import Callback


@register("callback", "gradual_unfreezing")
class GradualUnfreezing(Callback):
    changes_trainable_parameters = True

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
        self._counts: dict[int, int] = {}  # stage -> parameters trainable in it
        self._total = 0  # every parameter of the model, trainable or not
        self.steps_in_stage: dict[int, int] = {}  # stage -> optimizer steps taken in it (this run and before a resume)

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
        size = {n: p.numel() for n, p in managed}
        self._total = sum(p.numel() for p in model.parameters())
        self._counts = {}
        for stage in range(self._blocks + 2):
            units = self.trainable_units(stage)
            self._counts[stage] = sum(size[n] for n, u in self._units.items() if u in units)
        self.stage = None
        self._apply(loop)

    def on_step_begin(self, loop) -> None:
        self._apply(loop)
        self.steps_in_stage[self.stage] = self.steps_in_stage.get(self.stage, 0) + 1

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
        if stage in self.steps_in_stage:  # resumed inside a stage the history already records
            return
        top = self._blocks - stage
        what = ("the head only" if stage == 0 else "everything" if stage > self._blocks
                else f"the head and blocks {top}-{self._blocks - 1}")
        count, share = self._counts[stage], self._counts[stage] / self._total
        loop.accelerator.print(f"gradual unfreezing: from step {loop.state.global_step}, training {what} "
                               f"({count:,} parameters, {100 * share:.2f} %)")
        loop.record({"step": loop.state.global_step, "epoch": loop.state.epoch,
                     "unfreezing": {"stage": stage, "trainable_parameters": count, "trainable_share": round(share, 6)}})

    def summary(self) -> dict:
        """What trained (see the module docstring); nothing before the first step."""
        if not self.steps_in_stage or not self._counts:
            return {}
        steps = sum(self.steps_in_stage.values())
        mean = sum(n * self._counts[stage] for stage, n in self.steps_in_stage.items()) / steps
        return {"train/trainable_parameters": self._counts[max(self.steps_in_stage)],
                "train/trainable_parameters_first_step": self._counts[min(self.steps_in_stage)],
                "train/trainable_parameters_mean": round(mean, 1)}

    def state_dict(self) -> dict:
        return {"stage": self.stage, "steps_in_stage": {str(k): v for k, v in self.steps_in_stage.items()}}

    def load_state_dict(self, state: dict) -> None:
        # the stage follows from the restored step and epoch (on_train_begin recomputes it); the steps taken
        # in each stage so far carry on (a checkpoint written before they were kept: counted from the resume)
        self.steps_in_stage = {int(k): int(v) for k, v in (state.get("steps_in_stage") or {}).items()}
