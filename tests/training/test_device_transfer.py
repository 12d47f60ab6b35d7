"""Host-to-device transfer and evaluation settings (issue 20): pinned memory and non-blocking copies only on CUDA
(CPU runs keep Accelerate's defaults), evaluation under ``torch.inference_mode``, the evaluation loss read once per
split, and no host read of a tensor per training micro-batch."""

from __future__ import annotations

import os
import sys

import torch
import yaml
from testkit import reset_accelerate, tiny_recipe

from harness.training.distributed import dataloader_settings, pin_memory


def test_pinned_memory_and_non_blocking_only_for_cuda():
    assert pin_memory(torch.device("cuda", 0)) and pin_memory(torch.device("cuda"))
    assert not pin_memory(torch.device("cpu")) and not pin_memory(torch.device("mps"))
    assert dataloader_settings().non_blocking == torch.cuda.is_available()


def test_eval_loader_passes_pinning_on():
    from harness.evaluation.loaders import eval_loader

    class Task:
        def arrange(self, rows, batch_size, num_processes):
            return rows

        def eval_collator(self, tokenizer, pad_to_multiple_of=None):
            return lambda rows: rows

    assert eval_loader(Task(), [1, 2], None, 2, pin_memory=True).pin_memory
    assert not eval_loader(Task(), [1, 2], None, 2).pin_memory


class _Probe(torch.nn.Module):
    """Records whether each forward ran under inference mode; returns logits and a loss."""

    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(2, 2)
        self.modes = []

    def forward(self, x, labels=None):
        self.modes.append(torch.is_inference_mode_enabled())
        logits = self.linear(x)
        loss = torch.nn.functional.cross_entropy(logits, labels) if labels is not None else None
        return type("Out", (), {"logits": logits, "loss": loss})()


def test_predict_runs_under_inference_mode_and_reads_the_loss_once(fresh_accelerate):
    from accelerate import Accelerator

    from harness.evaluation.runner import predict

    acc = Accelerator(cpu=True)
    model = _Probe()
    torch.manual_seed(0)
    batches = [{"x": torch.randn(n, 2), "labels": torch.randint(0, 2, (n,))} for n in (3, 5, 2)]
    logits, labels, mean_loss = predict(model, batches, acc)
    assert model.modes == [True, True, True]
    assert logits.shape == (10, 2) and labels.shape == (10,)
    with torch.no_grad():
        expected = sum(torch.nn.functional.cross_entropy(model.linear(b["x"]), b["labels"]).item() * len(b["labels"])
                       for b in batches) / 10
    assert abs(mean_loss - expected) < 1e-6
    assert model.training  # put back in training mode
    # a model trained after an evaluation still gets gradients (nothing it holds became an inference tensor)
    model(batches[0]["x"], batches[0]["labels"]).loss.backward()
    assert model.linear.weight.grad is not None


def _host_reads(tmp_path, steps: int, monkeypatch) -> int:
    """Tensor → Python reads (``item``, ``bool``, ``tolist``) by harness code during a tiny run of ``steps`` optimizer steps with
    one log row, one evaluation and no checkpoint beside the final one."""
    from harness.cli import main

    counts = {"n": 0}
    for name in ("item", "__bool__", "tolist"):
        original = getattr(torch.Tensor, name)

        def counted(self, *a, _original=original, **k):
            caller = sys._getframe(1).f_code.co_filename
            if f"{os.sep}harness{os.sep}" in caller and f"{os.sep}tests{os.sep}" not in caller:
                counts["n"] += 1  # our code's reads (transformers' BERT mask check reads one per forward: not ours)
            return _original(self, *a, **k)

        monkeypatch.setattr(torch.Tensor, name, counted)
    recipe = tiny_recipe(output_dir=str(tmp_path / f"run{steps}"),
                         training={"lr": 5e-4, "batch_size": 4, "max_steps": steps, "log_steps": 1000,
                                   "eval_steps": 1000, "save_total_limit": 1})
    path = tmp_path / f"r{steps}.yaml"
    path.write_text(yaml.safe_dump(recipe))
    reset_accelerate()
    assert main(["train", str(path)]) == 0
    monkeypatch.undo()
    return counts["n"]


def test_no_host_read_per_training_micro_batch(tmp_path, fresh_accelerate, monkeypatch):
    # 2 steps or 6 steps: the same reads (the final log row, evaluation, metrics), none per micro-batch
    short = _host_reads(tmp_path, 2, monkeypatch)
    assert short > 0  # the counting sees the loop's own reads (the log row's loss, the token count)
    assert _host_reads(tmp_path, 6, monkeypatch) == short
