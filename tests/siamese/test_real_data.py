"""Slow: the shipped all-MiniLM-L6-v2 and the real STS benchmark files through a recipe of recipes/siamese/
(a few MNRL steps on 64 near-paraphrase pairs, the full dev split scored). Skipped without the shared data."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
STS = Path(os.environ.get("HARNESS_DATA_DIR", "/work/shared/data")) / "glue" / "STS-B" / "original"


@pytest.mark.slow
@pytest.mark.skipif(not (STS / "sts-dev.tsv").is_file(), reason="no STS benchmark under HARNESS_DATA_DIR")
def test_minilm_recipe_on_the_sts_benchmark(tmp_path, fresh_accelerate, monkeypatch):
    from harness.cli import main

    monkeypatch.setenv("HARNESS_DATA_DIR", str(STS.parents[2]))
    out = tmp_path / "run"
    assert main(["train", str(REPO / "recipes" / "siamese" / "minilm_stsb_mnrl.yaml"), f"output_dir={out}",
                 "data.max_train_rows=64", "training.eval_steps=1000", "evaluation.splits=[validation]",
                 "evaluation.predict_splits=[]"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    # the checkpoint as shipped scores 86.7 on dev (docs/benchmarks.md); two small steps keep it there
    assert metrics["validation/spearman"] > 0.85, metrics
    config = json.loads((out / "model" / "config.json").read_text())
    assert (config["model_type"], config["pooling"], config["normalize"]) == ("harness_siamese", "mean", True)
