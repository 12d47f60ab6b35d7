r"""When professor forcing's adversarial term starts, and how fast it comes in: a callback that warm-starts
professor forcing from teacher forcing.

From scratch on Multi30k the term hurts (docs/benchmarks.md, "Multi30k De→En, part 3": greedy validation BLEU
0.74 at weight 1.0 after 250 steps against teacher forcing's 11.54): early free-running samples are noise, the
discriminator tells them apart at once, and the generator learns to make noise look teacher-forced. Lamb et al.
(2016) apply the term to models that already produce sensible free-running sequences. So the schedule:

* before ``start_step`` the model trains by teacher forcing only: no free-running pass, no discriminator step
  (the discriminator gets no gradient, which AdamW skips; the runner turns on DDP's ``find_unused_parameters``);
* from ``start_step`` the discriminator trains every step, and the generator's term is multiplied by
  :math:`\min(1, (i - start + 1) / warmup)` at optimizer step :math:`i` (1 at once with ``warmup_steps: 0``), on
  top of ``model.professor_forcing_weight`` and of the discriminator-accuracy gate.

The scale depends on the step only, so a resumed run continues it exactly; every log row gets a
``{"step", "professor_forcing_scale"}`` row. Nothing in ``transformers`` provides professor forcing.

Recipe (with ``model.professor_forcing: true``)::

    callbacks:
      - component: professor_forcing_schedule
        start_step: 454     # one Multi30k epoch (batch 64) of teacher forcing first
        warmup_steps: 200
"""

from __future__ import annotations

from harness.errors import HarnessError
from harness.registry import register
from harness.training.callbacks import Callback


def professor_forcing_scale(step: int, start_step: int, warmup_steps: int) -> float:
    """The generator term's multiplier at optimizer step ``step`` (0-based); 0 switches professor forcing off."""
    if step < start_step:
        return 0.0
    return 1.0 if warmup_steps == 0 else min(1.0, (step - start_step + 1) / warmup_steps)


@register("callback", "professor_forcing_schedule")
class ProfessorForcingSchedule(Callback):
    #: the discriminator gets no gradient before ``start_step`` (DDP must look for unused parameters)
    changes_trainable_parameters = True

    def __init__(self, start_step: int = 0, warmup_steps: int = 0):
        for name, value in (("start_step", start_step), ("warmup_steps", warmup_steps)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name}: expected a whole number of optimizer steps >= 0, got {value!r}")
        self.start_step, self.warmup_steps = start_step, warmup_steps

    def scale(self, step: int) -> float:
        return professor_forcing_scale(step, self.start_step, self.warmup_steps)

    def on_train_begin(self, loop) -> None:
        model = loop.unwrapped_model
        config = getattr(model, "config", None)
        if not hasattr(model, "professor_forcing_scale") or not getattr(config, "professor_forcing", False):
            raise HarnessError(f"callbacks: professor_forcing_schedule needs a model trained with professor forcing "
                               f"(model.professor_forcing: true on an rnn_seq2seq model); {type(model).__name__} "
                               f"{'is not one' if not hasattr(model, 'professor_forcing_scale') else 'has it off'}")

    def on_step_begin(self, loop) -> None:
        loop.unwrapped_model.professor_forcing_scale = self.scale(loop.state.global_step)

    def on_train_end(self, loop) -> None:
        loop.unwrapped_model.professor_forcing_scale = 1.0  # the model as configured, for whoever uses it next

    def on_log(self, loop, row: dict) -> None:
        """The history gets the scale the row's last optimizer step trained with, beside its loss."""
        loop.record({"step": row["step"], "professor_forcing_scale": self.scale(row["step"] - 1)})


__all__ = ["ProfessorForcingSchedule", "professor_forcing_scale"]
