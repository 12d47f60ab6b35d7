r"""Scheduled sampling (Bengio et al. 2015, "Scheduled Sampling for Sequence Prediction with Recurrent Neural
Networks") as a callback: the teacher-forcing ratio :math:`\epsilon_i` decays with the optimizer step :math:`i`, and a
decoder that supports it (``model.sampling_probability``: the recurrent encoder-decoder step by step, the Transformer
encoder-decoder with a first teacher-forced pass, Mihaylova & Martins 2019) feeds, at each target position, its own
previous prediction with probability :math:`1 - \epsilon_i` instead of the gold token.

Schedules (the paper's §2.4):

* ``linear``: :math:`\epsilon_i = \max(\epsilon_{min}, k - c\,i)`;
* ``exponential``: :math:`\epsilon_i = \max(\epsilon_{min}, k^i)`, :math:`k < 1`;
* ``inverse_sigmoid``: :math:`\epsilon_i = \max(\epsilon_{min}, k / (k + \exp(i / k)))`, :math:`k \ge 1`.

The ratio depends on the step only, so a resumed run continues the schedule exactly; at every log row the history
gets a ``{"step", "teacher_forcing_ratio"}`` row. Evaluation and ``generate`` are unaffected (a model in eval mode
never samples its inputs). Nothing in ``transformers`` provides this.

Recipe::

    callbacks:
      - component: scheduled_sampling
        schedule: inverse_sigmoid
        k: 200
"""

from __future__ import annotations

import math
from typing import Literal

from harness.errors import HarnessError
from harness.registry import register
from harness.training.callbacks import Callback


def teacher_forcing_ratio(step: int, schedule: str, k: float, c: float = 0.0, minimum: float = 0.0) -> float:
    """:math:`\\epsilon_i` of the module docstring."""
    if schedule == "linear":
        value = k - c * step
    elif schedule == "exponential":
        value = k ** step
    elif schedule == "inverse_sigmoid":
        value = k / (k + math.exp(min(step / k, 700.0)))
    else:
        raise ValueError(f"schedule: expected linear, exponential or inverse_sigmoid, got {schedule!r}")
    return max(minimum, min(1.0, value))


@register("callback", "scheduled_sampling")
class ScheduledSampling(Callback):
    def __init__(self, schedule: Literal["linear", "exponential", "inverse_sigmoid"] = "inverse_sigmoid",
                 k: float | None = None, c: float = 0.0, min_teacher_forcing: float = 0.0):
        defaults = {"linear": 1.0, "exponential": 0.999, "inverse_sigmoid": 100.0}
        if schedule not in defaults:
            raise ValueError(f"schedule: expected linear, exponential or inverse_sigmoid, got {schedule!r}")
        k = defaults[schedule] if k is None else k
        if schedule == "linear" and (not 0 < k <= 1 or c < 0):
            raise ValueError(f"k: linear decay starts at k in (0, 1] and falls by c >= 0 per step, got k={k}, c={c}")
        if schedule == "exponential" and not 0 < k < 1:
            raise ValueError(f"k: exponential decay needs 0 < k < 1, got {k}")
        if schedule == "inverse_sigmoid" and k < 1:
            raise ValueError(f"k: inverse sigmoid decay needs k >= 1, got {k}")
        if not 0 <= min_teacher_forcing <= 1:
            raise ValueError(f"min_teacher_forcing: expected a probability, got {min_teacher_forcing}")
        self.schedule, self.k, self.c, self.minimum = schedule, k, c, min_teacher_forcing

    def ratio(self, step: int) -> float:
        return teacher_forcing_ratio(step, self.schedule, self.k, self.c, self.minimum)

    def on_train_begin(self, loop) -> None:
        if not hasattr(loop.unwrapped_model, "sampling_probability"):
            raise HarnessError(f"callbacks: scheduled_sampling needs a decoder that can feed its own predictions "
                               f"(model.sampling_probability); {type(loop.unwrapped_model).__name__} has none "
                               "(the rnn_seq2seq and transformer encoder-decoders have it)")

    def on_step_begin(self, loop) -> None:
        loop.unwrapped_model.sampling_probability = 1.0 - self.ratio(loop.state.global_step)

    def on_log(self, loop, row: dict) -> None:
        """The history gets the ratio the row's last optimizer step trained with, beside its loss."""
        loop.record({"step": row["step"], "teacher_forcing_ratio": self.ratio(row["step"] - 1)})


__all__ = ["ScheduledSampling", "teacher_forcing_ratio"]
