"""The loop in-process, on a tiny model and hand-made parts: events, accumulation, no host sync per
micro-batch, the non-finite guard on both paths, early stopping and exact resume."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import pytest
import torch
from accelerate import Accelerator
from testkit import reset_accelerate

from harness.config.schema import TrainingConfig
from harness.errors import TrainingError
from harness.training.callbacks import Callback, EarlyStopping
from harness.training.loop import TrainParts, Trainer

N = 48  # rows


class Regression(torch.nn.Module):
    """y = w·x + b with an MSE loss; ``outputs.loss`` like a transformers head."""

    def __init__(self, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.linear = torch.nn.Linear(4, 1)

    def forward(self, x, y, mask):
        pred = self.linear(x).squeeze(-1)
        return SimpleNamespace(loss=((pred - y) ** 2).mean(), logits=pred)


def rows(bad: int | None = None) -> list[dict]:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(N, 4, generator=g)
    y = x @ torch.tensor([0.5, -0.4, 0.2, 0.3]) + 0.1
    if bad is not None:
        y[bad] = float("inf")
    return [{"x": x[i], "y": y[i], "mask": torch.ones(3, dtype=torch.long)} for i in range(N)]


def collate(batch):
    return {k: torch.stack([b[k] for b in batch]) for k in batch[0]}


def count_rows(batch):
    return batch["mask"].sum()


def bias(model) -> dict[str, float]:
    """A stand-in evaluation: the size of the bias (the data's is 0.1)."""
    return {"validation/loss": float(getattr(model, "module", model).linear.bias.detach().abs().sum())}


def make(tmp_path, cfg: dict | None = None, parts: dict | None = None, seed: int = 0, data=None,
         init_seed: int = 0) -> Trainer:
    config = TrainingConfig(**{"lr": 0.1, "batch_size": 8, "num_epochs": 2, "log_steps": 3, "warmup_steps": 0,
                               "save_total_limit": 10, **(cfg or {})})
    accelerator = Accelerator(cpu=True, gradient_accumulation_steps=config.gradient_accumulation_steps)
    model = Regression(init_seed)
    defaults = dict(model=model, train_rows=data if data is not None else rows(), collate_fn=collate,
                    num_tokens=count_rows, seed=seed, scheduler={"component": "constant"},
                    evaluate=bias, best_key="validation/loss", greater_is_better=False)
    defaults.update(parts or {})
    return Trainer(config, TrainParts(**defaults), accelerator, tmp_path)


class Recorder(Callback):
    def __init__(self):
        self.events: list[str] = []

    def on_train_begin(self, loop):
        self.events.append("train_begin")

    def on_epoch_begin(self, loop):
        self.events.append(f"epoch_begin:{loop.state.epoch}")

    def on_step_begin(self, loop):
        self.events.append(f"step_begin:{loop.state.global_step + 1}")

    def on_step_end(self, loop):
        self.events.append(f"step_end:{loop.state.global_step}")

    def on_log(self, loop, row):
        self.events.append(f"log:{row['step']}")

    def on_evaluate(self, loop, metrics, improved):
        self.events.append(f"evaluate:{loop.state.global_step}")

    def on_save(self, loop, path):
        self.events.append(f"save:{path.name}")

    def on_epoch_end(self, loop):
        self.events.append(f"epoch_end:{loop.state.epoch}")

    def on_train_end(self, loop):
        self.events.append("train_end")


def test_the_loop_trains_and_calls_every_event_in_order(tmp_path, fresh_accelerate):
    rec = Recorder()
    trainer = make(tmp_path, parts={"callbacks": [rec]})
    first = trainer.evaluate()
    result = trainer.train()
    assert result.state.global_step == 12 and result.state.epoch == 2  # 48 rows / 8 × 2 epochs
    assert result.state.tokens_seen == 3 * N * 2
    losses = [r["loss"] for r in result.state.history if "loss" in r]
    assert losses[-1] < 0.2 * losses[0]
    assert trainer.evaluate() != first
    e = rec.events
    assert e[:3] == ["train_begin", "epoch_begin:0", "step_begin:1"]
    assert e[-1] == "train_end"
    assert e.index("step_end:6") < e.index("evaluate:6") < e.index("save:checkpoint-6") < e.index("epoch_end:1")
    assert e.index("epoch_end:1") < e.index("epoch_begin:1") < e.index("step_begin:7")
    assert [x for x in e if x.startswith("log")] == ["log:3", "log:6", "log:9", "log:12"]
    assert [x for x in e if x.startswith("step_end")] == [f"step_end:{s}" for s in range(1, 13)]


def test_gradient_accumulation_matches_a_larger_batch(tmp_path, fresh_accelerate):
    big = make(tmp_path / "big", {"batch_size": 16, "max_grad_norm": None})
    big.train()
    weights = {k: v.clone() for k, v in big.unwrapped_model.state_dict().items()}
    reset_accelerate()
    small = make(tmp_path / "small", {"batch_size": 8, "gradient_accumulation_steps": 2, "max_grad_norm": None})
    result = small.train()
    assert result.state.global_step == 6
    for k, v in small.unwrapped_model.state_dict().items():
        torch.testing.assert_close(v, weights[k], rtol=1e-5, atol=1e-6)


def test_no_host_sync_per_micro_batch(tmp_path, fresh_accelerate, monkeypatch):
    """The loss, token count and non-finite flag stay on the device between log steps: reads (``item``)
    happen per log row, evaluation and checkpoint, not per micro-batch."""
    trainer = make(tmp_path, {"num_epochs": 5, "log_steps": 10, "eval_steps": 1000, "save_steps": None},
                   parts={"evaluate": None, "best_key": None})
    reads = []
    real = torch.Tensor.item
    monkeypatch.setattr(torch.Tensor, "item", lambda self: reads.append(1) or real(self))
    result = trainer.train()
    micro_batches = result.state.global_step  # one micro-batch per step here
    logs = sum(1 for r in result.state.history if "loss" in r)
    assert micro_batches == 30 and logs == 3
    assert len(reads) <= 4 * (logs + 2), len(reads)  # a handful per log row, evaluation and checkpoint
    assert len(reads) < micro_batches


@pytest.mark.parametrize("optimizer, fused", [({"component": "adamw"}, True), ({"component": "sgd"}, False)])
def test_a_non_finite_loss_never_reaches_the_weights(tmp_path, fresh_accelerate, optimizer, fused):
    """Row 42 (step 6, the last of epoch 1) has an infinite target. Fused AdamW skips that update on the
    device and the run stops at the next read (the log row of step 6 here); SGD reads the flag before the
    update. Either way the weights never see it and nothing is saved after it."""
    from harness.training.loop import EpochSampler

    order = list(EpochSampler(N, seed=0))
    bad_row = order[5 * 8 + 2]  # in the 6th batch
    snapshots = {}

    class Snap(Callback):
        def on_step_begin(self, loop):
            snapshots[loop.state.global_step + 1] = loop.unwrapped_model.linear.weight.detach().clone()

    trainer = make(tmp_path, {"log_steps": 3, "eval_steps": 4}, parts={"optimizer": optimizer, "callbacks": [Snap()]},
                   data=rows(bad=bad_row))
    assert bool(trainer.optimizer.optimizer.defaults.get("fused")) is fused
    with pytest.raises(TrainingError, match="non-finite loss at step 6") as err:
        trainer.train()
    assert "checkpoint-4" in str(err.value)
    # the weights after the bad step are the weights before it
    assert torch.equal(trainer.unwrapped_model.linear.weight.detach(), snapshots[6])
    assert torch.isfinite(trainer.unwrapped_model.linear.weight).all()
    assert sorted(p.name for p in (tmp_path / "checkpoints").glob("checkpoint-*")) == ["checkpoint-4"]


def test_early_stopping_is_a_callback(tmp_path, fresh_accelerate):
    trainer = make(tmp_path, {"lr": 0.0, "num_epochs": 4, "eval_steps": 2},
                   parts={"callbacks": [EarlyStopping(patience=2)]})
    result = trainer.train()
    # lr 0: the first evaluation is the best; two more without improvement stop the run at step 6
    assert result.stopped_early and result.state.global_step == 6 and result.state.best_step == 2
    import json

    saved = json.loads((tmp_path / "checkpoints" / "checkpoint-6" / "trainer_state.json").read_text())
    assert saved["callbacks"] == [{"class": "EarlyStopping", "state": {"bad_evaluations": 2}}]


def test_resume_from_a_mid_epoch_checkpoint_is_exact(tmp_path, fresh_accelerate):
    cfg = {"num_epochs": 3, "eval_steps": 4, "log_steps": 2}
    full = make(tmp_path / "full", cfg)
    full.train()
    want = {k: v.clone() for k, v in full.unwrapped_model.state_dict().items()}
    history = full.state.history

    reset_accelerate()
    again = make(tmp_path / "resumed", cfg, init_seed=5)  # other initial weights: all must come from the checkpoint
    again.resume_from(tmp_path / "full" / "checkpoints" / "checkpoint-8")  # mid-epoch 2 (6 steps per epoch)
    assert (again.state.global_step, again.state.epoch, again.state.batch_in_epoch) == (8, 1, 2)
    again.train()
    for k, v in again.unwrapped_model.state_dict().items():
        assert torch.equal(v, want[k]), k
    assert again.state.history == history
    assert math.isclose(again.state.best_metric, full.state.best_metric)


class Reporting(Regression):
    """Reports figures of its training forward, as professor forcing's model does (``training_stats``)."""

    def __init__(self, seed: int = 0):
        super().__init__(seed)
        self.training_stats: dict[str, torch.Tensor] = {}

    def forward(self, x, y, mask):
        out = super().forward(x, y, mask)
        if self.training:
            self.training_stats = {"abs_error": (out.logits - y).abs().mean().detach(),
                                   "rows": torch.tensor(float(len(y)))}
        return out


def test_a_models_training_stats_are_averaged_into_each_log_row(tmp_path, fresh_accelerate):
    seen: list[float] = []  # what each micro-batch reported, read before the loop empties the dict
    trainer = make(tmp_path, {"num_epochs": 1, "log_steps": 3, "eval_steps": 1000}, parts={"model": Reporting()})
    take = trainer._take_stats

    def spying():
        seen.append(float(trainer.unwrapped_model.training_stats["abs_error"]))
        take()

    trainer._take_stats = spying
    history = trainer.train().state.history
    rows = [r for r in history if "loss" in r]
    assert [r["step"] for r in rows] == [3, 6]
    for i, row in enumerate(rows):
        assert row["abs_error"] == pytest.approx(sum(seen[3 * i:3 * i + 3]) / 3, rel=1e-12)
        assert row["rows"] == 8.0
    assert trainer.unwrapped_model.training_stats == {}  # the loop took them
    written = json.loads((tmp_path / "logs" / "history.jsonl").read_text().splitlines()[0])
    assert written["abs_error"] == rows[0]["abs_error"]


def test_a_models_training_stats_may_not_overwrite_the_rows_own_keys(tmp_path, fresh_accelerate):
    class Clashing(Reporting):
        def forward(self, x, y, mask):
            out = super().forward(x, y, mask)
            self.training_stats = {"loss": out.loss.detach()}
            return out

    with pytest.raises(TrainingError, match=r"Clashing.training_stats: 'loss' would overwrite"):
        make(tmp_path, parts={"model": Clashing()}).train()


def test_resume_with_an_open_window_of_training_stats_is_exact(tmp_path, fresh_accelerate):
    cfg = {"num_epochs": 3, "eval_steps": 4, "log_steps": 3}  # checkpoint-8 falls inside the window 7..9
    full = make(tmp_path / "full", cfg, parts={"model": Reporting()})
    history = full.train().state.history
    assert any("abs_error" in r for r in history)
    reset_accelerate()
    again = make(tmp_path / "resumed", cfg, parts={"model": Reporting(5)}, init_seed=5)
    again.resume_from(tmp_path / "full" / "checkpoints" / "checkpoint-8")
    again.train()
    assert again.state.history == history


class WithCritic(Regression):
    """A second player whose gradient is huge (as professor forcing's discriminator's can be), declared to be
    clipped on its own."""

    def __init__(self, seed: int = 0):
        super().__init__(seed)
        self.critic = torch.nn.Parameter(torch.zeros(3))

    def forward(self, x, y, mask):
        out = super().forward(x, y, mask)
        out.loss = out.loss + 1000.0 * self.critic.sum()
        return out

    def separately_clipped_parameters(self):
        return [[self.critic]]


@pytest.mark.parametrize("apart", [True, False])
def test_separately_clipped_parameters_do_not_take_the_others_clipping_budget(tmp_path, fresh_accelerate, apart):
    cfg = {"max_grad_norm": 0.5, "num_epochs": 1}
    sgd = {"optimizer": {"component": "sgd"}}
    alone = make(tmp_path / "alone", cfg, parts=sgd)
    alone.train()
    want = alone.unwrapped_model.linear.weight.detach().clone()
    reset_accelerate()
    model = WithCritic()
    if not apart:
        model.separately_clipped_parameters = lambda: []
    paired = make(tmp_path / "paired", cfg, parts={**sgd, "model": model})
    paired.train()
    got = paired.unwrapped_model.linear.weight.detach()
    assert torch.equal(got, want) == apart  # shared, the critic's gradient would shrink the regression's steps
    steps = paired.state.global_step
    # the critic's own gradient (1000 per entry, norm 1732) is clipped to 0.5 at each SGD step of lr 0.1
    torch.testing.assert_close(paired.unwrapped_model.critic.detach(),
                               torch.full((3,), -0.1 * 0.5 / 3 ** 0.5 * steps))
