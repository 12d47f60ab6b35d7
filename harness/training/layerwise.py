"""Layer-wise fine-tuning pieces: where each parameter sits in a stacked encoder, discriminative learning
rates (an ``optimizer`` component) and ULMFiT's slanted triangular schedule (a ``scheduler`` component).

Depth is counted from the top, from parameter names alone, so it works on every stacked model whose blocks
are numbered in their module path (``encoder.layer.N`` in the BERT family, ``transformer.layer.N`` in
DistilBERT, ``layers.N`` / ``h.N`` / ``block.N`` elsewhere): the head (classifier, pooler and anything else
outside the blocks and the embeddings) is depth 0, the top block depth 1, block ``i`` of ``L`` depth
``L - i``, and the embeddings the deepest, ``L + 1``. transformers and PEFT have no such grouping (the
HF Trainer gives every parameter one lr); it is written here, as is the schedule (Howard & Ruder 2018, eq. 3),
which neither transformers nor torch ships.
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING

from harness.errors import HarnessError
from harness.registry import register

if TYPE_CHECKING:
    import torch

_BLOCK = re.compile(r"(?:^|\.)(?:layer|layers|block|blocks|h)\.(\d+)(?:\.|$)")
_EMBEDDING = re.compile(r"(?:^|\.)(?:embeddings|embed_tokens|embed_positions|wte|wpe|word_embeddings)(?:\.|$)")

HEAD = "head"
EMBEDDINGS = "embeddings"


def unit_of(name: str) -> str | int:
    """The unit a parameter (or module) belongs to: its block's number, ``"embeddings"`` or ``"head"``."""
    m = _BLOCK.search(name)
    if m:
        return int(m.group(1))
    if _EMBEDDING.search(name):
        return EMBEDDINGS
    return HEAD


def num_blocks(model: torch.nn.Module) -> int:
    """How many numbered blocks the model's parameter names show (0: none found)."""
    found = [u for n, _ in model.named_parameters() if isinstance(u := unit_of(n), int)]
    return max(found) + 1 if found else 0


def depth_of(unit: str | int, blocks: int) -> int:
    """0 for the head, ``blocks - i`` for block ``i``, ``blocks + 1`` for the embeddings."""
    if unit == HEAD:
        return 0
    if unit == EMBEDDINGS:
        return blocks + 1
    return blocks - int(unit)


def depths(model: torch.nn.Module) -> dict[str, int]:
    """Every parameter's depth from the top (see the module docstring); refuses a model with no numbered
    blocks, where a layer-wise rule has nothing to go by."""
    blocks = num_blocks(model)
    if not blocks:
        raise HarnessError(f"{type(model).__name__} has no numbered blocks in its parameter names (expected "
                           "e.g. encoder.layer.N); layer-wise learning rates and gradual unfreezing need them")
    return {n: depth_of(unit_of(n), blocks) for n, _ in model.named_parameters()}


def layerwise_groups(model: torch.nn.Module, lr: float, weight_decay: float, layer_decay: float) -> list[dict]:
    """Parameter groups by depth × (decay / no decay): lr × ``layer_decay`` ** depth. Only trainable parameters
    (as :func:`harness.training.optim.parameter_groups`); each group is named ``depth<d>/decay|no_decay``."""
    from harness.training.optim import _NO_DECAY

    depth = depths(model)
    groups: dict[tuple[int, bool], dict] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        d = depth[name]
        nd = p.ndim < 2 or name.endswith(_NO_DECAY)
        g = groups.setdefault((d, nd), {"params": [], "lr": lr * layer_decay ** d,
                                        "weight_decay": 0.0 if nd else weight_decay,
                                        "name": f"depth{d}/{'no_decay' if nd else 'decay'}"})
        g["params"].append(p)
    return [groups[k] for k in sorted(groups)]


@register("optimizer", "adamw_layerwise", runner_args=("params", "lr", "model", "weight_decay"))
def adamw_layerwise(params, lr: float, model, weight_decay: float, layer_decay: float = 0.95,
                    betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, fused: bool | None = None):
    """AdamW with discriminative learning rates (layer-wise decay): the head trains at ``training.lr``, the
    top block at lr × ``layer_decay``, each block below one factor less, the embeddings least (ULMFiT's
    ξ = 1/2.6 ≈ 0.38; 0.8-0.95 is usual for BERT-sized models, Sun et al. 2019). ``params`` (the runner's
    flat groups) are replaced by the depth groups; the schedule scales every group alike."""
    import torch

    from harness.training.optim import _fusable

    if not 0 < layer_decay <= 1:
        raise HarnessError(f"optimizer.layer_decay: expected a number in (0, 1], got {layer_decay}")
    groups = layerwise_groups(model, lr, weight_decay, layer_decay)
    if fused is None:
        fused = _fusable(groups)
    return torch.optim.AdamW(groups, lr=lr, betas=tuple(betas), eps=eps, fused=fused or None)


def slanted_triangular_factor(step: int, total_steps: int, cut_frac: float = 0.1, ratio: float = 32.0) -> float:
    """ULMFiT's slanted triangular learning rate as a multiple of the peak (Howard & Ruder 2018, eq. 3):
    a linear rise over the first ``cut_frac`` of the steps, then a long linear decay; the lowest lr is
    1/``ratio`` of the peak."""
    cut = max(1, math.floor(total_steps * cut_frac))
    if step < cut:
        p = step / cut
    else:
        p = 1 - (step - cut) / max(1, cut * (1 / cut_frac - 1))
    return (1 + max(0.0, p) * (ratio - 1)) / ratio


@register("scheduler", "slanted_triangular", runner_args=("optimizer", "total_steps", "steps_per_epoch",
                                                          "warmup_steps"))
def slanted_triangular(optimizer, total_steps: int, steps_per_epoch: int, warmup_steps: int,
                       cut_frac: float = 0.1, ratio: float = 32.0):
    """ULMFiT's slanted triangular schedule (``cut_frac`` 0.1, ``ratio`` 32 as in the paper). It has its
    own warm-up (the rise), so ``training.warmup_steps`` / ``warmup_ratio`` must be left unset."""
    import torch

    if not 0 < cut_frac < 1:
        raise HarnessError(f"scheduler.cut_frac: expected a number in (0, 1), got {cut_frac}")
    if ratio < 1:
        raise HarnessError(f"scheduler.ratio: expected a number ≥ 1, got {ratio}")
    if warmup_steps:
        raise HarnessError("scheduler: slanted_triangular rises over its first cut_frac of the steps itself; "
                           "remove training.warmup_steps / training.warmup_ratio")
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: slanted_triangular_factor(s, total_steps, cut_frac, ratio))
