"""Gradual unfreezing honestly counted and correct under DDP: the callback → Accelerator seam
(``changes_trainable_parameters`` → ``find_unused_parameters``), the stages in the history and the step-weighted
trainable share (across a resume, and in bench_finetune's table), and a two-process gloo run whose processes hold
identical weights after every unfreezing step while the frozen blocks stay put (``slow``)."""

from __future__ import annotations

import json
import sys
from types import SimpleNamespace

import pytest
import torch
from testkit import REPO, load_script, recipe_file, run_harness
from transformers import BertConfig, BertForSequenceClassification

from harness.training.optim import build_optimizer

ACCELERATE = [sys.executable, "-m", "accelerate.commands.launch"]


def _bert(layers: int = 2) -> BertForSequenceClassification:
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=100, hidden_size=16, num_hidden_layers=layers, num_attention_heads=2,
                     intermediate_size=32, num_labels=2)
    return BertForSequenceClassification(cfg)


class _Acc:
    def unwrap_model(self, m):
        return m

    def print(self, *a):
        pass


# ------------------------------------------------------------------------------ the seam


def test_a_callback_that_changes_what_trains_gets_ddp_find_unused_parameters(tmp_path, fresh_accelerate):
    from harness.run import ddp_settings, load, make_accelerator
    from harness.training.callbacks import EarlyStopping
    from harness.training.unfreezing import GradualUnfreezing

    assert GradualUnfreezing.changes_trainable_parameters and not EarlyStopping.changes_trainable_parameters
    plain = load(str(recipe_file(tmp_path, "plain", callbacks=[{"component": "early_stopping"}])), [])
    assert ddp_settings(plain) == []
    gradual = load(str(recipe_file(tmp_path, "gradual", callbacks=[{"component": "early_stopping"},
                                                                   {"component": "gradual_unfreezing"}])), [])
    (kwargs,) = ddp_settings(gradual)
    assert kwargs.to_kwargs() == {"find_unused_parameters": True}
    accelerator = make_accelerator(gradual, tmp_path / "out", trackers=False)
    assert accelerator.ddp_handler is not None and accelerator.ddp_handler.find_unused_parameters


# ------------------------------------------------------------------------------ what trained


def _drive(cb, loop, steps) -> None:
    """The loop's calls: on_train_begin at the (restored) step, then on_step_begin before every step."""
    loop.state.global_step = steps[0]
    cb.on_train_begin(loop)
    for step in steps:
        loop.state.global_step = step
        cb.on_step_begin(loop)


def _loop(model, rows):
    opt = build_optimizer(model, {"component": "adamw", "fused": False}, lr=1e-3, weight_decay=0.0)
    return SimpleNamespace(model=model, optimizer=opt, accelerator=_Acc(), record=rows.append,
                           state=SimpleNamespace(global_step=0, epoch=0))


@pytest.mark.parametrize("resume_at", [3, 4])  # inside stage 1; at the step where stage 2 begins
def test_stages_recorded_and_step_weighted_share_survive_a_resume(resume_at):
    from harness.training.unfreezing import GradualUnfreezing

    model = _bert(layers=2)
    total = sum(p.numel() for p in model.parameters())
    size = {n: p.numel() for n, p in model.named_parameters()}
    head = sum(v for n, v in size.items() if n.startswith(("classifier.", "bert.pooler.")))
    block = {i: sum(v for n, v in size.items() if f".layer.{i}." in n) for i in range(2)}
    counts = [head, head + block[1], head + block[1] + block[0], total]

    rows: list[dict] = []
    whole = GradualUnfreezing(every_steps=2)
    _drive(whole, _loop(model, rows), list(range(7)))  # stages 0 0 1 1 2 2 3
    assert [(r["step"], r["unfreezing"]["stage"], r["unfreezing"]["trainable_parameters"]) for r in rows] == \
        [(0, 0, counts[0]), (2, 1, counts[1]), (4, 2, counts[2]), (6, 3, counts[3])]
    assert rows[0]["unfreezing"]["trainable_share"] == pytest.approx(head / total, abs=1e-6)
    want = {"train/trainable_parameters": total, "train/trainable_parameters_first_step": head,
            "train/trainable_parameters_mean": round((2 * counts[0] + 2 * counts[1] + 2 * counts[2] + counts[3]) / 7, 1)}
    assert whole.summary() == want
    assert want["train/trainable_parameters_mean"] < 0.75 * total  # not the build-time 100 %

    # interrupted after `resume_at` steps, resumed (a new process: a new model) from the checkpoint's JSON state
    first_rows: list[dict] = []
    before = GradualUnfreezing(every_steps=2)
    _drive(before, _loop(_bert(layers=2), first_rows), list(range(resume_at)))
    saved = json.loads(json.dumps(before.state_dict()))
    after_rows: list[dict] = []
    after = GradualUnfreezing(every_steps=2)
    after.load_state_dict(saved)
    _drive(after, _loop(_bert(layers=2), after_rows), list(range(resume_at, 7)))
    assert first_rows + after_rows == rows  # each stage once, at the step it began
    assert after.summary() == want
    # a run that ends before the embeddings unfreeze did not train them
    short = GradualUnfreezing(every_steps=2)
    _drive(short, _loop(_bert(layers=2), []), list(range(5)))
    assert short.summary()["train/trainable_parameters"] == counts[2] < total


