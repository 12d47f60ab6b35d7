"""The training report's gradient-through-time section: a recurrent LM run gets it, other models do not."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch
import yaml
from testkit import run_harness
from datasets import Dataset, DatasetDict

from harness.models.rnn import RNNConfig, RNNForCausalLM, RNNForSequenceClassification, RNNModel
from harness.models.rnn.diagnostics import REPORT_FILES, gradient_norms_section, report_gradient_norms
from harness.report import write_report


@pytest.mark.slow  # a subprocess end-to-end run; the default suite covers it in-process
def test_rnn_lm_run_writes_the_gradient_plot_into_its_report(tmp_path):
    rng = random.Random(0)
    words = ["the", "cat", "dog", "sat", "on", "mat", "a", "ran"]
    for name, n in (("train", 60), ("valid", 40)):
        lines = [" ".join(rng.choice(words) for _ in range(rng.randint(3, 8))) for _ in range(n)]
        (tmp_path / f"{name}.txt").write_text("\n".join(lines) + "\n")
    recipe = tmp_path / "lm.yaml"
    recipe.write_text(yaml.safe_dump({
        "output_dir": str(tmp_path / "lm"),
        "data": {"component": "lm_text", "train_file": str(tmp_path / "train.txt"),
                 "validation_file": str(tmp_path / "valid.txt")},
        "model": {"component": "rnn_lm", "cell": "lstm", "embedding_size": 16, "hidden_size": 16, "num_layers": 2},
        "optimizer": {"component": "sgd"},
        "training": {"lr": 1.0, "batch_size": 4, "max_length": 10, "num_epochs": 1},
        "tracking": {"report_to": []},
    }))
    proc = run_harness("train", str(recipe))
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = tmp_path / "lm"
    assert (out / "gradient_norms.png").stat().st_size > 0
    info = json.loads((out / "gradient_norms.json").read_text())
    # 40 lines of 3-8 words (+ </s>): ~260 tokens, so 100 steps and 2 rows of 101 tokens
    assert info["split"] == "validation" and info["steps"] == 100 and info["rows"] == 2
    norms = np.array(info["norms"])
    assert norms.shape == (2, 100) and np.all(np.isfinite(norms)) and np.all(norms[:, 0] > 0)
    assert set(info["fraction_left"]) == {"layer_1", "layer_2"}
    assert set(info["fraction_left"]["layer_2"]) == {"10", "25", "50"}
    report = (out / "report.md").read_text()
    assert "## Gradient through time" in report and "![gradient norms against distance](gradient_norms.png)" in report
    assert "| layer 2 (top) |" in report


def _input_ids_split(n_rows=5, length=30, vocab=20):
    ids = torch.randint(0, vocab, (n_rows, length), generator=torch.Generator().manual_seed(0))
    return DatasetDict({"validation": Dataset.from_dict({"input_ids": ids.tolist(),
                                                        "attention_mask": [[1] * length] * n_rows})})


def test_other_models_are_skipped_and_stale_files_removed(tmp_path):
    for name in REPORT_FILES:
        (tmp_path / name).write_text("from an earlier run")
    tokenized = _input_ids_split()
    kw = {"vocab_size": 20, "embedding_size": 8, "hidden_size": 8, "num_layers": 1, "pad_token_id": None}
    skipped = [
        torch.nn.Linear(2, 2),  # not an RNN
        RNNModel(RNNConfig(**kw)),  # an encoder, not an LM
        RNNForSequenceClassification(RNNConfig(**kw, bidirectional=True, num_labels=2)),  # a classifier
    ]
    for model in skipped:
        assert report_gradient_norms(model, tokenized, ["validation"], tmp_path) is None
    assert not any((tmp_path / name).exists() for name in REPORT_FILES)
    lm = RNNForCausalLM(RNNConfig(**kw))
    assert report_gradient_norms(lm, tokenized, ["test"], tmp_path) is None  # no such split
    assert report_gradient_norms(lm, {"validation": Dataset.from_dict({"x": [1]})}, ["validation"], tmp_path) is None


def test_input_ids_rows_are_read_as_one_stream_and_the_report_renders(tmp_path):
    torch.manual_seed(0)
    kw = {"vocab_size": 20, "embedding_size": 8, "hidden_size": 8, "num_layers": 2, "pad_token_id": None}
    model = RNNForCausalLM(RNNConfig(cell="gru", **kw)).train()
    info = report_gradient_norms(model, _input_ids_split(), ["test", "validation"], tmp_path, rows=3, steps=40)
    assert model.training  # the mode is restored
    # 5 rows × 30 tokens = 150 tokens: 40 steps, 3 rows of 41 tokens
    assert info["split"] == "validation" and info["steps"] == 40 and info["rows"] == 3
    assert json.loads((tmp_path / "gradient_norms.json").read_text()) == info
    assert set(info["fraction_left"]["layer_2"]) == {"10", "25"}  # 50 is past the 40 measured steps
    path = write_report(tmp_path, "t", {"validation/perplexity": 1.0}, [], {}, [gradient_norms_section(info)])
    text = path.read_text()
    assert "| fraction left at distance | 10 | 25 |" in text and "gradient_norms.png" in text
    assert "gradient_norms.png" not in write_report(tmp_path, "t", {}, [], {}).read_text()


@pytest.mark.parametrize("dtype", [torch.bfloat16])
def test_a_low_precision_model_is_measured_on_a_float32_copy(tmp_path, dtype):
    kw = {"vocab_size": 20, "embedding_size": 8, "hidden_size": 8, "num_layers": 1, "pad_token_id": None}
    model = RNNForCausalLM(RNNConfig(**kw)).to(dtype)
    info = report_gradient_norms(model, _input_ids_split(), ["validation"], tmp_path, rows=2, steps=20)
    assert info is not None and all(np.isfinite(info["norms"][0]))
    assert next(model.parameters()).dtype == dtype  # the model itself is untouched


def test_a_failing_measurement_is_a_warning_not_a_failed_run(tmp_path, monkeypatch):
    from harness.models.rnn import diagnostics

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(diagnostics, "gradient_norms", broken)
    kw = {"vocab_size": 20, "embedding_size": 8, "hidden_size": 8, "num_layers": 1, "pad_token_id": None}
    with pytest.warns(RuntimeWarning, match="gradient-norm diagnostic skipped: RuntimeError: boom"):
        info = report_gradient_norms(RNNForCausalLM(RNNConfig(**kw)), _input_ids_split(), ["validation"], tmp_path)
    assert info is None and not any((tmp_path / name).exists() for name in REPORT_FILES)
