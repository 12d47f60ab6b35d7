"""Unit checks for checkpoints, optimizer groups, schedules and the epoch sampler."""

from __future__ import annotations

import json

import pytest
import torch

from harness.training import checkpoint as ckpt
from harness.training.loop import EpochSampler
from harness.training.optim import build_optimizer, build_scheduler, describe, parameter_groups, warmup_steps


def _make(root, step):
    tmp = ckpt.temporary_dir(root, step)
    tmp.mkdir(parents=True)
    (tmp / "weights").write_text(str(step))
    return ckpt.commit(tmp, ckpt.checkpoint_dir(root, step), {"global_step": step})


def test_checkpoints_are_atomic_and_partial_ones_ignored(tmp_path):
    _make(tmp_path, 5)
    partial = tmp_path / ".tmp-checkpoint-10"  # a run killed while saving step 10
    partial.mkdir()
    (partial / "weights").write_text("half")
    no_state = tmp_path / "checkpoint-12"  # a folder without the state file is not a checkpoint
    no_state.mkdir()
    assert ckpt.latest(tmp_path).name == "checkpoint-5"
    ckpt.clean_partial(tmp_path)
    assert not partial.exists()
    assert json.loads((tmp_path / "checkpoint-5" / ckpt.STATE_FILE).read_text()) == {"global_step": 5}


def test_recommit_same_step_replaces_whole(tmp_path):
    _make(tmp_path, 3)
    tmp = ckpt.temporary_dir(tmp_path, 3)
    tmp.mkdir()
    (tmp / "new").write_text("x")
    ckpt.commit(tmp, ckpt.checkpoint_dir(tmp_path, 3), {"global_step": 3})
    assert sorted(p.name for p in (tmp_path / "checkpoint-3").iterdir()) == ["new", ckpt.STATE_FILE]


def test_prune_keeps_last_k_and_the_best(tmp_path):
    for s in (2, 4, 6, 8, 10):
        _make(tmp_path, s)
    ckpt.prune(tmp_path, keep_last=2, protect={tmp_path / "checkpoint-4"})
    assert [p.name for p in ckpt.list_checkpoints(tmp_path)] == ["checkpoint-4", "checkpoint-8", "checkpoint-10"]


def test_no_weight_decay_on_biases_and_norms():
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.LayerNorm(4))
    decay, no_decay = parameter_groups(model, 0.1)
    assert decay["weight_decay"] == 0.1 and [p.shape for p in decay["params"]] == [torch.Size([4, 4])]
    assert no_decay["weight_decay"] == 0.0 and len(no_decay["params"]) == 3


@pytest.mark.parametrize("name", ["linear", "cosine", "constant"])
def test_schedules_warm_up_then_follow_their_shape(name):
    opt = build_optimizer(torch.nn.Linear(2, 2), {"component": "adamw"}, lr=1.0, weight_decay=0.0)
    sched = build_scheduler(opt, {"component": name}, total_steps=20, steps_per_epoch=1, warmup=4)
    lrs = []
    for _ in range(20):
        lrs.append(sched.get_last_lr()[0])
        opt.step()
        sched.step()
    assert lrs[:5] == pytest.approx([0.0, 0.25, 0.5, 0.75, 1.0])
    if name == "constant":
        assert lrs[4:] == pytest.approx([1.0] * 16)
    else:
        assert all(a >= b for a, b in zip(lrs[4:], lrs[5:])) and lrs[-1] < 0.1
    if name == "cosine":
        assert lrs[12] == pytest.approx(0.5)  # halfway through the decay


def test_sgd_and_adamw():
    lin = torch.nn.Linear(2, 2)
    sgd = build_optimizer(lin, {"component": "sgd", "momentum": 0.9}, lr=0.1, weight_decay=0.0)
    assert isinstance(sgd, torch.optim.SGD) and sgd.defaults["momentum"] == 0.9 and sgd.defaults["lr"] == 0.1
    adamw = build_optimizer(lin, {"component": "adamw", "betas": (0.9, 0.98)}, lr=1e-3, weight_decay=0.01)
    assert isinstance(adamw, torch.optim.AdamW) and adamw.defaults["betas"] == (0.9, 0.98)
    assert adamw.defaults["fused"] and describe(adamw) == "torch.optim.AdamW (fused)"
    assert describe(sgd) == "torch.optim.SGD (default implementation)"
    assert warmup_steps(0, 0.1, 95) == 10 and warmup_steps(3, 0.1, 95) == 3


def test_epoch_sampler_depends_only_on_seed_and_epoch():
    s = EpochSampler(50, seed=3)
    first = list(s)
    s.set_epoch(1)
    second = list(s)
    assert sorted(first) == list(range(50)) and first != second
    t = EpochSampler(50, seed=3)
    t.set_epoch(1)
    torch.manual_seed(123)  # the global RNG plays no part
    assert list(t) == second


def test_length_grouped_sampler_pads_less_and_still_shuffles():
    g = torch.Generator().manual_seed(0)
    lengths = torch.randint(3, 120, (1000,), generator=g).tolist()
    batch, group = 8, 80
    plain = list(EpochSampler(1000, seed=5))
    s = EpochSampler(1000, seed=5, lengths=lengths, group_size=group)
    grouped = list(s)
    assert sorted(grouped) == list(range(1000))
    # each mega-batch is the plain shuffle's slice, longest first
    for start in range(0, 1000, group):
        chunk = grouped[start:start + group]
        assert sorted(chunk) == sorted(plain[start:start + group])
        assert [lengths[i] for i in chunk] == sorted((lengths[i] for i in chunk), reverse=True)

    def padded(order):  # tokens a batch of `batch` rows pads to
        return sum(batch * max(lengths[i] for i in order[k:k + batch]) for k in range(0, 1000, batch))

    assert padded(grouped) < 0.7 * padded(plain)
    s.set_epoch(1)
    again = EpochSampler(1000, seed=5, lengths=lengths, group_size=group)
    again.set_epoch(1)
    assert list(s) == list(again) != grouped  # a function of (seed, epoch) only
    with pytest.raises(ValueError, match="3 lengths for 4 items"):
        EpochSampler(4, seed=0, lengths=[1, 2, 3], group_size=2)


def test_mixed_precision_auto_resolves_to_what_the_hardware_has(monkeypatch):
    from harness.run import resolve_mixed_precision

    assert resolve_mixed_precision("fp16") == "fp16" and resolve_mixed_precision("no") == "no"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for avx512_bf16, amx, want in ((True, False, "bf16"), (False, True, "bf16"), (False, False, "no")):
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda v=avx512_bf16: v, raising=False)
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda v=amx: v, raising=False)
        assert resolve_mixed_precision("auto") == want
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert resolve_mixed_precision("auto") == "no"


def test_step_schedule_halves_each_epoch_after_the_first_four():
    opt = build_optimizer(torch.nn.Linear(2, 2), {"component": "sgd"}, lr=1.0, weight_decay=0.0)
    spec = {"component": "step", "decay_rate": 0.5, "decay_after_epochs": 4}
    sched = build_scheduler(opt, spec, total_steps=70, steps_per_epoch=10, warmup=0)
    lrs = []
    for _ in range(70):
        lrs.append(sched.get_last_lr()[0])
        opt.step()
        sched.step()
    # Zaremba et al.: lr_decay ** max(epoch + 1 - max_epoch, 0) — four epochs at lr 1, then halving
    assert lrs[0] == lrs[39] == 1.0 and lrs[40] == 0.5 and lrs[50] == 0.25 and lrs[69] == 0.125
