"""Callbacks: code that runs at the loop's events without editing the loop.

The events are ``transformers.TrainerCallback``'s names, so people who wrote one for the HF Trainer
find their way: ``on_train_begin``, ``on_epoch_begin``, ``on_step_begin`` (before an optimizer step's
first micro-batch), ``on_step_end`` (after the optimizer step), ``on_log`` (a training-loss row),
``on_evaluate`` (metrics, and whether the tracked metric improved), ``on_save`` (a checkpoint was
written), ``on_epoch_end``, ``on_train_end``. Each receives the :class:`~harness.training.loop.Trainer`
(``loop.model``, ``loop.optimizer``, ``loop.scheduler``, ``loop.state``, ``loop.accelerator``) and may call
``loop.request_stop(reason)``. A callback with state to keep across a resume returns it from
``state_dict`` (JSON-serialisable) and takes it back in ``load_state_dict``; the checkpoint stores it.
``summary()`` returns facts for the run's ``metrics.json`` (``train/...`` keys; they replace the runner's own).

A callback that turns parameters' ``requires_grad`` on or off during training declares it with the class
attribute ``changes_trainable_parameters = True``: the runner then builds the Accelerator with DDP's
``find_unused_parameters`` (:func:`harness.run.ddp_settings`), since the model is wrapped while every
parameter is trainable and DDP's reducer otherwise waits for gradients a frozen parameter never gets.

A recipe lists callbacks as component sections: ``callbacks: [{component: early_stopping, patience: 3}]``;
gradual unfreezing and scheduled sampling are written this way (they change which parameters train, or
what the model reads, between steps).
"""

from __future__ import annotations

from harness.errors import HarnessError
from harness.registry import register


class Callback:
    #: True: the callback freezes or unfreezes parameters between steps (the runner sets DDP up for it)
    changes_trainable_parameters: bool = False

    def on_train_begin(self, loop) -> None: ...
    def on_epoch_begin(self, loop) -> None: ...
    def on_step_begin(self, loop) -> None: ...
    def on_step_end(self, loop) -> None: ...
    def on_log(self, loop, row: dict) -> None: ...
    def on_evaluate(self, loop, metrics: dict[str, float], improved: bool) -> None: ...
    def on_save(self, loop, path) -> None: ...
    def on_epoch_end(self, loop) -> None: ...
    def on_train_end(self, loop) -> None: ...

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass

    def summary(self) -> dict:
        """Facts for ``metrics.json`` once training ends (``{"train/...": value}``); none by default."""
        return {}


class CallbackList:
    """Calls every callback in order; states are kept by position and class name."""

    def __init__(self, callbacks=()):
        self.callbacks = list(callbacks)

    def __iter__(self):
        return iter(self.callbacks)

    def call(self, event: str, loop, *args) -> None:
        for cb in self.callbacks:
            getattr(cb, event)(loop, *args)

    def state_dict(self) -> list[dict]:
        return [{"class": type(cb).__name__, "state": cb.state_dict()} for cb in self.callbacks]

    def summary(self) -> dict:
        out: dict = {}
        for cb in self.callbacks:
            out.update(cb.summary())
        return out

    def load_state_dict(self, states: list[dict]) -> None:
        if len(states) != len(self.callbacks) or any(
                s.get("class") != type(cb).__name__ for s, cb in zip(states, self.callbacks)):
            saved = ", ".join(s.get("class", "?") for s in states) or "none"
            now = ", ".join(type(cb).__name__ for cb in self.callbacks) or "none"
            raise HarnessError(f"training.resume: the checkpoint was written with callbacks [{saved}], "
                               f"this recipe has [{now}]")
        for s, cb in zip(states, self.callbacks):
            cb.load_state_dict(s.get("state", {}))


@register("callback", "early_stopping")
class EarlyStopping(Callback):
    """Stop when the tracked metric (``evaluation.metric_for_best``) has not improved for ``patience``
    evaluations in a row (``transformers.EarlyStoppingCallback``'s rule). ``training.early_stopping_patience``
    adds this callback."""

    def __init__(self, patience: int = 3):
        if patience < 1:
            raise ValueError(f"patience: expected an integer ≥ 1, got {patience}")
        self.patience = patience
        self.bad_evaluations = 0

    def on_evaluate(self, loop, metrics, improved) -> None:
        self.bad_evaluations = 0 if improved else self.bad_evaluations + 1
        if self.bad_evaluations >= self.patience:
            loop.request_stop(f"early stopping: {loop.best_key} did not improve for "
                              f"{self.bad_evaluations} evaluations", early=True)

    def state_dict(self) -> dict:
        return {"bad_evaluations": self.bad_evaluations}

    def load_state_dict(self, state: dict) -> None:
        self.bad_evaluations = int(state.get("bad_evaluations", 0))
