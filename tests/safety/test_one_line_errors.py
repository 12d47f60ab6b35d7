"""Every failure ends in one ``error:`` line that names the place: library errors while loading or saving,
a signal outside training, a diverged run (which names the last good checkpoint), and the same under
``accelerate launch``. (Issue 12's probe, "errors, one line" group.)"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch
from accelerate import Accelerator
from testkit import REPO, TRAIN, child_env, one_error, recipe_file

from harness.cli import main
from harness.config.schema import TrainingConfig
from harness.errors import TrainingError, report_errors
from harness.training.loop import TrainParts, Trainer



def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])


def test_a_truncated_saved_model_is_one_line_naming_it(finished, capsys):
    path, out = finished
    _truncate(out / "model" / "model.safetensors")
    assert main(["eval", str(path)]) == 2
    line = one_error(capsys.readouterr().err)
    assert f"model.path: {out / 'model'} cannot be loaded" in line


def test_a_truncated_checkpoint_is_one_line_naming_it(finished, capsys):
    path, out = finished
    ckpt = out / "checkpoints" / "checkpoint-8"
    _truncate(ckpt / "model.safetensors")
    assert main(["train", str(path), f"training.resume={ckpt}"]) == 2
    assert f"training.resume: the checkpoint {ckpt} cannot be loaded" in one_error(capsys.readouterr().err)


def test_a_full_disk_while_saving_keeps_the_earlier_checkpoints(tmp_path, capsys, fresh_accelerate, monkeypatch):
    saves = []
    real = Accelerator.save_state

    def save_state(self, output_dir=None, **kwargs):
        saves.append(output_dir)
        if len(saves) == 2:
            raise OSError(28, "No space left on device")
        return real(self, output_dir, **kwargs)

    monkeypatch.setattr(Accelerator, "save_state", save_state)
    assert main(["train", str(recipe_file(tmp_path, training=TRAIN))]) == 3
    line = one_error(capsys.readouterr().err)
    assert "checkpoint checkpoint-8 cannot be written" in line and "No space left on device" in line
    ckpts = tmp_path / "run" / "checkpoints"
    assert (ckpts / "checkpoint-4" / "trainer_state.json").is_file() and not (ckpts / "checkpoint-8").exists()


def test_a_library_error_is_one_line(capsys):
    def fails():
        raise ValueError("first line of the problem\nsecond line\nthird line")

    assert report_errors(fails) == 1
    err = capsys.readouterr().err
    assert err.strip() == "error: ValueError: first line of the problem (run with --debug for the traceback)"


def test_sigterm_outside_training_is_one_line_and_its_exit_code(capsys):
    def build_forever():
        os.kill(os.getpid(), signal.SIGTERM)
        raise AssertionError("not reached")

    assert report_errors(build_forever) == 128 + signal.SIGTERM
    assert capsys.readouterr().err.strip() == "error: terminated (SIGTERM)"


class _Model(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.w = torch.nn.Parameter(torch.zeros(1))

    def forward(self, loss):
        return SimpleNamespace(loss=(self.w - 1) ** 2 + loss.mean() * 0 + loss.mean())


def test_a_diverged_run_names_the_last_good_checkpoint(tmp_path, fresh_accelerate):
    """Logged loss ~1 for 4 steps, then 50 (a spike: over 10× the lowest), then inf: the checkpoint written
    after the spike is not offered as the good one; the one before it is, and it survives pruning."""
    per_step = [1.0] * 4 + [50.0] * 2 + [float("inf")] * 2
    rows = [{"loss": torch.tensor([v])} for v in per_step]
    cfg = TrainingConfig(lr=0.01, batch_size=1, num_epochs=1, log_steps=2, eval_steps=2, save_total_limit=1)
    parts = TrainParts(model=_Model(), train_rows=rows, shuffle=False, evaluate=lambda m: {"validation/x": 1.0},
                       best_key=None, collate_fn=lambda b: {"loss": torch.cat([r["loss"] for r in b])},
                       num_tokens=lambda b: 1, optimizer={"component": "sgd"}, scheduler={"component": "constant"})
    trainer = Trainer(cfg, parts, Accelerator(cpu=True), tmp_path)
    with pytest.raises(TrainingError) as err:
        trainer.train()
    message = str(err.value)
    good = tmp_path / "checkpoints" / "checkpoint-4"
    assert "non-finite loss at step 7" in message
    assert f"the last good checkpoint is {good} (later ones, up to checkpoint-6, were written after the " \
           "training loss spiked)" in message
    assert f"training.resume={good}" in message and "a lower training.lr" in message
    assert (good / "trainer_state.json").is_file()  # kept although save_total_limit is 1


@pytest.mark.slow  # accelerate launch in a subprocess
def test_accelerate_launch_ends_with_the_error_line(tmp_path):
    path = recipe_file(tmp_path, training={**TRAIN, "batch_size": 0})
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--quiet", "--num_processes", "1",
           str(REPO / "harness" / "run.py"), str(path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=child_env(), cwd=REPO, timeout=300)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 1  # Accelerate's launcher reports any failure of its child as 1
    assert "Traceback" not in proc.stderr and "CalledProcessError" not in proc.stderr
    assert lines[-1].strip() == "training.batch_size: expected a number ≥ 1, got 0"
    assert [line for line in lines if line.startswith("error:")] == ["error: invalid recipe:"]
