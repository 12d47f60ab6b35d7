"""scripts/bench_glue.py tabulates LoRA vs full runs over seeds, with goals and missing tasks."""

from __future__ import annotations

import json

import pytest
from testkit import load_script


def test_table_from_finished_runs(tmp_path):
    bench = load_script("bench_glue")
    for method, scores, trainable in (("full", [0.90, 0.92], 22_700_000), ("lora", [0.905, 0.905], 75_000)):
        for seed, acc in zip((1, 2), scores):
            out = bench.run_dir(tmp_path, method, "sst2", seed)
            out.mkdir(parents=True)
            (out / "metrics.json").write_text(json.dumps({
                "validation/accuracy": acc, "train/seconds": 120.0, "train/tokens_per_second": 2000.0,
                "train/trainable_parameters": trainable, "train/total_parameters": 22_790_000}))
    text = bench.table(["sst2", "mrpc"], [1, 2], tmp_path)
    row = next(line for line in text.splitlines() if line.startswith("| sst2 "))
    assert "| 91.0 ± 1.4 | 90.5 ± 0.0 | -0.5 | 0.33 % | ≥ 90 ✓ | 88.8 / 86.1 | 2.0 min / 2.0 min |" in row
    assert "| mrpc | f1 | missing | missing |" in text
    assert bench.main(["--collect-only", "--runs-dir", str(tmp_path), "--tasks", "sst2"]) == 0


def test_an_override_caught_by_epochs_is_an_error(tmp_path, capsys):
    bench = load_script("bench_glue")
    with pytest.raises(SystemExit) as exit_info:
        bench.main(["--runs-dir", str(tmp_path), "--epochs", "mrpc=5", "training.lr=1e-3"])
    assert exit_info.value.code == 2
    assert "--epochs training.lr=1e-3" in capsys.readouterr().err
