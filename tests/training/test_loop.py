"""End-to-end runs of the loop on the tiny recipe in subprocesses (``accelerate launch``): outputs, eval, DDP,
accumulation, NaN, early stop, precision. In-process versions of most are tests/training/test_loop_unit.py and
tests/test_run.py; these are ``slow``."""

from __future__ import annotations

import json
import sys

import pytest
import torch
import yaml
from testkit import REPO, run_harness
from safetensors.torch import load_file

ACCELERATE = [sys.executable, "-m", "accelerate.commands.launch"]


@pytest.mark.slow  # a subprocess end-to-end run; the default suite covers it in-process
def test_accelerate_launch_end_to_end_and_eval(write_recipe, tmp_path):
    recipe = write_recipe("e2e", tracking={"report_to": ["tensorboard"]})
    proc = run_harness(str(REPO / "harness" / "run.py"), str(recipe), launcher=ACCELERATE + ["--num_processes", "1"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = tmp_path / "e2e"
    for name in ("recipe.yaml", "metrics.json", "report.md", "loss_curve.png", "predictions_test.tsv"):
        assert (out / name).is_file(), name
    assert list((out / "logs").rglob("events.out.tfevents.*")), "no TensorBoard events"
    assert (out / "logs" / "history.jsonl").is_file()
    assert list((out / "checkpoints").glob("checkpoint-*"))
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["validation/accuracy"] >= 0.8, metrics  # the lexicon rule is learnt
    assert metrics["train/tokens_per_second"] > 0
    report = (out / "report.md").read_text()
    assert "validation/accuracy" in report and "loss_curve.png" in report and "tokens_per_second" in report
    # the gradient-through-time section is for recurrent LMs only (tests/training/test_gradient_report.py)
    assert "gradient_norms" not in report and not list(out.glob("gradient_norms.*"))
    assert len((out / "predictions_test.tsv").read_text().splitlines()) == 33  # header + 32

    # the saved model Auto-loads and `harness eval` reproduces the final metrics
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(out / "model")
    tok = AutoTokenizer.from_pretrained(out / "model")
    assert model(**tok(["good great film"], return_tensors="pt")).logits.shape == (1, 2)
    proc = run_harness("eval", str(recipe))
    assert proc.returncode == 0, proc.stderr[-3000:]
    again = json.loads((out / "eval" / "metrics.json").read_text())
    for key, value in again.items():
        assert value == pytest.approx(metrics[key], abs=1e-6), key


@pytest.mark.slow  # a subprocess end-to-end run; the default suite covers it in-process
def test_two_process_ddp_on_cpu(write_recipe, tmp_path):
    recipe = write_recipe("ddp", training={"num_epochs": 2, "eval_steps": 4, "save_total_limit": 1})
    launcher = ACCELERATE + ["--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--main_process_port", "29517"]
    proc = run_harness(str(REPO / "harness" / "run.py"), str(recipe), launcher=launcher)
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((tmp_path / "ddp" / "metrics.json").read_text())
    assert metrics["train/processes"] == 2
    assert metrics["train/global_step"] == 16  # 512 examples / (32 × 2 processes) × 2 epochs
    assert metrics["train/tokens"] > 0
    assert (tmp_path / "ddp" / "model" / "model.safetensors").is_file()


@pytest.mark.slow  # a subprocess end-to-end run; the default suite covers it in-process
def test_gradient_accumulation_matches_a_larger_batch(write_recipe, tmp_path):
    common = {"num_epochs": 1, "eval_steps": 1000, "max_grad_norm": None, "warmup_ratio": 0.0}
    a = write_recipe("big", model={"dropout": 0.0}, training={**common, "batch_size": 32})
    b = write_recipe("accum", model={"dropout": 0.0}, training={**common, "batch_size": 16, "gradient_accumulation_steps": 2})
    for r in (a, b):
        proc = run_harness("train", str(r))
        assert proc.returncode == 0, proc.stderr[-3000:]
    wa = load_file(str(tmp_path / "big" / "model" / "model.safetensors"))
    wb = load_file(str(tmp_path / "accum" / "model" / "model.safetensors"))
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], rtol=1e-4, atol=1e-5, msg=k)
    ma = json.loads((tmp_path / "big" / "metrics.json").read_text())
    mb = json.loads((tmp_path / "accum" / "metrics.json").read_text())
    assert ma["train/global_step"] == mb["train/global_step"] == 16


