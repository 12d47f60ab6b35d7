"""No run is lost or mixed with another: overwrite keeps the earlier run until the new one is under way, one
run at a time per folder, a resume refuses what it cannot apply and records what it can, a signal stops
with a checkpoint, a failed run points at the last good checkpoint. (Issue 12's probe, "runs lost or mixed".)"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from testkit import TRAIN, metrics, one_error, recipe_file, reset_accelerate, unchanged

from harness.cli import main




# ----------------------------------------------------------------------------------- overwrite


@pytest.mark.parametrize("bad", [
    {"data": {"component": "text_classification", "train_file": "/no/such/train.tsv", "validation_file": "/no/v.tsv"}},
    {"model": {"component": "pretrained_classifier", "checkpoint": "/no/such/checkpoint"}},
    {"evaluation": {"splits": ["nope"]}},
])
def test_overwrite_that_fails_before_training_puts_the_earlier_run_back(tmp_path, capsys, earlier_run, bad,
                                                                        fresh_accelerate):
    path = recipe_file(tmp_path, output_dir=str(earlier_run), training={**TRAIN, "overwrite": True}, **bad)
    assert main(["train", str(path)]) == 2
    err = capsys.readouterr().err
    one_error(err)
    assert "the earlier run in" in err and "was put back" in err
    assert unchanged(earlier_run) and not (earlier_run / ".replaced").exists()
    assert not (earlier_run / ".harness.lock").exists()


def test_overwrite_replaces_the_earlier_run_once_training_starts(tmp_path, capsys, earlier_run, fresh_accelerate):
    (earlier_run / "my_notes.txt").write_text("not a run file")
    path = recipe_file(tmp_path, output_dir=str(earlier_run), training={**TRAIN, "overwrite": True})
    assert main(["train", str(path)]) == 0
    assert metrics(earlier_run)["train/global_step"] == 8
    assert not (earlier_run / "checkpoints" / "checkpoint-8" / "trainer_state.json").read_text().startswith('{"global')
    assert not (earlier_run / ".replaced").exists() and (earlier_run / "my_notes.txt").read_text() == "not a run file"
    assert (earlier_run / "report.md").read_text() != "# the earlier run\n"


# ----------------------------------------------------------------------------------- one run per folder


def _lock(folder, pid, host=None):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / ".harness.lock").write_text(json.dumps({"pid": pid, "host": host or socket.gethostname(),
                                                      "started": "2026-11-28 00:00:00", "command": "harness train x"}))


def test_a_second_run_on_a_busy_folder_is_refused(tmp_path, capsys, earlier_run):
    _lock(earlier_run, os.getppid())  # a live process on this host
    for command in ("train", "eval"):
        path = recipe_file(tmp_path, output_dir=str(earlier_run), training={**TRAIN, "overwrite": True})
        assert main([command, str(path)]) == 2
        line = one_error(capsys.readouterr().err)
        assert f"is in use by another run (pid {os.getppid()} on {socket.gethostname()}" in line
    assert unchanged(earlier_run) and (earlier_run / ".harness.lock").is_file()


def test_a_stale_lock_is_reported_and_taken_over(tmp_path, capsys, fresh_accelerate):
    out = tmp_path / "run"
    _lock(out, 2 ** 22 + 12345)  # no such process
    assert main(["train", str(recipe_file(tmp_path, training=TRAIN))]) == 0
    assert "removed a stale lock" in capsys.readouterr().err
    assert not (out / ".harness.lock").exists() and metrics(out)["train/global_step"] == 8


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="zombie detection reads procfs")
def test_a_lock_held_by_a_zombie_is_stale(tmp_path, capsys, fresh_accelerate):
    """A run killed with its launcher leaves zombie workers where nothing reaps them (a container without an
    init); kill(pid, 0) succeeds on a zombie, but the run is over."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.time() + 30  # exited but not waited for: a zombie
    while time.time() < deadline and Path(f"/proc/{child.pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z":
        time.sleep(0.01)
    try:
        out = tmp_path / "run"
        _lock(out, child.pid)
        assert main(["train", str(recipe_file(tmp_path, training=TRAIN))]) == 0
        assert f"removed a stale lock: pid {child.pid}" in capsys.readouterr().err
    finally:
        child.wait()


def test_a_lock_from_another_host_says_how_to_clear_it(tmp_path, capsys, earlier_run):
    _lock(earlier_run, 1, host="some-other-host")
    assert main(["train", str(recipe_file(tmp_path, output_dir=str(earlier_run), training=TRAIN))]) == 2
    line = one_error(capsys.readouterr().err)
    assert "some-other-host" in line and f"delete {earlier_run / '.harness.lock'}" in line
    assert unchanged(earlier_run)


# ----------------------------------------------------------------------------------- resume


@pytest.mark.parametrize("override, key", [
    ("training.lr=0.5", "training.lr"), ("training.batch_size=4", "training.batch_size"),
    ("training.num_epochs=3", "training.num_epochs"), ("training.max_length=16", "training.max_length"),
    ("seed=7", "seed"), ("data.num_train=40", "data.num_train"), ("model.hidden_size=32", "model.hidden_size"),
    ("optimizer.component=sgd", "optimizer.component"), ("scheduler.component=cosine", "scheduler.component"),
    ("loss.component=cross_entropy", "loss.component"),
])
def test_a_resume_refuses_what_the_checkpoint_fixes(finished, capsys, override, key):
    path, out = finished
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert main(["train", str(path), "training.resume=auto", override]) == 2
    line = one_error(capsys.readouterr().err)
    assert f"cannot continue with a changed {key}: the checkpoint was trained with" in line
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before  # recipe.yaml included


@pytest.mark.parametrize("override, key", [
    ("training.log_steps=2", "training.log_steps"), ("training.eval_steps=2", "training.eval_steps"),
    ("evaluation.splits=[validation]", "evaluation.splits"), ("training.save_total_limit=5", "training.save_total_limit"),
])
def test_a_resume_applies_and_records_what_it_can(finished, capsys, override, key):
    path, out = finished
    assert main(["train", str(path), "training.resume=auto", override]) == 0
    assert f"with changed settings: {key}" in capsys.readouterr().out
    value = yaml.safe_load(override.split("=", 1)[1])
    section, name = key.split(".")
    assert yaml.safe_load((out / "recipe.yaml").read_text())[section][name] == value


def test_a_failed_resume_leaves_the_finished_run_alone(finished, capsys):
    path, out = finished
    recipe_before = (out / "recipe.yaml").read_text()
    assert main(["train", str(path), "training.resume=auto", "data.num_train=0"]) == 2
    assert "num_train" in one_error(capsys.readouterr().err)
    assert (out / "recipe.yaml").read_text() == recipe_before and metrics(out)["train/global_step"] == 8


# ----------------------------------------------------------------------------------- signals


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_at_the_next_step_with_a_checkpoint_and_resume_finishes_the_same(
        tmp_path, capsys, signum, fresh_accelerate):
    from harness import registry
    from harness.training.callbacks import Callback

    send = [True]

    class SendSignal(Callback):
        def on_step_end(self, loop):
            if send[0] and loop.state.global_step == 2:  # mid log window (log_steps 3)
                os.kill(os.getpid(), signum)

    registry.register("callback", "test_send_signal", replace=True)(SendSignal)
    try:
        full = recipe_file(tmp_path, "full", output_dir=str(tmp_path / "full"), training=TRAIN,
                           callbacks=[{"component": "test_send_signal"}])
        send[0] = False
        assert main(["train", str(full)]) == 0
        reset_accelerate()
        send[0] = True
        cut = recipe_file(tmp_path, "cut", output_dir=str(tmp_path / "cut"), training=TRAIN,
                          callbacks=[{"component": "test_send_signal"}])
        assert main(["train", str(cut)]) == 128 + signum
        line = one_error(capsys.readouterr().err)
        assert f"interrupted ({signal.Signals(signum).name}) at step 2; checkpoint saved at" in line
        assert (tmp_path / "cut" / "checkpoints" / "checkpoint-2" / "trainer_state.json").is_file()
        assert not (tmp_path / "cut" / "metrics.json").exists() and not (tmp_path / "cut" / ".harness.lock").exists()
        assert signal.getsignal(signum) is not None  # the handlers were put back
        send[0] = False
        reset_accelerate()
        assert main(["train", str(cut), "training.resume=auto"]) == 0, capsys.readouterr().err
    finally:
        registry.unregister("callback", "test_send_signal")
    from safetensors.torch import load_file

    a = load_file(str(tmp_path / "full" / "model" / "model.safetensors"))
    b = load_file(str(tmp_path / "cut" / "model" / "model.safetensors"))
    assert all((a[k] == b[k]).all() for k in a)
    hist = lambda r: (tmp_path / r / "logs" / "history.jsonl").read_text()  # noqa: E731
    assert hist("full") == hist("cut")  # the open log window was checkpointed too
