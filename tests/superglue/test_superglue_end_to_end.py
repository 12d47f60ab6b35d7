"""Slow: the real command end to end — `harness leaderboard --benchmark superglue` trains BoolQ, COPA, WiC and ReCoRD
(whose train splits are not in the shared data folder; each `harness train` in its own process) on generated data of their
real formats with a tiny BERT and writes a submission that validates. (AX-b / AX-g from the RTE model:
test_superglue_leaderboard.py.)"""

from __future__ import annotations

import os
import zipfile

import pytest
from superglue_fixtures import make_superglue
from test_superglue_leaderboard import _recipes

from harness.evaluation.superglue_submission import validate_submission

pytestmark = pytest.mark.slow


def test_leaderboard_command_trains_and_submits(tmp_path, tiny_checkpoint):
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_EVALUATE_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           "OMP_NUM_THREADS": "1"}

    data = make_superglue(tmp_path / "data", n_train=16)
    tasks = ["boolq", "copa", "wic", "record"]
    recipes = _recipes(tmp_path / "recipes", data, tiny_checkpoint, tasks)
    for task in tasks:  # one epoch, as fast as it goes
        path = recipes / f"{task}.yaml"
        path.write_text(path.read_text().replace("batch_size: 4", "batch_size: 8\n  num_epochs: 1"))
    (recipes / "wic.yaml").write_text((recipes / "wic.yaml").read_text().replace(
        "pretrained_classifier", "pretrained_span_classifier"))
    result = subprocess.run([sys.executable, "-m", "harness", "leaderboard", "--benchmark", "superglue", "--recipes",
                             str(recipes), "--runs-dir", str(tmp_path / "runs"), "--tasks", *tasks],
                            capture_output=True, text=True, timeout=300, env=env, cwd=repo)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    names = set(zipfile.ZipFile(tmp_path / "runs" / "superglue_submission.zip").namelist())
    assert names == {"BoolQ.jsonl", "COPA.jsonl", "WiC.jsonl", "ReCoRD.jsonl"}
    assert validate_submission(tmp_path / "runs" / "superglue_submission.zip",
                               {"BoolQ.jsonl": 6, "COPA.jsonl": 6, "WiC.jsonl": 6, "ReCoRD.jsonl": 4}) == []
    md = (tmp_path / "runs" / "leaderboard.md").read_text()
    assert "subset: 4 of 8 tasks (BoolQ, COPA, ReCoRD, WiC)" in md
    assert "- AX-b: missing: rte not in --tasks" in md
    for task in tasks:
        assert (tmp_path / "runs" / task / "model" / "config.json").is_file()
