"""Optimizers and learning-rate schedules, as registry components (sections ``optimizer`` and ``scheduler``).

The runner makes the parameter groups (weight decay ``training.weight_decay`` everywhere except biases and
normalisation weights) and passes ``training.lr``; the recipe's ``optimizer:`` section names the optimizer
and its own arguments (``{component: adamw, betas: [0.9, 0.98]}``). A schedule gets the optimizer, the total
and per-epoch optimizer steps and the warmup steps (``training.warmup_steps``, or ``warmup_ratio`` of the
total); ``scheduler:`` names it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness import registry
from harness.registry import register

if TYPE_CHECKING:  # imported where used: validating a recipe's optimizer section needs no torch
    import torch

_NO_DECAY = ("bias", "LayerNorm.weight", "layer_norm.weight", "layernorm.weight", "norm.weight")


def parameter_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """Trainable parameters, with weight decay off for biases and normalisation weights."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim < 2 or name.endswith(_NO_DECAY) else decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]


def _fusable(params) -> bool:
    return all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for g in params for p in g["params"])


@register("optimizer", "adamw", runner_args=("params", "lr"))
def adamw(params, lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, fused: bool | None = None):
    """``torch.optim.AdamW``. ``fused`` (default: wherever every parameter is a float tensor on a CPU or
    CUDA device) runs one kernel for all parameters — 72 → 15 ms per step for MiniLM on CPU
    (scripts/bench_loop.py), the HF Trainer's default too — and lets the loop skip a non-finite update on
    the device, without waiting for the host."""
    import torch

    if fused is None:
        fused = _fusable(params)
    return torch.optim.AdamW(params, lr=lr, betas=tuple(betas), eps=eps, fused=fused or None)


@register("optimizer", "sgd", runner_args=("params", "lr"))
def sgd(params, lr: float, momentum: float = 0.0, nesterov: bool = False, dampening: float = 0.0):
    """``torch.optim.SGD`` (Zaremba et al.'s PTB recipes: plain SGD, no momentum)."""
    import torch

    return torch.optim.SGD(params, lr=lr, momentum=momentum, nesterov=nesterov, dampening=dampening)


def build_optimizer(model: torch.nn.Module, spec: dict, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    """The recipe's optimizer over the model's trainable parameters; a component that declares ``model`` /
    ``weight_decay`` among its runner arguments gets them too (to form its own groups: layer-wise lrs)."""
    wants = registry.entry("optimizer", spec["component"]).runner_args
    extra = {k: v for k, v in (("model", model), ("weight_decay", weight_decay)) if k in wants}
    return registry.build("optimizer", spec, params=parameter_groups(model, weight_decay), lr=lr, **extra)


def describe(optimizer: torch.optim.Optimizer) -> str:
    """``torch.optim.AdamW (fused)`` — which implementation a run actually used, for reports."""
    inner = getattr(optimizer, "optimizer", optimizer)  # an Accelerate wrapper
    cls = type(inner)
    defaults = inner.defaults
    impl = "fused" if defaults.get("fused") else "foreach" if defaults.get("foreach") else "default implementation"
    return f"{cls.__module__.replace('.adamw', '').replace('.sgd', '')}.{cls.__name__} ({impl})"


def warmup_steps(warmup: int, ratio: float, total_steps: int) -> int:
    return warmup or int(round(ratio * total_steps))


_SCHEDULE_ARGS = ("optimizer", "total_steps", "steps_per_epoch", "warmup_steps")


def _hf(name: str, optimizer, total_steps: int, warmup: int, **kwargs):
    from transformers import get_scheduler

    return get_scheduler(name, optimizer, num_warmup_steps=warmup, num_training_steps=total_steps,
                         scheduler_specific_kwargs=kwargs or None)


@register("scheduler", "linear", runner_args=_SCHEDULE_ARGS)
def linear(optimizer, total_steps: int, steps_per_epoch: int, warmup_steps: int):
    """Linear warmup from 0, then linear decay to 0 at the last step."""
    return _hf("linear", optimizer, total_steps, warmup_steps)


@register("scheduler", "cosine", runner_args=_SCHEDULE_ARGS)
def cosine(optimizer, total_steps: int, steps_per_epoch: int, warmup_steps: int, num_cycles: float = 0.5):
    """Linear warmup, then a cosine from the peak lr to 0 (``num_cycles`` 0.5: half a period)."""
    return _hf("cosine", optimizer, total_steps, warmup_steps, num_cycles=num_cycles)


@register("scheduler", "constant", runner_args=_SCHEDULE_ARGS)
def constant(optimizer, total_steps: int, steps_per_epoch: int, warmup_steps: int):
    """Linear warmup, then the peak lr throughout."""
    return _hf("constant_with_warmup", optimizer, total_steps, warmup_steps)


@register("scheduler", "step", runner_args=_SCHEDULE_ARGS)
def step(optimizer, total_steps: int, steps_per_epoch: int, warmup_steps: int, decay_rate: float = 0.5,
         decay_after_epochs: int = 4):
    """Warmup, then constant until ``decay_after_epochs`` epochs are done, then × ``decay_rate`` per epoch
    (Zaremba et al.'s PTB schedule)."""
    import torch

    def factor(s: int) -> float:
        if s < warmup_steps:
            return s / max(1, warmup_steps)
        return decay_rate ** max(0, s // steps_per_epoch + 1 - decay_after_epochs)

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def build_scheduler(optimizer, spec: dict, total_steps: int, steps_per_epoch: int, warmup: int):
    return registry.build("scheduler", spec, optimizer=optimizer, total_steps=total_steps,
                          steps_per_epoch=steps_per_epoch, warmup_steps=warmup)