def test_bench_finetune_shows_the_step_mean_share_for_gradual_unfreezing(tmp_path):
    bench = load_script("bench_finetune")
    common = {"validation/accuracy": 0.6, "train/total_parameters": 1000, "train/seconds": 60.0,
              "train/tokens_per_second": 100.0}
    runs = {"full": {"train/trainable_parameters": 1000},
            "gradual_unfreezing": {"train/trainable_parameters": 1000, "train/trainable_parameters_first_step": 25,
                                   "train/trainable_parameters_mean": 480.0}}
    for strategy, facts in runs.items():
        out = bench.run_dir(tmp_path, strategy, "rte", 42)
        out.mkdir(parents=True)
        (out / "metrics.json").write_text(json.dumps({**common, **facts}))
    rows = {line.split("|")[3].strip(): line.split("|")[6].strip()
            for line in bench.table(list(runs), ["rte"], [42], tmp_path).splitlines()[2:]}
    assert rows == {"full": "100.00 %", "gradual_unfreezing": "48.00 % (step mean; first step 2.50 %)"}


# ------------------------------------------------------------------------------ two processes


def _rows(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.slow  # two processes launched through accelerate (≈ 15 s)
def test_two_process_unfreezing_keeps_ranks_identical_and_frozen_blocks_still(write_recipe, tmp_path):
    """gloo, 2 processes × batch 8 × 2 accumulation, one block unfrozen per step over 4 steps (head → top block →
    both blocks → everything): at the start and after every step each process hashes every parameter
    (tests/training/ddp_unfreezing_probe.py). Without find_unused_parameters this run stops at step 2 with
    "Expected to have finished reduction"."""
    recipe = write_recipe(
        "ddp_unfreeze",
        data={"component": "synthetic_classification", "num_train": 64, "num_validation": 16, "num_test": 8},
        training={"batch_size": 8, "gradient_accumulation_steps": 2, "num_epochs": 2, "eval_steps": 1000,
                  "log_steps": 1, "save_total_limit": 1, "warmup_ratio": 0.0},
        callbacks=[{"component": "gradual_unfreezing", "every_steps": 1}, {"component": "test_rank_weights"}],
    )
    launcher = ACCELERATE + ["--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--main_process_port", "29541"]
    proc = run_harness(str(REPO / "tests" / "training" / "ddp_unfreezing_probe.py"), str(recipe), launcher=launcher)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = tmp_path / "ddp_unfreeze"
    ranks = [_rows(out / "probe" / f"rank{r}.jsonl") for r in (0, 1)]
    assert ranks[0] == ranks[1]  # same trainable sets and bit-identical weights on both processes, every step
    rows = ranks[0]
    assert rows[0]["event"] == "begin" and rows[0]["find_unused_parameters"] is True
    hashes = [r["hashes"] for r in rows if "hashes" in r]  # at the start, then after steps 1-4
    trainable = [set(r["trainable"]) for r in rows if r["event"] == "step_begin"]
    assert len(hashes) == 5 and len(trainable) == 4
    names = set(hashes[0])
    assert [len(t) for t in trainable] == sorted(len(t) for t in trainable) and trainable[-1] == names
    assert all(n.startswith(("classifier.", "bert.pooler.")) for n in trainable[0])
    for step, live in enumerate(trainable):
        moved = {n for n in names if hashes[step + 1][n] != hashes[step][n]}
        assert moved == live, (step + 1, sorted(moved ^ live)[:5])  # frozen ones did not move, trainable ones did
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["train/processes"] == 2 and metrics["train/global_step"] == 4
    counts = [json.loads(line)["unfreezing"]["trainable_parameters"]
              for line in (out / "logs" / "history.jsonl").read_text().splitlines() if "unfreezing" in line]
    assert len(counts) == 4 and counts[-1] == metrics["train/total_parameters"]
    assert metrics["train/trainable_parameters_mean"] == pytest.approx(sum(counts) / 4, abs=0.1)
    assert metrics["train/trainable_parameters_first_step"] == counts[0]
