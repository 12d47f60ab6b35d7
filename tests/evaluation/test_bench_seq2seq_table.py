"""scripts/bench_seq2seq.py's per-run figures: seconds per epoch from the run's throughput log, over the epochs the
run's own recipe trained when ``--epochs`` was not given; sacreBLEU's signature from the report; mean ± sample std."""

from __future__ import annotations

import json

from testkit import load_script


def test_epoch_seconds_use_the_written_recipe_and_the_signature_the_report(tmp_path):
    bench = load_script("bench_seq2seq")
    out = tmp_path / "transformer_en-de_seed1"
    (out / "logs").mkdir(parents=True)
    (out / "recipe.yaml").write_text("seed: 1\ntraining:\n  lr: 5.0e-4\n  num_epochs: 10\n")
    (out / "logs" / "throughput.jsonl").write_text(
        json.dumps({"step": 100, "seconds": 300.0}) + "\n" + json.dumps({"step": 4540, "seconds": 6732.4}) + "\n")
    (out / "report.md").write_text("# run\n\n| bleu signature | nrefs:1\\|case:mixed\\|tok:13a |\n")
    epochs = bench.recipe_epochs(out)
    assert epochs == 10
    assert bench.epoch_seconds(out, epochs) == 673.2
    assert bench.bleu_signature(out) == "nrefs:1|case:mixed|tok:13a"
    (out / "recipe.yaml").write_text("seed: 1\n")
    assert bench.recipe_epochs(out) is None
    assert bench.summary([]) == "—" and bench.summary([33.5]) == "33.50"
    assert bench.summary([27.75, 27.77, 26.63]) == "27.38 ± 0.65"
