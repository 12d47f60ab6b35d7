"""scripts/bench_ner.py tabulates finished runs: mean ± sample std over seeds, missing runs as missing."""

from __future__ import annotations

import json

from testkit import load_script


def test_table_from_finished_runs(tmp_path):
    bench = load_script("bench_ner")
    for name, scores in {"bilstm_crf": [0.86, 0.88], "bilstm_softmax": [0.85, 0.86]}.items():
        for seed, f1 in zip((1, 2), scores):
            out = tmp_path / f"{name}_seed{seed}"
            out.mkdir()
            (out / "metrics.json").write_text(json.dumps({
                "test/overall_f1": f1, "test/lenient_f1": f1 + 0.001, "validation/overall_f1": f1 + 0.05,
                "train/seconds": 600.0, "train/tokens_per_second": 1000.0}))
    text = bench.table(["bilstm_crf", "bilstm_softmax", "minilm"], [1, 2, 3], tmp_path)
    assert "| bilstm_crf | 1, 2 | 87.00 ± 1.41 |" in text
    assert "| minilm | – | missing |" in text
    assert "(strict), seed by seed: seed 1: +1.00, seed 2: +2.00 (mean +1.50)" in text
    assert "(conlleval), seed by seed: seed 1: +1.00, seed 2: +2.00 (mean +1.50)" in text
    assert bench.main(["--collect-only", "--runs-dir", str(tmp_path), "--recipes", "bilstm_crf"]) == 0