@pytest.mark.slow  # a subprocess end-to-end run; the default suite covers it in-process
def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    # a regression target that overflows float32 → an infinite MSE loss at a known step
    from harness.training.loop import EpochSampler

    n, batch, seed = 64, 4, 7
    order = list(EpochSampler(n, seed))
    bad_row = order[40]  # consumed by optimizer step 11
    rows = ["text\tscore"] + [f"good film {i}\t{1e39 if i == bad_row else i % 5}" for i in range(n)]
    (tmp_path / "train.tsv").write_text("\n".join(rows) + "\n")
    (tmp_path / "dev.tsv").write_text("text\tscore\ngood film\t1\nbad film\t2\n")
    recipe = {
        "output_dir": str(tmp_path / "nan"),
        "seed": seed,
        "data": {"component": "text_classification", "train_file": str(tmp_path / "train.tsv"),
                 "validation_file": str(tmp_path / "dev.tsv"), "label_column": "score", "regression": True},
        "model": {"component": "bert_from_scratch", "hidden_size": 16, "num_layers": 1, "num_heads": 1},
        "training": {"batch_size": batch, "num_epochs": 1, "eval_steps": 4, "lr": 1e-3},
        "evaluation": {"metric_for_best": "loss"},
        "tracking": {"report_to": []},
    }
    path = tmp_path / "nan.yaml"
    path.write_text(yaml.safe_dump(recipe))
    proc = run_harness("train", str(path))
    assert proc.returncode == 3, proc.stderr[-3000:]
    assert "non-finite loss" in proc.stderr and "step 11" in proc.stderr
    assert "Traceback" not in proc.stderr
    out = tmp_path / "nan"
    assert not (out / "metrics.json").exists() and not (out / "model").exists()
    ckpts = sorted(p.name for p in (out / "checkpoints").glob("checkpoint-*"))
    assert ckpts and ckpts[-1] == "checkpoint-8"
    assert str(out / "checkpoints" / "checkpoint-8") in proc.stderr
    # the kept checkpoint holds finite weights
    weights = load_file(str(out / "checkpoints" / "checkpoint-8" / "model.safetensors"))
    assert all(torch.isfinite(w).all() for w in weights.values())


@pytest.mark.slow  # a subprocess end-to-end run; the default suite covers it in-process
def test_early_stopping_with_patience(write_recipe, tmp_path):
    recipe = write_recipe(
        "early",
        training={"lr": 0.0, "num_epochs": 4, "eval_steps": 4, "early_stopping_patience": 2, "warmup_ratio": 0.0},
        evaluation={"metric_for_best": "loss"},
    )
    proc = run_harness("train", str(recipe))
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((tmp_path / "early" / "metrics.json").read_text())
    # lr 0: the first evaluation is the best, two more without improvement stop the run at step 12
    assert metrics["train/stopped_early"] is True
    assert metrics["train/global_step"] == 12 and metrics["train/best_step"] == 4


@pytest.mark.slow  # a subprocess end-to-end run; the default suite covers it in-process
def test_bf16_mixed_precision_and_deterministic_switch_on_cpu(write_recipe, tmp_path):
    recipe = write_recipe("bf16", training={"mixed_precision": "bf16", "deterministic": True, "max_steps": 4, "eval_steps": 4})
    proc = run_harness("train", str(recipe))
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((tmp_path / "bf16" / "metrics.json").read_text())
    assert metrics["train/global_step"] == 4 and 0 <= metrics["validation/loss"] < 10
    assert "| mixed_precision | bf16 |" in (tmp_path / "bf16" / "report.md").read_text()


@pytest.mark.slow  # a subprocess end-to-end run; the default suite covers it in-process
def test_group_by_length_and_auto_precision_train_end_to_end(write_recipe, tmp_path):
    from harness.run import resolve_mixed_precision

    recipe = write_recipe("grouped", training={"group_by_length": True, "mixed_precision": "auto", "max_steps": 4,
                                               "eval_steps": 4})
    proc = run_harness("train", str(recipe))
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((tmp_path / "grouped" / "metrics.json").read_text())
    assert metrics["train/global_step"] == 4 and 0 <= metrics["validation/loss"] < 10
    # the report names the precision that ran, not "auto"
    assert f"| mixed_precision | {resolve_mixed_precision('auto')} |" in (tmp_path / "grouped" / "report.md").read_text()
