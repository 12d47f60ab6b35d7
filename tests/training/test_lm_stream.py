"""Truncated BPTT: the stream layout, a recurrent LM trained through the loop, exact stateful resume."""

from __future__ import annotations

import json
import random
import shutil

import numpy as np
import pytest
import yaml
from testkit import run_harness
from datasets import Dataset, DatasetDict
from safetensors.torch import load_file

from harness.data.lm import LMTextTask


def test_each_process_reads_its_rows_window_after_window():
    task = LMTextTask(DatasetDict({"train": Dataset.from_dict({"text": ["x"]})}))
    task.bptt = 3
    stream = np.arange(50)
    rows = task.arrange(Dataset.from_dict({"stream": [stream]}), batch_size=2, num_processes=2)
    x, y = np.array(rows["input_ids"], dtype=object), np.array(rows["shift_labels"], dtype=object)
    assert all((np.asarray(t) == np.asarray(i) + 1).all() for i, t in zip(x, y))  # targets = next tokens
    # Accelerate gives global batch g (2 rows) to process g % 2: process p's k-th batch is window k
    batches = [list(range(g * 2, g * 2 + 2)) for g in range(len(rows) // 2)]
    for p in range(2):
        mine = batches[p::2]
        for prev, cur in zip(mine, mine[1:]):
            for a, b in zip(prev, cur):
                assert y[a][-1] == x[b][0], "a row's next window must continue where the last one ended"
    # 4 rows of 12 tokens → windows of 3, 3, 3, 3
    assert len(rows) == 16 and len(rows[0]["input_ids"]) == 3


def _corpus(tmp_path):
    rng = random.Random(0)
    words = ["the", "cat", "dog", "sat", "on", "mat", "a", "ran"]
    for name, n in (("train", 300), ("valid", 40)):
        lines = [" ".join(rng.choice(words) for _ in range(rng.randint(3, 8))) for _ in range(n)]
        (tmp_path / f"{name}.txt").write_text("\n".join(lines) + "\n")


def _recipe(tmp_path, name, **training):
    body = {
        "output_dir": str(tmp_path / name),
        "data": {"component": "lm_text", "train_file": str(tmp_path / "train.txt"),
                 "validation_file": str(tmp_path / "valid.txt")},
        "model": {"component": "rnn_lm", "cell": "lstm", "embedding_size": 16, "hidden_size": 16,
                  "num_layers": 2, "dropout": 0.1},
        "training": {"lr": 1.0, "batch_size": 4, "max_length": 10, "num_epochs": 2,
                     "max_grad_norm": 5.0, "eval_steps": 25, "save_total_limit": 20, **training},
        "optimizer": {"component": "sgd"},
        "scheduler": {"component": "step", "decay_after_epochs": 1},
        "tracking": {"report_to": []},
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(body))
    return path


@pytest.mark.slow  # a subprocess end-to-end run; the default suite covers it in-process
def test_lstm_lm_trains_with_carried_state_and_resumes_exactly(tmp_path):
    _corpus(tmp_path)
    proc = run_harness("train", str(_recipe(tmp_path, "full")))
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((tmp_path / "full" / "metrics.json").read_text())
    # 8 words + </s> drawn uniformly: a model that learnt the unigram distribution is near 9
    assert 5 < metrics["validation/perplexity"] < 12, metrics

    # resume from a mid-epoch checkpoint (its carried LSTM state included): same final weights
    ckpts = sorted((tmp_path / "full" / "checkpoints").glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    mid = next(p for p in ckpts if int(p.name.split("-")[1]) == 25)
    assert list(mid.glob("step_state_*.safetensors")) and not list(mid.glob("*.pt"))
    (tmp_path / "resumed" / "checkpoints").mkdir(parents=True)
    shutil.copytree(mid, tmp_path / "resumed" / "checkpoints" / mid.name)
    proc = run_harness("train", str(_recipe(tmp_path, "resumed")), "training.resume=auto")
    assert proc.returncode == 0, proc.stderr[-3000:]
    a = load_file(str(tmp_path / "full" / "model" / "model.safetensors"))
    b = load_file(str(tmp_path / "resumed" / "model" / "model.safetensors"))
    for k in a:
        assert (a[k] == b[k]).all(), k
